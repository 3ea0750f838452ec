"""The start-up check (bot/ops/security.py): production refuses default or weak secrets, public
addresses for Rasa and the action server, placeholder WeChat credentials; development never does.
The last tests run the real command line (`python -m bot serve`) as a subprocess."""

from __future__ import annotations

import base64
import io
import os
import secrets
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.ops.probe import answers
from bot.ops.security import check_settings, review, startup_check
from bot.ops.stack import gateway_python
from bot.settings import PROJECT_ROOT, Settings, WechatConfig
from tests.support.running_stack import free_port

STRONG_TOKEN = "rT4k9ZqL2vX8mN1pB6cH3sJ7wE0yU5aD"  # 32 characters, as `openssl rand` gives
STRONG_SECRET = "Vf8Gq2Lx9Rk4Tz7Wm1Np6Yb3Hc5Jd0Ke-Sa"
WECHAT_TOKEN = "Qx7Lm2Vr9Kp4Zt8W"  # 16 letters and digits
WECHAT_SECRET = "3f9a1c7e5b2d8046a1e9c3b7d5f20864"  # 32 hex characters, like an AppSecret
WECHAT_AES_KEY = base64.b64encode(bytes(range(7, 39))[::-1]).decode().rstrip("=")
POSTGRES = "postgresql://ipbot:pw@10.0.0.5:5432/ipbot"


def no_dns(host: str) -> list[str]:
    """Name resolution for the tests: two known names, nothing else resolves."""
    return {"rasa.internal": ["10.0.3.7"], "api.example.net": ["93.184.216.34", "10.0.0.1"]}.get(
        host, []
    )


def production_settings(**changes: object) -> Settings:
    good = Settings(
        var_dir=Path("/nonexistent"),
        database_url=POSTGRES,
        rasa_auth_token=STRONG_TOKEN,
        session_secret=STRONG_SECRET,
        environment="production",
    )
    return replace(good, **changes)


def wechat(**changes: str) -> WechatConfig:
    return replace(
        WechatConfig(token=WECHAT_TOKEN, app_id="wx1", app_secret=WECHAT_SECRET), **changes
    )


def problems(settings: Settings | None = None) -> list[str]:
    return check_settings(settings or production_settings(), no_dns)


def test_a_good_production_configuration_passes_without_warnings() -> None:
    report = review(production_settings(), no_dns)
    assert report.problems == [] and report.warnings == []
    private = production_settings(
        rasa_host="10.0.3.7", action_host="rasa.internal", wechat=wechat(aes_key=WECHAT_AES_KEY)
    )
    assert problems(private) == []


@pytest.mark.parametrize("name", ["RASA_AUTH_TOKEN", "SESSION_SECRET"])
def test_a_secret_from_var_secrets_json_is_refused(name: str) -> None:
    # Settings hold a generated value, but it did not come from the environment.
    found = problems(production_settings(generated_secrets=frozenset({name})))
    assert found == [
        f"{name} is not set in the environment (the value generated into var/secrets.json "
        "is for development only)"
    ]


def test_settings_record_which_secrets_were_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BOT_ENV", "production")
    monkeypatch.setenv("RASA_AUTH_TOKEN", STRONG_TOKEN)
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    settings = Settings.from_env()
    assert settings.generated_secrets == {"SESSION_SECRET"}
    assert settings.rasa_auth_token == STRONG_TOKEN and len(settings.session_secret) >= 32
    assert (tmp_path / "secrets.json").exists()
    assert [p.split(" ")[0] for p in check_settings(settings, no_dns)] == ["SESSION_SECRET"]
    # The child processes are given both: generated once, the same value from then on.
    child = settings.as_env()
    assert child["SESSION_SECRET"] == settings.session_secret
    monkeypatch.setenv("SESSION_SECRET", "  ")  # blank is not set
    assert problems(Settings.from_env())[0].startswith("SESSION_SECRET is not set")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("test-token", "a known placeholder value"),
        ("changeme", "a known placeholder value"),
        ("secret", "a known placeholder value"),
        ("please-changeme-before-going-live-0123", "a known placeholder value"),
        ("Zq8x-short", "too short (10 characters, at least 32)"),
        ("ab" * 20, "a pattern, not a random value (too few distinct characters)"),
    ],
)
def test_weak_secrets_are_refused(value: str, why: str) -> None:
    token = problems(production_settings(rasa_auth_token=value))
    assert token == [f"RASA_AUTH_TOKEN is {why}"]
    cookie = problems(production_settings(session_secret=value))
    assert cookie == [f"SESSION_SECRET is {why}"]


