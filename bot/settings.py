"""Every setting of the product, read from the environment in one place.

`Settings.from_env()` is the only reader of configuration from `os.environ`: the gateway, the
command line, Rasa's wrapper (bot/rasa/server.py) and the action server each call it once and pass
the frozen result on. `Settings.as_env()` turns it back into the variables for the processes
`bot run` starts.

Secrets (Rasa's API token, the cookie key) come from the environment; when absent they are
generated once into `var/secrets.json` (ignored by git, mode 0600) so that a fresh checkout runs
without any configuration and restarts keep the same values. `Settings.generated_secrets` says
which ones did (the start-up check refuses them in production).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The secrets generated into var/secrets.json when the environment lacks them: variable → key.
GENERATED_SECRETS = {"RASA_AUTH_TOKEN": "rasa_auth_token", "SESSION_SECRET": "session_secret"}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    value = _env_optional_int(name)
    return default if value is None else value


def _env_optional_int(name: str) -> int | None:
    """The whole number in `name`, or None when it is unset or empty."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
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
    return tuple(item.strip() for item in _env(name).split(",") if item.strip())


def load_or_create_secret(var_dir: Path, name: str) -> str:
    """Return secret `name` from var/secrets.json, generating and saving it on first use."""
    path = var_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(32)
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)  # O_EXCL below: created now, 0600 from its first byte on
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(stored, indent=2))
        os.replace(tmp, path)
    return stored[name]


def _wechat_from_env() -> WechatConfig | None:
    """The WeChat channel's settings, or None when it is off (no WECHAT_TOKEN)."""
    token = _env("WECHAT_TOKEN").strip()
    if not token:
        return None
    raw_timeout = _env("WECHAT_REPLY_TIMEOUT").strip()
    try:
        reply_timeout = float(raw_timeout) if raw_timeout else DEFAULT_REPLY_TIMEOUT
    except ValueError as exc:
        raise WechatConfigError(
            f"WECHAT_REPLY_TIMEOUT must be a number, got {raw_timeout!r}"
        ) from exc
    return WechatConfig(  # checks itself: WechatConfigError names a bad variable
        token=token,
        app_id=_env("WECHAT_APP_ID").strip(),
        app_secret=_env("WECHAT_APP_SECRET").strip(),
        aes_key=_env("WECHAT_AES_KEY").strip(),
        api_base=(_env("WECHAT_API_BASE").strip() or DEFAULT_API_BASE).rstrip("/"),
        reply_timeout=reply_timeout,
    )


def _wechat_as_env(wechat: WechatConfig | None) -> dict[str, str]:
    if wechat is None:
        return {"WECHAT_TOKEN": ""}  # off, whatever the parent's environment says
    return {
        "WECHAT_TOKEN": wechat.token,
        "WECHAT_APP_ID": wechat.app_id,
        "WECHAT_APP_SECRET": wechat.app_secret,
        "WECHAT_AES_KEY": wechat.aes_key,
        "WECHAT_API_BASE": wechat.api_base,
        "WECHAT_REPLY_TIMEOUT": str(wechat.reply_timeout),
    }


@dataclass(frozen=True)
class ClusterSettings:
    """What only `run-cluster` reads; None where the variable is unset, so that the cluster's
    own defaults apply (bot/ops/cluster.py, `ClusterConfig.from_settings`, checks the values)."""

    database_url: str | None = None  # DATABASE_URL as given (the cluster's default: PostgreSQL)
    redis_url: str | None = None  # REDIS_URL as given (the cluster's default: the local Redis)
    rasa_replicas: int | None = None  # RASA_REPLICAS
    gateway_instances: int | None = None  # GATEWAY_INSTANCES
    lock_redis_db: int | None = None  # RASA_LOCK_REDIS_DB
    lock_key_prefix: str | None = None  # RASA_LOCK_KEY_PREFIX
    lock_lifetime: int | None = None  # TICKET_LOCK_LIFETIME
    action_workers: int | None = None  # ACTION_SERVER_SANIC_WORKERS
    rasa_workers: int | None = None  # SANIC_WORKERS
    tf_intra_threads: int | None = None  # TF_INTRA_OP_PARALLELISM_THREADS
    tf_inter_threads: int | None = None  # TF_INTER_OP_PARALLELISM_THREADS
    rasa_sql_pool_size: int | None = None  # RASA_SQL_POOL_SIZE
    rasa_sql_max_overflow: int | None = None  # RASA_SQL_MAX_OVERFLOW

    @classmethod
    def from_env(cls) -> ClusterSettings:
        return cls(
            database_url=_env("DATABASE_URL") or None,
            redis_url=_env("REDIS_URL") or None,
            rasa_replicas=_env_optional_int("RASA_REPLICAS"),
            gateway_instances=_env_optional_int("GATEWAY_INSTANCES"),
            lock_redis_db=_env_optional_int("RASA_LOCK_REDIS_DB"),
            lock_key_prefix=_env("RASA_LOCK_KEY_PREFIX") or None,
            lock_lifetime=_env_optional_int("TICKET_LOCK_LIFETIME"),
            action_workers=_env_optional_int("ACTION_SERVER_SANIC_WORKERS"),
            rasa_workers=_env_optional_int("SANIC_WORKERS"),
            tf_intra_threads=_env_optional_int("TF_INTRA_OP_PARALLELISM_THREADS"),
            tf_inter_threads=_env_optional_int("TF_INTER_OP_PARALLELISM_THREADS"),
            rasa_sql_pool_size=_env_optional_int("RASA_SQL_POOL_SIZE"),
            rasa_sql_max_overflow=_env_optional_int("RASA_SQL_MAX_OVERFLOW"),
        )


