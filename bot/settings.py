"""Every setting of the product, read from the environment in one place.

Secrets (Rasa's API token, the cookie key) come from the environment; when absent they are
generated once into `var/secrets.json` (ignored by git, mode 0600) so that a fresh checkout runs
without any configuration and restarts keep the same values.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def load_or_create_secret(var_dir: Path, name: str) -> str:
    """Return secret `name` from var/secrets.json, generating and saving it on first use."""
    path = var_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(32)
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return stored[name]


def database_url_from_env(var_dir: Path | None = None) -> str:
    """DATABASE_URL, else a SQLite file under var/ (the embedded default)."""
    var_dir = var_dir or Path(os.environ.get("BOT_VAR_DIR", PROJECT_ROOT / "var")).resolve()
    return os.environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'ipbot.db'}"


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    rasa_host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_host: str = "127.0.0.1"
    action_port: int = 5055
    # Rasa replicas the gateway spreads conversations over (RASA_URLS, comma-separated; see
    # bot/rasa/pool.py); empty: the one Rasa at rasa_host:rasa_port.
    rasa_replicas: tuple[str, ...] = ()
    rasa_auth_token: str = field(default="", repr=False)
    session_secret: str = field(default="", repr=False)
    rasa_timeout: float = 5.0
    # The one deadline for database work run from async code (gateway and action server alike):
    # past it the caller gets a clear failure (an apology and 转人工), never a hang.
    db_timeout: float = 5.0
    # Origins allowed to open the chat websocket besides the page's own origin.
    allowed_origins: tuple[str, ...] = ()
    # Web chat flood limit: at most this many messages per window (seconds) per conversation.
    chat_rate_limit: int = 10
    chat_rate_window: float = 10.0
    # When staff answer handoffs ("1-5 09:00-17:00": Monday to Friday; or "always"), local time.
    # A deployment sets its own; outside these hours users are offered to leave a message.
    handoff_hours: str = "1-5 09:00-17:00"
    handoff_timezone: str = "Asia/Shanghai"
    # Redis (e.g. redis://127.0.0.1:6379/0) for several gateways: pub/sub fan-out, staff presence,
    # WeChat retry de-duplication. Empty: one gateway, everything in-process.
    redis_url: str = ""
    redis_namespace: str = "ipbot"
    # "development" (default) or "production": production refuses weak or generated secrets
    # (bot/ops/security.py) and marks the session cookie Secure (HTTPS only).
    environment: str = "development"  # prefix of every Redis key and pub/sub channel
    # Seconds with no staff online before waiting citizens are offered a ticket instead.
    handoff_release_seconds: float = 120.0

    @property
    def rasa_url(self) -> str:
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def rasa_urls(self) -> tuple[str, ...]:
        return self.rasa_replicas or (self.rasa_url,)

    @property
    def action_url(self) -> str:
        return f"http://{self.action_host}:{self.action_port}"

    @property
    def chat_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}/"

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(os.environ.get("BOT_VAR_DIR", PROJECT_ROOT / "var")).resolve()
        return cls(
            var_dir=var_dir,
            database_url=database_url_from_env(var_dir),
            gateway_host=os.environ.get("BOT_HOST", "127.0.0.1"),
            gateway_port=_env_int("BOT_PORT", 8000),
            rasa_host=os.environ.get("RASA_HOST", "127.0.0.1"),
            rasa_port=_env_int("RASA_PORT", 5005),
            action_host=os.environ.get("ACTION_HOST", "127.0.0.1"),
            action_port=_env_int("ACTION_PORT", 5055),
            rasa_replicas=_env_list("RASA_URLS"),
            rasa_auth_token=os.environ.get("RASA_AUTH_TOKEN")
            or load_or_create_secret(var_dir, "rasa_auth_token"),
            session_secret=os.environ.get("SESSION_SECRET")
            or load_or_create_secret(var_dir, "session_secret"),
            rasa_timeout=_env_float("RASA_TIMEOUT", 5.0),
            db_timeout=_env_float("DB_TIMEOUT", 5.0),
            allowed_origins=_env_list("BOT_ALLOWED_ORIGINS"),
            chat_rate_limit=_env_int("CHAT_RATE_LIMIT", 10),
            chat_rate_window=_env_float("CHAT_RATE_WINDOW", 10.0),
            handoff_hours=os.environ.get("HANDOFF_HOURS") or "1-5 09:00-17:00",
            handoff_timezone=os.environ.get("HANDOFF_TIMEZONE") or "Asia/Shanghai",
            handoff_release_seconds=_env_float("HANDOFF_RELEASE_SECONDS", 120.0),
            redis_url=os.environ.get("REDIS_URL", ""),
            redis_namespace=os.environ.get("REDIS_NAMESPACE") or "ipbot",
            environment=(os.environ.get("BOT_ENV") or "development").strip().lower(),
        )

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, for the processes `bot run` starts."""
        return {
            "BOT_VAR_DIR": str(self.var_dir),
            "DATABASE_URL": self.database_url,
            "BOT_HOST": self.gateway_host,
            "BOT_PORT": str(self.gateway_port),
            "RASA_HOST": self.rasa_host,
            "RASA_PORT": str(self.rasa_port),
            "ACTION_HOST": self.action_host,
            "ACTION_PORT": str(self.action_port),
            "ACTION_ENDPOINT_URL": f"{self.action_url}/webhook",
            "RASA_URLS": ",".join(self.rasa_replicas),
            "RASA_AUTH_TOKEN": self.rasa_auth_token,
            "SESSION_SECRET": self.session_secret,
            "RASA_TIMEOUT": str(self.rasa_timeout),
            "DB_TIMEOUT": str(self.db_timeout),
            "BOT_ALLOWED_ORIGINS": ",".join(self.allowed_origins),
            "CHAT_RATE_LIMIT": str(self.chat_rate_limit),
            "CHAT_RATE_WINDOW": str(self.chat_rate_window),
            "HANDOFF_HOURS": self.handoff_hours,
            "HANDOFF_TIMEZONE": self.handoff_timezone,
            "HANDOFF_RELEASE_SECONDS": str(self.handoff_release_seconds),
            "REDIS_URL": self.redis_url,
            "REDIS_NAMESPACE": self.redis_namespace,
            "BOT_ENV": self.environment,
        }