def test_the_same_value_for_both_secrets_is_refused() -> None:
    settings = production_settings(session_secret=STRONG_TOKEN)
    assert problems(settings) == ["RASA_AUTH_TOKEN and SESSION_SECRET are the same value"]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("0.0.0.0", "listens on every interface, public ones included"),
        ("::", "listens on every interface, public ones included"),
        ("8.8.8.8", "is a public address"),
        ("2001:4860:4860::8888", "is a public address"),
        ("api.example.net", "resolves to 10.0.0.1, 93.184.216.34; is a public address"),
        ("rasa.nowhere", "does not resolve, so what it would listen on cannot be checked"),
    ],
)
def test_rasa_and_the_action_server_must_not_listen_publicly(host: str, reason: str) -> None:
    tail = ": Rasa's API and the action server must listen on loopback or a private network only"
    assert problems(production_settings(rasa_host=host)) == [f"RASA_HOST={host!r} {reason}{tail}"]
    assert problems(production_settings(action_host=host)) == [
        f"ACTION_HOST={host!r} {reason}{tail}"
    ]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "::1", "localhost", "10.1.2.3", "192.168.1.20", "fd00::5", "rasa.internal"],
)
def test_loopback_and_private_addresses_are_fine(host: str) -> None:
    assert problems(production_settings(rasa_host=host, action_host=host)) == []


def test_placeholder_wechat_credentials_are_refused() -> None:
    from tests.support.fake_wechat import AES_KEY, APP_SECRET, TOKEN  # the test suite's own values

    found = problems(
        production_settings(wechat=wechat(token=TOKEN, app_secret=APP_SECRET, aes_key=AES_KEY))
    )
    assert found == [
        "WECHAT_TOKEN is a placeholder value",
        "WECHAT_APP_SECRET is a placeholder value",
        "WECHAT_AES_KEY is a placeholder value (let the platform generate the EncodingAESKey)",
    ]
    short = problems(
        production_settings(wechat=wechat(token="abc123", app_secret="…", aes_key=WECHAT_AES_KEY))
    )
    assert short == [
        "WECHAT_TOKEN is too short (6 characters, at least 16): it can be recovered offline "
        "from one signed request",
        "WECHAT_APP_SECRET is a placeholder value",
    ]
    # WeChat off: nothing of it is looked at.
    assert problems(production_settings(wechat=None)) == []


def test_warnings_do_not_refuse() -> None:
    settings = production_settings(
        database_url="sqlite:///var/ipbot.db",
        gateway_host="0.0.0.0",
        allowed_origins=("*", "https://chat.example.gov.cn"),
        wechat=WechatConfig(token=WECHAT_TOKEN),
    )
    report = review(settings, no_dns)
    assert report.problems == []
    assert report.warnings == [
        "WECHAT_AES_KEY is not set: WeChat messages travel in plaintext mode (use safe mode)",
        "DATABASE_URL is SQLite: production should use PostgreSQL (one SQLite file allows one "
        "writer at a time and cannot be shared by several gateways)",
        "BOT_HOST='0.0.0.0' listens on every interface, public ones included: the gateway then "
        "answers plain HTTP directly; the documented set-up is 127.0.0.1 behind a TLS reverse "
        "proxy",
        "BOT_ALLOWED_ORIGINS entry '*' never matches a browser's Origin (expected "
        "scheme://host[:port], no wildcards)",
    ]