# --- the WeChat Official Account channel (on only when WECHAT_TOKEN is set) -----------------

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# WeChat drops the connection after 5 s and retries; answer well before that.
DEFAULT_REPLY_TIMEOUT = 4.5


class WechatConfigError(ValueError):
    """A WECHAT_* variable is present but unusable; the message names it."""


@dataclass(frozen=True)
class WechatConfig:
    token: str = field(repr=False)
    app_id: str = ""
    app_secret: str = field(default="", repr=False)
    # EncodingAESKey: 43 characters; needed for the compatible and safe (encrypted) modes.
    aes_key: str = field(default="", repr=False)
    api_base: str = DEFAULT_API_BASE
    # Seconds to wait for the answer before replying "success" and sending it later.
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT

    def __post_init__(self) -> None:
        if self.aes_key:
            check_aes_key(self.aes_key)
            if not self.app_id:
                raise WechatConfigError(
                    "WECHAT_AES_KEY needs WECHAT_APP_ID (the AppID is in every encrypted message)"
                )
        if not 0 < self.reply_timeout < 5:
            raise WechatConfigError("WECHAT_REPLY_TIMEOUT must be between 0 and 5 seconds")

    @property
    def can_send(self) -> bool:
        """Customer-service messages need an access token, i.e. AppID and AppSecret."""
        return bool(self.app_id and self.app_secret)


