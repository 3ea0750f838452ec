"""The action server's entry point: the production start-up check, then rasa-sdk.

`python -m bot.ops.action_server --actions actions --port 5055` (what `make run` starts). The
action server has no authentication of its own, so in production it refuses to start when it
would listen on a public or unspecified address: SANIC_HOST, the address rasa-sdk binds (0.0.0.0
when unset), unless BIND_ALL_INTERFACES=container declares a container (bot/ops/security.py).
"""

from __future__ import annotations

import sys

from bot.ops.security import startup_check
from bot.settings import Settings


def main() -> None:
    # Only from the environment, and no secret is generated: the action server uses none.
    settings = Settings.from_env(generate_secrets=False)
    if startup_check(settings, actions_only=True):
        sys.exit(2)  # refused in production: every problem is printed
    from rasa_sdk.__main__ import main as rasa_sdk_main

    sys.argv = ["rasa_sdk", *sys.argv[1:]]
    rasa_sdk_main()


if __name__ == "__main__":
    main()