def test_every_problem_is_listed_at_once() -> None:
    settings = production_settings(
        rasa_auth_token="test-token",
        rasa_host="0.0.0.0",
        generated_secrets=frozenset({"SESSION_SECRET"}),
    )
    stream = io.StringIO()
    assert startup_check(settings, stream, no_dns) == 2
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Refusing to start with BOT_ENV=production:"
    assert [line.split(" ", 4)[3] for line in lines[1:-1]] == [
        "RASA_AUTH_TOKEN",
        "SESSION_SECRET",
        "RASA_HOST='0.0.0.0'",
    ]
    assert len(lines) == 5 and "BOT_ENV=development" in lines[-1]


def test_development_never_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    awful = production_settings(
        rasa_auth_token="t", session_secret="t", rasa_host="0.0.0.0", action_host="8.8.8.8",
        database_url="sqlite:///x.db", generated_secrets=frozenset({"SESSION_SECRET"}),
    )  # fmt: skip
    for env in ("", "development", " Development"):  # as BOT_ENV, read by Settings.from_env
        monkeypatch.setenv("BOT_ENV", env)
        environment = Settings.from_env(generate_secrets=False).environment
        settings = replace(awful, environment=environment)
        stream = io.StringIO()
        assert check_settings(settings, no_dns) == []
        assert startup_check(settings, stream, no_dns) == 0 and stream.getvalue() == ""


def test_an_unknown_environment_name_is_refused() -> None:
    # A typo must not switch the check off.
    assert check_settings(production_settings(environment="prod"), no_dns) == [
        "BOT_ENV must be 'development' or 'production', got 'prod'"
    ]


# ---- the real command line --------------------------------------------------------------------


def serve_env(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "RASA_", "ACTION_", "WECHAT_", "DATABASE_URL", "SESSION_"))
    }
    return {
        **base,
        "BOT_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "BOT_PORT": str(free_port()),
        "RASA_PORT": str(free_port()),
        **env,
    }