def check_aes_key(aes_key: str) -> None:
    """An EncodingAESKey is 43 base64 characters that decode (with one "=") to 32 bytes."""
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WechatConfigError(
            "WECHAT_AES_KEY is not a valid EncodingAESKey (43 characters)"
        ) from exc
    if len(aes_key) != 43 or len(key) != 32:
        raise WechatConfigError("WECHAT_AES_KEY must be the 43-character EncodingAESKey")


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
    # Where the action server listens: SANIC_HOST, read by rasa-sdk itself (None: unset, and
    # rasa-sdk binds 0.0.0.0). ACTION_HOST is where the others reach it.
    sanic_host: str | None = None
    # BIND_ALL_INTERFACES=container (the only value): Rasa and the action server run in
    # containers, where other pods reach them at the pod's address, so they may bind 0.0.0.0;
    # the network policy decides who gets there (bot/ops/security.py).
    bind_all_interfaces: str = ""
    # Rasa replicas the gateway spreads conversations over (RASA_URLS, comma-separated; see
    # bot/rasa/pool.py); empty: the one Rasa at rasa_host:rasa_port.
    rasa_replicas: tuple[str, ...] = ()
    rasa_auth_token: str = field(default="", repr=False)
    session_secret: str = field(default="", repr=False)
    # The variables (of GENERATED_SECRETS) whose value came from var/secrets.json, not from the
    # environment: a development convenience the start-up check refuses in production.
    generated_secrets: frozenset[str] = frozenset()
    rasa_timeout: float = 5.0
    # Each gateway's queue in front of each Rasa replica (bot/rasa/queue.py): messages in flight
    # (0: no queue), messages waiting, seconds before the "正在排队" notice, longest wait.
    rasa_concurrency: int = 4
    rasa_queue_depth: int = 100
    rasa_queue_notice: float = 2.0
    rasa_queue_max_wait: float = 30.0
    # The one deadline for database work run from async code (gateway and action server alike):
    # past it the caller gets a clear failure (an apology and 转人工), never a hang.
    db_timeout: float = 5.0
    # The knowledge base: how often an answering process checks for published edits (seconds),
    # and after how many days without verification the console lists an item first as 待复核.
    kb_poll_seconds: float = 1.0
    kb_stale_days: int = 180
    # Where the review inbox's "加入训练数据" writes review_<intent>.yml (the next `bot train`
    # reads it with the rest of data/nlu); REVIEW_TRAINING_DIR, default data/nlu.
    review_training_dir: Path = PROJECT_ROOT / "data" / "nlu"
    # Origins allowed to open the chat websocket besides the page's own origin.
    allowed_origins: tuple[str, ...] = ()
    # Web chat flood limit: at most this many messages per window (seconds) per conversation.
    chat_rate_limit: int = 10
    chat_rate_window: float = 10.0
    # The client's address (bot/web/client_address.py): CLIENT_ADDRESS_HEADER is believed only
    # from a peer in TRUSTED_PROXIES (addresses or networks; default: a proxy on this machine).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    client_address_header: str = "X-Forwarded-For"
    # Per client address, within address_limit_window seconds: new web chat conversations,
    # handoff requests and tickets (bot/webchat/limits.py). Generous: a NAT hides many citizens.
    address_new_conversations: int = 60
    address_handoffs: int = 20
    address_tickets: int = 5
    address_limit_window: float = 600.0
    # When staff answer handoffs ("1-5 09:00-17:00": Monday to Friday; or "always"), local time.
    # A deployment sets its own; outside these hours users are offered to leave a message.
    handoff_hours: str = "1-5 09:00-17:00"
    handoff_timezone: str = "Asia/Shanghai"
    # Redis (e.g. redis://127.0.0.1:6379/0) for several gateways: pub/sub fan-out, staff presence,
    # WeChat retry de-duplication and access token. Empty: one gateway, everything in-process.
    redis_url: str = ""
    # The prefix of every Redis key and pub/sub channel: deployments sharing a Redis stay apart.
    redis_namespace: str = "ipbot"
    # "development" (default) or "production": production refuses weak or generated secrets
    # (bot/ops/security.py) and marks the session cookie Secure (HTTPS only).
    environment: str = "development"
    # Seconds with no staff online before waiting citizens are offered a ticket instead.
    handoff_release_seconds: float = 120.0
    # The back office: a lead not contacted within this many working days is overdue; a bad
    # rating's follow-up is due within this many; the rating card is offered to a citizen who
    # comes back after this many idle minutes; wrong tries of a status look-up per hour.
    lead_overdue_days: int = 2
    follow_up_days: int = 5
    rating_idle_minutes: int = 60
    lookup_max_tries: int = 5
    # The WeChat Official Account channel (WECHAT_*); None: off, /wechat does not exist.
    wechat: WechatConfig | None = None
    # What only `run-cluster` reads (RASA_REPLICAS, GATEWAY_INSTANCES …).
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

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
    def from_env(cls, *, generate_secrets: bool = True) -> Settings:
        """Every setting from the environment. `generate_secrets=False`: a secret the environment
        lacks stays empty instead of coming from var/secrets.json (for a process that must be
        given it, like Rasa)."""
        var_dir = Path(_env("BOT_VAR_DIR", str(PROJECT_ROOT / "var"))).resolve()
        given = {name: _env(name) for name in GENERATED_SECRETS}
        generated: frozenset[str] = frozenset()
        if generate_secrets:
            generated = frozenset(name for name, value in given.items() if not value)
            for name, key in GENERATED_SECRETS.items():
                if name in generated:
                    given[name] = load_or_create_secret(var_dir, key)
        return cls(
            var_dir=var_dir,
            database_url=_env("DATABASE_URL") or f"sqlite:///{var_dir / 'ipbot.db'}",
            gateway_host=_env("BOT_HOST", "127.0.0.1"),
            gateway_port=_env_int("BOT_PORT", 8000),
            rasa_host=_env("RASA_HOST", "127.0.0.1"),
            rasa_port=_env_int("RASA_PORT", 5005),
            action_host=_env("ACTION_HOST", "127.0.0.1"),
            action_port=_env_int("ACTION_PORT", 5055),
            sanic_host=_env("SANIC_HOST") or None,  # empty binds every interface too
            bind_all_interfaces=_env("BIND_ALL_INTERFACES").strip().lower(),
            rasa_replicas=_env_list("RASA_URLS"),
            rasa_auth_token=given["RASA_AUTH_TOKEN"],
            session_secret=given["SESSION_SECRET"],
            generated_secrets=generated,
            rasa_timeout=_env_float("RASA_TIMEOUT", 5.0),
            rasa_concurrency=_env_int("RASA_CONCURRENCY", 4),
            rasa_queue_depth=_env_int("RASA_QUEUE_DEPTH", 100),
            rasa_queue_notice=_env_float("RASA_QUEUE_NOTICE", 2.0),
            rasa_queue_max_wait=_env_float("RASA_QUEUE_MAX_WAIT", 30.0),
            db_timeout=_env_float("DB_TIMEOUT", 5.0),
            kb_poll_seconds=_env_float("KB_POLL_SECONDS", 1.0),
            kb_stale_days=_env_int("KB_STALE_DAYS", 180),
            review_training_dir=Path(
                _env("REVIEW_TRAINING_DIR") or str(PROJECT_ROOT / "data" / "nlu")
            ),
            allowed_origins=_env_list("BOT_ALLOWED_ORIGINS"),
            chat_rate_limit=_env_int("CHAT_RATE_LIMIT", 10),
            chat_rate_window=_env_float("CHAT_RATE_WINDOW", 10.0),
            trusted_proxies=_env_list("TRUSTED_PROXIES") or ("127.0.0.1", "::1"),
            client_address_header=_env("CLIENT_ADDRESS_HEADER") or "X-Forwarded-For",
            address_new_conversations=_env_int("ADDRESS_NEW_CONVERSATIONS", 60),
            address_handoffs=_env_int("ADDRESS_HANDOFFS", 20),
            address_tickets=_env_int("ADDRESS_TICKETS", 5),
            address_limit_window=_env_float("ADDRESS_LIMIT_WINDOW", 600.0),
            handoff_hours=_env("HANDOFF_HOURS") or "1-5 09:00-17:00",
            handoff_timezone=_env("HANDOFF_TIMEZONE") or "Asia/Shanghai",
            handoff_release_seconds=_env_float("HANDOFF_RELEASE_SECONDS", 120.0),
            lead_overdue_days=_env_int("LEAD_OVERDUE_DAYS", 2),
            follow_up_days=_env_int("FOLLOW_UP_DAYS", 5),
            rating_idle_minutes=_env_int("RATING_IDLE_MINUTES", 60),
            lookup_max_tries=_env_int("LOOKUP_MAX_TRIES", 5),
            redis_url=_env("REDIS_URL"),
            redis_namespace=_env("REDIS_NAMESPACE") or "ipbot",
            environment=(_env("BOT_ENV") or "development").strip().lower(),
            wechat=_wechat_from_env(),
            cluster=ClusterSettings.from_env(),
        )

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, for the processes `bot run` starts (the
        variables only `run-cluster` reads are not among them: it sets what each process needs,
        see bot/ops/cluster.py)."""
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
            "BIND_ALL_INTERFACES": self.bind_all_interfaces,
            "RASA_URLS": ",".join(self.rasa_replicas),
            "RASA_AUTH_TOKEN": self.rasa_auth_token,
            "SESSION_SECRET": self.session_secret,
            "RASA_TIMEOUT": str(self.rasa_timeout),
            "RASA_CONCURRENCY": str(self.rasa_concurrency),
            "RASA_QUEUE_DEPTH": str(self.rasa_queue_depth),
            "RASA_QUEUE_NOTICE": str(self.rasa_queue_notice),
            "RASA_QUEUE_MAX_WAIT": str(self.rasa_queue_max_wait),
            "DB_TIMEOUT": str(self.db_timeout),
            "KB_POLL_SECONDS": str(self.kb_poll_seconds),
            "KB_STALE_DAYS": str(self.kb_stale_days),
            "REVIEW_TRAINING_DIR": str(self.review_training_dir),
            "BOT_ALLOWED_ORIGINS": ",".join(self.allowed_origins),
            "CHAT_RATE_LIMIT": str(self.chat_rate_limit),
            "CHAT_RATE_WINDOW": str(self.chat_rate_window),
            "TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "CLIENT_ADDRESS_HEADER": self.client_address_header,
            "ADDRESS_NEW_CONVERSATIONS": str(self.address_new_conversations),
            "ADDRESS_HANDOFFS": str(self.address_handoffs),
            "ADDRESS_TICKETS": str(self.address_tickets),
            "ADDRESS_LIMIT_WINDOW": str(self.address_limit_window),
            "HANDOFF_HOURS": self.handoff_hours,
            "HANDOFF_TIMEZONE": self.handoff_timezone,
            "HANDOFF_RELEASE_SECONDS": str(self.handoff_release_seconds),
            "LEAD_OVERDUE_DAYS": str(self.lead_overdue_days),
            "FOLLOW_UP_DAYS": str(self.follow_up_days),
            "RATING_IDLE_MINUTES": str(self.rating_idle_minutes),
            "LOOKUP_MAX_TRIES": str(self.lookup_max_tries),
            "REDIS_URL": self.redis_url,
            "REDIS_NAMESPACE": self.redis_namespace,
            "BOT_ENV": self.environment,
            **_wechat_as_env(self.wechat),
        }
