"""The three processes of the product and how to tell that each one answers."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bot.rasa.model import rasa_env
from bot.settings import PROJECT_ROOT, Settings

# The gateway's own environment (`make setup`: requirements-gateway.lock on Python 3.11, with the
# current aiohttp); Rasa and the action server run in the Rasa environment (this interpreter).
GATEWAY_VENV = PROJECT_ROOT / ".venv-gateway"


class GatewayEnvMissing(RuntimeError):
    """The gateway's environment has not been created."""


def gateway_python() -> str:
    """The gateway environment's interpreter; GatewayEnvMissing before `make setup`."""
    python = GATEWAY_VENV / "bin" / "python"
    if not python.exists():
        raise GatewayEnvMissing(
            f"{python} is missing: run `make setup` (it creates .venv-gateway from "
            "requirements-gateway.lock)"
        )
    return str(python)


# Every variable that holds a secret, and the ones each process uses (issue 14, #14): the
# unauthenticated action server needs only the database; Rasa only its API token (the cluster
# adds its tracker store's URL); the gateway all. Stripped from what the parent's environment
# passes on too.
SECRET_VARIABLES = frozenset(
    {
        "RASA_AUTH_TOKEN", "SESSION_SECRET", "WECHAT_TOKEN", "WECHAT_APP_SECRET",
        "WECHAT_AES_KEY", "DATABASE_URL", "REDIS_URL",
    }
)  # fmt: skip
SECRETS_USED = {
    "actions": frozenset({"DATABASE_URL"}),
    "rasa": frozenset({"RASA_AUTH_TOKEN"}),
    "gateway": SECRET_VARIABLES,
}


def only_secrets_of(name: str, env: dict[str, str]) -> dict[str, str]:
    """`env` without the secrets that process `name` does not use."""
    drop = SECRET_VARIABLES - SECRETS_USED[name]
    return {key: value for key, value in env.items() if key not in drop}


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str


def services(settings: Settings, model: Path) -> list[Service]:
    env = {**rasa_env(), **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    python = sys.executable
    return [
        Service(
            "actions",
            # rasa-sdk, after the production start-up check (bot/ops/action_server.py).
            [
                python,
                "-m",
                "bot.ops.action_server",
                "--actions",
                "actions",
                "--port",
                str(settings.action_port),
            ],
            # rasa-sdk binds 0.0.0.0 unless told otherwise.
            only_secrets_of("actions", {**env, "SANIC_HOST": settings.action_host}),
            f"{settings.action_url}/health",
        ),
        Service(
            "rasa",
            [
                python,
                "-m",
                "bot.rasa.server",
                "--model",
                str(model),
                "--interface",
                settings.rasa_host,
                "--port",
                str(settings.rasa_port),
                "--endpoints",
                str(PROJECT_ROOT / "endpoints.yml"),
                "--credentials",
                str(PROJECT_ROOT / "credentials.yml"),
            ],
            only_secrets_of("rasa", env),
            f"{settings.rasa_url}/version",
        ),
        Service(
            "gateway",
            [gateway_python(), "-m", "bot", "serve"],
            only_secrets_of("gateway", env),
            f"http://{settings.gateway_host}:{settings.gateway_port}/healthz",
        ),
    ]