def test_serve_refuses_a_default_secret_in_production(tmp_path: Path) -> None:
    env = serve_env(
        tmp_path, BOT_ENV="production", RASA_AUTH_TOKEN="test-token", RASA_HOST="0.0.0.0"
    )
    started = time.monotonic()
    done = subprocess.run(
        [gateway_python(), "-m", "bot", "serve"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Refusing to start with BOT_ENV=production:" in done.stderr
    assert "  - RASA_AUTH_TOKEN is a known placeholder value" in done.stderr
    assert "  - SESSION_SECRET is not set in the environment" in done.stderr
    assert "  - RASA_HOST='0.0.0.0' listens on every interface" in done.stderr
    assert "warning: DATABASE_URL is SQLite" in done.stderr
    assert time.monotonic() - started < 30


def test_serve_starts_in_production_with_good_settings_and_in_development(
    tmp_path: Path,
) -> None:
    """The check lets a good configuration through (and development with defaults)."""
    good = {
        "BOT_ENV": "production",
        "RASA_AUTH_TOKEN": secrets.token_urlsafe(32),
        "SESSION_SECRET": secrets.token_urlsafe(32),
    }
    for extra in (good, {}):
        env = serve_env(tmp_path, **extra)
        url = f"http://127.0.0.1:{env['BOT_PORT']}/healthz"
        process = subprocess.Popen(
            [gateway_python(), "-m", "bot", "serve"],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not answers(url):
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
            with urllib.request.urlopen(url.replace("/healthz", "/"), timeout=5) as page:
                assert page.status == 200
        finally:
            process.terminate()
            process.wait(15)


# ---- issue 14: every Rasa replica, and the check inside the Rasa process ----------------------


def test_every_rasa_replica_address_is_checked() -> None:
    replicas = ("http://10.0.3.7:5005", "http://93.184.216.34:5005", "http://0.0.0.0:5006")
    found = problems(production_settings(rasa_replicas=replicas))
    assert found == [
        "RASA_URLS entry 'http://93.184.216.34:5005' is a public address: Rasa's API and the "
        "action server must listen on loopback or a private network only",
        "RASA_URLS entry 'http://0.0.0.0:5006' listens on every interface, public ones included: "
        "Rasa's API and the action server must listen on loopback or a private network only",
    ], found
    assert problems(production_settings(rasa_replicas=("http://rasa.internal:5005",))) == []


def test_the_rasa_process_runs_the_check_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import bot.rasa.server as rasa_server

    started: list[list[str]] = []
    fake_rasa = types.ModuleType("rasa.__main__")
    fake_rasa.main = lambda: started.append(list(sys.argv))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rasa.__main__", fake_rasa)
    monkeypatch.setattr(rasa_server, "cache_action_response_validator", lambda: None)
    monkeypatch.setattr(rasa_server, "cache_event_classes", lambda: None)
    for name, value in {
        "BOT_VAR_DIR": str(tmp_path), "BOT_ENV": "production", "RASA_AUTH_TOKEN": "test-token",
        "RASA_HOST": "127.0.0.1", "ACTION_HOST": "0.0.0.0",
        "RASA_URLS": "http://93.184.216.34:5005",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["bot.rasa.server", "--interface", "127.0.0.1"])
    with pytest.raises(SystemExit) as exited:
        rasa_server.main()
    assert exited.value.code == 2, f"Rasa started: {started}"
    err = capsys.readouterr().err
    assert "Refusing to start with BOT_ENV=production:" in err
    assert "  - RASA_AUTH_TOKEN is a known placeholder value" in err
    assert "  - ACTION_HOST='0.0.0.0' listens on every interface" in err
    assert "  - RASA_URLS entry 'http://93.184.216.34:5005' is a public address" in err
    assert "SESSION_SECRET" not in err  # Rasa is not given it: not Rasa's business
    assert started == []
    # Good settings: Rasa starts (with the token added inside the process).
    monkeypatch.setenv("RASA_AUTH_TOKEN", STRONG_TOKEN)
    monkeypatch.setenv("ACTION_HOST", "127.0.0.1")
    monkeypatch.setenv("RASA_URLS", "http://127.0.0.1:5005")
    rasa_server.main()
    assert started and started[0][-6:-2] == [
        "--auth-token",
        STRONG_TOKEN,
        "--jwt-secret",
        STRONG_TOKEN,
    ]
    assert started[0][-2:] == ["--jwt-method", "HS256"]  # the gateway signs JWTs, no ?token=


# ---- issue 14, #14: secrets per process, the action server's own check ------------------------

ALL_SECRETS = {
    "RASA_AUTH_TOKEN": STRONG_TOKEN,
    "SESSION_SECRET": "s" + STRONG_TOKEN[1:],
    "WECHAT_TOKEN": "wechat-token-0123456789",
    "WECHAT_APP_SECRET": "wechat-app-secret-0123456789",
    "WECHAT_AES_KEY": "k" * 43,
    "DATABASE_URL": "postgresql://ipbot:db-password@127.0.0.1/ipbot",
    "REDIS_URL": "redis://:redis-password@127.0.0.1:6379/0",
}


def test_each_process_gets_only_the_secrets_it_uses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The action server (no authentication at all) gets no secret but its database; Rasa only
    its token; the gateway all — also when the parent's environment holds them all."""
    from bot.ops.cluster import ClusterConfig, services_cluster
    from bot.ops.stack import services

    for name, value in {**ALL_SECRETS, "WECHAT_APP_ID": "wx0123456789abcdef"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    settings = Settings.from_env()
    assert settings.wechat is not None and settings.redis_url
    expected = {
        "actions": {"DATABASE_URL"},
        "rasa": {"RASA_AUTH_TOKEN"},
        "gateway": set(ALL_SECRETS),
    }
    cluster = services_cluster(settings, tmp_path / "model.tar.gz", ClusterConfig())
    secrets = set(ALL_SECRETS.values())
    for service in [*services(settings, tmp_path / "model.tar.gz"), *cluster]:
        kind = service.name.split("-")[0]
        given = {name for name in ALL_SECRETS if service.env.get(name)}
        assert given == expected[kind], (service.name, given)
        leaked = [k for k, v in service.env.items() if k not in expected[kind] and v in secrets]
        assert not leaked, (service.name, leaked)


def test_the_action_server_runs_the_check_and_exits_2(tmp_path: Path) -> None:
    from bot.ops.stack import services

    actions = next(s for s in services(production_settings(), tmp_path) if s.name == "actions")
    assert actions.argv[1:3] == ["-m", "bot.ops.action_server"]
    env = {
        **{k: v for k, v in os.environ.items() if k not in ALL_SECRETS},
        "BOT_VAR_DIR": str(tmp_path), "BOT_ENV": "production", "SANIC_HOST": "0.0.0.0",
    }  # fmt: skip
    env.pop("BIND_ALL_INTERFACES", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot.ops.action_server", "--actions", "actions",
         "--port", str(free_port())],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Refusing to start with BOT_ENV=production:" in done.stderr
    assert "  - SANIC_HOST='0.0.0.0' listens on every interface" in done.stderr
    assert "RASA_AUTH_TOKEN" not in done.stderr and "SESSION_SECRET" not in done.stderr


def test_trusted_proxies_must_be_addresses_and_private() -> None:
    report = review(production_settings(trusted_proxies=("10.0.0.5", "0.0.0.0/0", "lb-1")))
    assert "TRUSTED_PROXIES entry 'lb-1' is not an address or network" in report.problems
    assert [w for w in report.warnings if w.startswith("TRUSTED_PROXIES entry '0.0.0.0/0'")]
    assert not [w for w in report.warnings if "'10.0.0.5'" in w]


# ---- issue 14, row 13: the addresses Rasa and the action server really bind --------------------

BIND_VARIABLES = ("RASA_HOST", "ACTION_HOST", "RASA_URLS", "SANIC_HOST", "BIND_ALL_INTERFACES")
EVERY_INTERFACE = "listens on every interface, public ones included"


def start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    library: str,
    argv: list[str],
    **env: str,
) -> tuple[int | None, str]:
    """Run the entry point that starts `library` ("rasa" or "rasa_sdk", faked) in production with
    good secrets, `argv` and `env`: (exit code, None when it started; stderr)."""
    import bot.ops.action_server as action_server
    import bot.rasa.server as rasa_server

    started: list[list[str]] = []
    fake = types.ModuleType(f"{library}.__main__")
    fake.main = lambda: started.append(list(sys.argv))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"{library}.__main__", fake)
    monkeypatch.setattr(rasa_server, "cache_action_response_validator", lambda: None)
    monkeypatch.setattr(rasa_server, "cache_event_classes", lambda: None)
    for name in BIND_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    good = {"BOT_ENV": "production", "RASA_AUTH_TOKEN": STRONG_TOKEN, "DATABASE_URL": POSTGRES}
    for name, value in {"BOT_VAR_DIR": "/nonexistent", **good, **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["entry", *argv])
    main: Callable[[], None] = rasa_server.main if library == "rasa" else action_server.main
    try:
        main()
        code = None
    except SystemExit as exited:
        code = exited.code  # type: ignore[assignment]
    assert (code is None) == bool(started), (code, started)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "label"),
    [
        (["--interface", "0.0.0.0"], "--interface='0.0.0.0'"),
        (["--interface=0.0.0.0"], "--interface='0.0.0.0'"),
        (["-i", "::"], "--interface='::'"),
        (["--int", "0.0.0.0"], "--interface='0.0.0.0'"),  # argparse's abbreviation, as Rasa's
        ([], "--interface not given (Rasa's default '0.0.0.0')"),
    ],
)
def test_rasa_binding_every_interface_is_refused_unless_declared(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    label: str,
) -> None:
    """Rasa binds its --interface (0.0.0.0 when none is given), whatever RASA_HOST says."""
    code, err = start(monkeypatch, capsys, "rasa", [*argv, "--port", "5005"], RASA_HOST="10.0.0.21")
    assert code == 2
    assert f"  - {label} {EVERY_INTERFACE}" in err
    # Declared (a container; the network policy decides who reaches it): started, with a warning.
    code, err = start(monkeypatch, capsys, "rasa", argv, BIND_ALL_INTERFACES="container")
    assert code is None
    assert f"warning: {label} binds every interface of this container" in err
    assert "the network policy must let only the gateways reach it" in err


