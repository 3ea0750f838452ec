"""Start `rasa run` with the API token taken from RASA_AUTH_TOKEN (through bot/settings.py).

Passing the token on Rasa's command line would show it to every user in `ps`; this wrapper adds it
to the arguments inside the process instead. In production the start-up check runs first, on the
address Rasa will really bind: its `--interface` argument.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys

from bot.rasa.auth import JWT_METHOD
from bot.settings import Settings

# Modules something imports although a replica never uses them: TensorFlow's lite converter
# imports JAX when it is installed (it is, for another tool), ~0.6 s and its memory at each start.
UNUSED_MODULES = ("jax",)
M_ARENA_MAX = -8  # glibc's mallopt() parameter


def trim_runtime() -> None:
    """Cut what a serving replica does not need, before TensorFlow is imported (bench/startup.py
    measures the effect; RASA_RUNTIME_TRIMS=0 turns it off).

    * one TensorFlow thread per pool unless told otherwise: a replica answers one message at a
      time on a shared machine (bench/load.py's knobs), and every thread costs a stack and a
      malloc arena;
    * at most two glibc malloc arenas: by default each thread that allocates gets its own
      (up to 8 per core), memory the process keeps but hardly reuses;
    * modules that would only be imported, never used (UNUSED_MODULES): the import fails
      quietly (TensorFlow guards it).
    """
    if os.environ.get("RASA_RUNTIME_TRIMS", "1") == "0":
        return
    os.environ.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    os.environ.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name).mallopt(M_ARENA_MAX, 2)
    for name in UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def cache_action_response_validator() -> None:
    """Validate the action server's answers with one prepared jsonschema validator.

    Rasa 3.6 calls `jsonschema.validate()` on every custom action's response, which checks the
    constant schema against the JSON Schema metaschema each time: ~19 ms of CPU per custom action,
    a third of what a message costs Rasa (bench/load.py --profile). Same validation, and on a bad
    response Rasa's own check runs and raises its own error.
    """
    from jsonschema import validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    original = RemoteAction._validate_action_result

    def validate(self: RemoteAction, result: dict) -> bool:
        if best_match(validator.iter_errors(result)) is None:
            return True
        return original(self, result)  # raises with Rasa's message

    RemoteAction._validate_action_result = validate


def cache_event_classes() -> None:
    """Find an event's class by its type name in a dict.

    Rasa 3.6 walks every Event subclass, asking `inspect.isabstract` of each, for every event it
    reads back from the tracker store: about 20 walks per message, ~9% of a replica's profiled
    CPU (bench/load.py --profile). The first class found for a name is kept, as Rasa's own
    lookup finds it; names it does not know still go to Rasa (and its error).
    """
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    found: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = found.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and getattr(cls, "type_name", None) == type_name:
                found[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)


def interface_argument(argv: list[str]) -> str | None:
    """The `-i/--interface` of Rasa's arguments, read as Rasa's own parser reads it (the last
    one, `--interface=…`, an abbreviation such as `--int`); None when not given, and Rasa then
    binds 0.0.0.0, every interface."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-i", "--interface")
    known, _ = parser.parse_known_args(argv)
    return known.interface


def main() -> None:
    from bot.ops.security import startup_check  # process start-up (pyproject: ignore_imports)

    # Only from the environment: Rasa never falls back to a generated token.
    settings = Settings.from_env(generate_secrets=False)
    if startup_check(settings, rasa_only=True, interface=interface_argument(sys.argv[1:])):
        sys.exit(2)  # refused in production: every problem is printed, as `bot serve` does
    token = settings.rasa_auth_token
    if not token:
        sys.exit("RASA_AUTH_TOKEN is not set: refusing to start Rasa's HTTP API without a token")
    from rasa.__main__ import main as rasa_main

    cache_action_response_validator()
    cache_event_classes()

    # The token also signs the gateway's JWTs (bot/rasa/auth.py): the gateway never puts it in
    # a URL. `--auth-token` stays for people and scripts that call the API by hand.
    sys.argv = [
        "rasa", "run", *sys.argv[1:], "--enable-api", "--auth-token", token,
        "--jwt-secret", token, "--jwt-method", JWT_METHOD,
    ]  # fmt: skip
    rasa_main()


if __name__ == "__main__":
    trim_runtime()  # first: before anything imports TensorFlow
    main()
