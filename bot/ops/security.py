"""The start-up check: outside development the product refuses to run with unsafe settings.

`BOT_ENV` is `development` (the default: a fresh checkout runs with generated secrets on loopback)
or `production`. In production `bot run` / `bot serve`, the Rasa process (`bot.rasa.server`,
`rasa_only`: its token and the addresses) and the action server (`bot.ops.action_server`,
`actions_only`: its address) refuse to start (exit code 2, every problem listed) when:

- `RASA_AUTH_TOKEN` or `SESSION_SECRET` is not set in the environment (the generated
  `var/secrets.json` is a development convenience: one file on one disk, not managed as a secret;
  `Settings.generated_secrets` records which ones came from it),
  is weak (shorter than 32 characters, a known placeholder, too few distinct characters), or both
  are the same value;
- Rasa (`RASA_HOST`, every `RASA_URLS` replica) or the action server (`ACTION_HOST`) would be
  reached at a public address, or would listen on one: what they really bind is checked inside
  their own processes, Rasa's `--interface` (0.0.0.0 when not given) and the action server's
  `SANIC_HOST` (0.0.0.0 when unset). Rasa's API and the action server's webhook must stay on
  loopback or a private network (the action server has no authentication at all). An IP address
  must be loopback or private and not the unspecified address (0.0.0.0 / :: binds every
  interface, public ones included) — unless `BIND_ALL_INTERFACES=container` declares a container,
  where other pods connect to the pod's address and the network policy decides who may (a
  warning says so). A host name is accepted when it is `localhost` or when every address it
  resolves to passes the same test (a service name on a private network, e.g. `rasa-1.internal`);
  a name that does not resolve is refused, since what it will bind to cannot be known;
- `BIND_ALL_INTERFACES` has another value than `container`;
- WeChat is on (`WECHAT_TOKEN`) with a placeholder token, AppSecret or EncodingAESKey, or with a
  token short enough to be recovered offline from one signed request (under 16 characters);
- `BOT_ENV` has any other value than the two above (a typo must not switch the check off).

Warnings (printed, the start goes on): SQLite as the database (one file, one writer: production
uses PostgreSQL), the gateway itself on a public or unspecified address (the documented set-up is
`BOT_HOST=127.0.0.1` behind a TLS reverse proxy; a container behind a load balancer may bind
0.0.0.0 on purpose), Rasa or the action server on every interface of a declared container (the
network policy must restrict who reaches it), WeChat in plaintext mode, and
`BOT_ALLOWED_ORIGINS` entries that can never match an `Origin` header (e.g. `*`: there are no
wildcards).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from base64 import b64decode
from binascii import Error as Base64Error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from bot.settings import Settings, WechatConfig

DEVELOPMENT, PRODUCTION = "development", "production"
MIN_SECRET_LENGTH = 32
MIN_WECHAT_TOKEN_LENGTH = 16
# Values seen in examples, tests and tutorials; compared case-insensitively.
PLACEHOLDERS = frozenset(
    {
        "test-token",
        "test-session-secret",
        "test-wechat-token",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "token",
        "default",
        "example",
        "s",
        "t",
    }
)
# A value containing one of these is a placeholder whatever its length.
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "example", "fake")
PLACEHOLDER_MARKERS_WECHAT = (*PLACEHOLDER_MARKERS, "test", "…", "...", "xxx")
# Below this many distinct characters a "secret" is a pattern ("aaaa…", "abab…"), not random.
MIN_DISTINCT_CHARACTERS = 8
# A random EncodingAESKey decodes to 32 bytes with ~28 distinct values; a typed one has few.
MIN_DISTINCT_AES_BYTES = 20
# What Rasa binds without --interface and rasa-sdk without SANIC_HOST.
ALL_INTERFACES = "0.0.0.0"
# BIND_ALL_INTERFACES: the one value that lets Rasa and the action server bind every interface.
CONTAINER = "container"
RASA_PRIVATE = "Rasa's API and the action server must listen on loopback or a private network only"
ACTIONS_PRIVATE = (
    "the action server has no authentication and must listen on loopback or a private network only"
)

Resolver = Callable[[str], list[str]]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)  # refuse to start
    warnings: list[str] = field(default_factory=list)  # start, but say so


@dataclass(frozen=True)
class Listener:
    """The address a process really binds: Rasa's --interface, the action server's SANIC_HOST."""

    name: str  # "--interface", "SANIC_HOST"
    given: str | None  # None: not given, and `library` binds ALL_INTERFACES
    library: str  # whose default that is: "Rasa", "rasa-sdk"
    rule: str  # what a public address breaks (RASA_PRIVATE, ACTIONS_PRIVATE)
    reached_by: str  # whom the network policy must let in

    @property
    def host(self) -> str:
        return ALL_INTERFACES if self.given is None else self.given

    @property
    def label(self) -> str:
        if self.given is not None:
            return f"{self.name}={self.given!r}"
        unset = "not given" if self.name.startswith("-") else "not set"
        return f"{self.name} {unset} ({self.library}'s default {ALL_INTERFACES!r})"


def rasa_listener(interface: str | None) -> Listener:
    return Listener("--interface", interface, "Rasa", RASA_PRIVATE, "the gateways")


def actions_listener(settings: Settings) -> Listener:
    reached_by = "Rasa (and the gateways' health check)"
    return Listener("SANIC_HOST", settings.sanic_host, "rasa-sdk", ACTIONS_PRIVATE, reached_by)


def check_settings(settings: Settings, resolve: Resolver | None = None) -> list[str]:
    """The problems that forbid starting with these settings (empty in development)."""
    return review(settings, resolve).problems


def review(
    settings: Settings,
    resolve: Resolver | None = None,
    *,
    rasa_only: bool = False,
    actions_only: bool = False,
    interface: str | None = None,
) -> Report:
    """Problems and warnings for `settings` in the environment `settings.environment` names.
    `rasa_only`: the check inside the Rasa process (bot/rasa/server.py): its token, the
    `interface` it binds (its --interface; None: not given) and the action and replica addresses
    (the gateway's secrets, WeChat and database are not Rasa's).
    `actions_only`: the check inside the action server (bot/ops/action_server.py): the address it
    binds (SANIC_HOST) and its database; it has no secret of its own and is given none
    (bot/ops/stack.py)."""
    report = Report()
    env = settings.environment
    if env == DEVELOPMENT:
        return report
    if env != PRODUCTION:
        report.problems.append(
            f"BOT_ENV must be {DEVELOPMENT!r} or {PRODUCTION!r}, got {settings.environment!r}"
        )
        return report
    resolve = resolve or resolve_host
    _check_declaration(settings, report)
    if actions_only:
        _check_listener(actions_listener(settings), settings, resolve, report)
        _check_database(settings, report)
        return report
    _check_secrets(settings, report, rasa_only)
    if rasa_only:
        _check_listener(rasa_listener(interface), settings, resolve, report)
    for label, host in _addresses(settings, rasa_only):
        reason = public_address_reason(host, resolve)
        if reason is not None:
            report.problems.append(f"{label} {reason}: {RASA_PRIVATE}")
    if rasa_only:
        return report
    _check_wechat(settings.wechat, report)
    _check_database(settings, report)
    _check_gateway(settings, resolve, report)
    return report


# ---- secrets ------------------------------------------------------------------------------------


def _check_secrets(settings: Settings, report: Report, rasa_only: bool = False) -> None:
    values = {"RASA_AUTH_TOKEN": settings.rasa_auth_token}
    if not rasa_only:
        values["SESSION_SECRET"] = settings.session_secret
    for name, value in values.items():
        if name in settings.generated_secrets or not value.strip():
            report.problems.append(
                f"{name} is not set in the environment (the value generated into "
                "var/secrets.json is for development only)"
            )
            continue
        weakness = secret_weakness(value)
        if weakness is not None:
            report.problems.append(f"{name} is {weakness}")
    if settings.rasa_auth_token and settings.rasa_auth_token == settings.session_secret:
        report.problems.append("RASA_AUTH_TOKEN and SESSION_SECRET are the same value")


def secret_weakness(value: str, min_length: int = MIN_SECRET_LENGTH) -> str | None:
    """Why `value` is unfit as a secret, or None. Generate one: `openssl rand -base64 48`."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDERS or any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "a known placeholder value"
    if len(value) < min_length:
        return f"too short ({len(value)} characters, at least {min_length})"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return "a pattern, not a random value (too few distinct characters)"
    return None