def test_rasa_checks_its_interface_not_rasa_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = start(monkeypatch, capsys, "rasa", ["-i", "10.0.0.21"], RASA_HOST="0.0.0.0")
    assert (code, err) == (None, "")
    # The declaration allows every interface, never a public address, nor a misspelt value.
    code, err = start(
        monkeypatch, capsys, "rasa", ["-i", "8.8.8.8"], BIND_ALL_INTERFACES="container"
    )
    assert code == 2 and "  - --interface='8.8.8.8' is a public address" in err
    code, err = start(monkeypatch, capsys, "rasa", ["-i", "0.0.0.0"], BIND_ALL_INTERFACES="yes")
    assert code == 2
    assert "  - BIND_ALL_INTERFACES must be 'container' or unset, got 'yes'" in err


@pytest.mark.parametrize(
    ("env", "label"),
    [
        ({"SANIC_HOST": "0.0.0.0"}, "SANIC_HOST='0.0.0.0'"),
        ({"SANIC_HOST": "::"}, "SANIC_HOST='::'"),
        ({}, "SANIC_HOST not set (rasa-sdk's default '0.0.0.0')"),
    ],
)
def test_the_action_server_binding_every_interface_is_refused_unless_declared(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    label: str,
) -> None:
    """rasa-sdk binds SANIC_HOST (0.0.0.0 when unset), whatever ACTION_HOST says."""
    argv = ["--actions", "actions"]
    code, err = start(monkeypatch, capsys, "rasa_sdk", argv, ACTION_HOST="10.0.0.21", **env)
    assert code == 2
    assert f"  - {label} {EVERY_INTERFACE}" in err
    code, err = start(monkeypatch, capsys, "rasa_sdk", argv, BIND_ALL_INTERFACES="container", **env)
    assert code is None
    assert f"warning: {label} binds every interface of this container" in err
    assert "the network policy must let only Rasa (and the gateways' health check) reach it" in err


def test_the_action_server_checks_sanic_host_not_action_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SANIC_HOST": "10.0.0.21", "ACTION_HOST": "0.0.0.0"}
    assert start(monkeypatch, capsys, "rasa_sdk", [], **env) == (None, "")
    code, err = start(monkeypatch, capsys, "rasa_sdk", [], SANIC_HOST="8.8.8.8")
    assert code == 2 and "  - SANIC_HOST='8.8.8.8' is a public address" in err


def test_the_libraries_bind_every_interface_by_default() -> None:
    """What "not given" means above, read from Rasa and rasa-sdk themselves."""
    import rasa_sdk
    from rasa.core.constants import DEFAULT_SERVER_INTERFACE

    assert DEFAULT_SERVER_INTERFACE == "0.0.0.0"
    endpoint = Path(rasa_sdk.__file__ or "").parent / "endpoint.py"
    assert 'os.environ.get("SANIC_HOST", "0.0.0.0")' in endpoint.read_text()
