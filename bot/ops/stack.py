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
            [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(settings.action_port)],
            # rasa-sdk binds 0.0.0.0 unless told otherwise.
            {**env, "SANIC_HOST": settings.action_host},
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
            env,
            f"{settings.rasa_url}/version",
        ),
        Service(
            "gateway",
            [gateway_python(), "-m", "bot", "serve"],
            env,
            f"http://{settings.gateway_host}:{settings.gateway_port}/healthz",
        ),
    ]