# ---- addresses ----------------------------------------------------------------------------------


def resolve_host(host: str) -> list[str]:
    """Every address `host` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def public_address_reason(host: str, resolve: Resolver) -> str | None:
    """Why listening on `host` could expose a service publicly, or None when it cannot."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return None
    try:
        ipaddress.ip_address(name.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") is allowed
    except ValueError:
        addresses = sorted(resolve(name))
        if not addresses:
            return "does not resolve, so what it would listen on cannot be checked"
        reasons = [r for r in (_ip_reason(a) for a in addresses) if r is not None]
        return f"resolves to {', '.join(addresses)}; {reasons[0]}" if reasons else None
    return _ip_reason(name)


def _addresses(settings: Settings, rasa_only: bool) -> list[tuple[str, str]]:
    """(label, host) of Rasa, the action server and every replica the gateway spreads
    conversations over. Not RASA_HOST inside Rasa: there its --interface is what counts."""
    addresses = [] if rasa_only else [(f"RASA_HOST={settings.rasa_host!r}", settings.rasa_host)]
    addresses.append((f"ACTION_HOST={settings.action_host!r}", settings.action_host))
    addresses += [
        (f"RASA_URLS entry {url!r}", urlsplit(url).hostname or url)
        for url in settings.rasa_replicas
    ]
    return addresses


def _check_declaration(settings: Settings, report: Report) -> None:
    if settings.bind_all_interfaces not in ("", CONTAINER):
        report.problems.append(  # a typo must neither allow nor silently forbid
            f"BIND_ALL_INTERFACES must be {CONTAINER!r} or unset, "
            f"got {settings.bind_all_interfaces!r}"
        )


def _check_listener(
    listener: Listener, settings: Settings, resolve: Resolver, report: Report
) -> None:
    """Every interface only where BIND_ALL_INTERFACES=container declares a container; a public
    address never."""
    if settings.bind_all_interfaces == CONTAINER and _is_unspecified(listener.host):
        report.warnings.append(
            f"{listener.label} binds every interface of this container "
            f"(BIND_ALL_INTERFACES={CONTAINER}): the network policy must let only "
            f"{listener.reached_by} reach it"
        )
        return
    reason = public_address_reason(listener.host, resolve)
    if reason is not None:
        report.problems.append(f"{listener.label} {reason}: {listener.rule}")


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_unspecified
    except ValueError:
        return False


def _ip_reason(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_unspecified:
        return "listens on every interface, public ones included"
    if not (ip.is_loopback or ip.is_private):
        return "is a public address"
    return None


# ---- WeChat -------------------------------------------------------------------------------------


def _check_wechat(wechat: WechatConfig | None, report: Report) -> None:
    if wechat is None:
        return  # the channel is off
    token = wechat.token
    if _wechat_placeholder(token):
        report.problems.append("WECHAT_TOKEN is a placeholder value")
    elif len(token) < MIN_WECHAT_TOKEN_LENGTH:
        report.problems.append(
            f"WECHAT_TOKEN is too short ({len(token)} characters, at least "
            f"{MIN_WECHAT_TOKEN_LENGTH}): it can be recovered offline from one signed request"
        )
    app_secret = wechat.app_secret
    if app_secret and (_wechat_placeholder(app_secret) or len(set(app_secret)) < 6):
        report.problems.append("WECHAT_APP_SECRET is a placeholder value")
    aes_key = wechat.aes_key
    if not aes_key:
        report.warnings.append(
            "WECHAT_AES_KEY is not set: WeChat messages travel in plaintext mode (use safe mode)"
        )
    elif _wechat_placeholder(aes_key) or _aes_key_is_typed(aes_key):
        report.problems.append(
            "WECHAT_AES_KEY is a placeholder value (let the platform generate the EncodingAESKey)"
        )


def _wechat_placeholder(value: str) -> bool:
    lowered = value.lower()
    return lowered in PLACEHOLDERS or any(m in lowered for m in PLACEHOLDER_MARKERS_WECHAT)


def _aes_key_is_typed(aes_key: str) -> bool:
    """A key made of typed text (e.g. base64 of "0123456789abcdef…") rather than random bytes.
    A malformed key never gets here: WechatConfig refuses it, naming the problem."""
    try:
        key = b64decode(aes_key + "=", validate=True)
    except (Base64Error, ValueError):
        return False
    return len(set(key)) < MIN_DISTINCT_AES_BYTES


# ---- database and gateway -----------------------------------------------------------------------


def _check_database(settings: Settings, report: Report) -> None:
    try:
        backend = make_url(settings.database_url).get_backend_name()
    except Exception:  # a malformed URL fails at start anyway, with SQLAlchemy's message
        return
    if backend == "sqlite":
        report.warnings.append(
            "DATABASE_URL is SQLite: production should use PostgreSQL (one SQLite file allows one "
            "writer at a time and cannot be shared by several gateways)"
        )


def _check_gateway(settings: Settings, resolve: Resolver, report: Report) -> None:
    reason = public_address_reason(settings.gateway_host, resolve)
    if reason is not None:
        report.warnings.append(
            f"BOT_HOST={settings.gateway_host!r} {reason}: the gateway then answers plain HTTP "
            "directly; the documented set-up is 127.0.0.1 behind a TLS reverse proxy"
        )
    for entry in settings.trusted_proxies:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            report.problems.append(f"TRUSTED_PROXIES entry {entry!r} is not an address or network")
            continue
        if not (network.is_private or network.is_loopback) or network.prefixlen == 0:
            report.warnings.append(
                f"TRUSTED_PROXIES entry {entry!r} is not a private network: anyone there can "
                "claim any client address in X-Forwarded-For (the per-address limits)"
            )
    for origin in settings.allowed_origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            report.warnings.append(
                f"BOT_ALLOWED_ORIGINS entry {origin!r} never matches a browser's Origin "
                "(expected scheme://host[:port], no wildcards)"
            )


# ---- the command line ---------------------------------------------------------------------------


def startup_check(
    settings: Settings,
    stream: TextIO | None = None,
    resolve: Resolver | None = None,
    *,
    rasa_only: bool = False,
    actions_only: bool = False,
    interface: str | None = None,
) -> int:
    """Print warnings and problems; 0 when the process may start, 2 when it must not."""
    stream = stream or sys.stderr
    report = review(
        settings, resolve, rasa_only=rasa_only, actions_only=actions_only, interface=interface
    )
    for warning in report.warnings:
        print(f"warning: {warning}", file=stream)
    if not report.problems:
        return 0
    lines = [f"Refusing to start with BOT_ENV={settings.environment}:"]
    lines += [f"  - {problem}" for problem in report.problems]
    lines.append(
        "Fix these (see README.md, Security), or use BOT_ENV=development on a dev machine."
    )
    print("\n".join(lines), file=stream, flush=True)
    return 2
