"""Start `rasa run` with the API token taken from RASA_AUTH_TOKEN.

Passing the token on Rasa's command line would show it to every user in `ps`; this wrapper adds it
to the arguments inside the process instead.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    token = os.environ.get("RASA_AUTH_TOKEN")
    if not token:
        sys.exit("RASA_AUTH_TOKEN is not set: refusing to start Rasa's HTTP API without a token")
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", "run", *sys.argv[1:], "--enable-api", "--auth-token", token]
    rasa_main()


if __name__ == "__main__":
    main()
