"""bot/settings.py: the one reader of the environment, and what it hands to child processes."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from bot.settings import (
    ClusterSettings,
    Settings,
    WechatConfig,
    WechatConfigError,
    load_or_create_secret,
)
from tests.support.fake_wechat import AES_KEY

CLUSTER_VARIABLES = (
    "RASA_REPLICAS", "GATEWAY_INSTANCES", "RASA_LOCK_REDIS_DB", "RASA_LOCK_KEY_PREFIX",
    "TICKET_LOCK_LIFETIME", "ACTION_SERVER_SANIC_WORKERS", "SANIC_WORKERS",
    "TF_INTRA_OP_PARALLELISM_THREADS", "TF_INTER_OP_PARALLELISM_THREADS", "RASA_SQL_POOL_SIZE",
    "RASA_SQL_MAX_OVERFLOW",
)  # fmt: skip
WECHAT_VARIABLES = (
    "WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_AES_KEY", "WECHAT_API_BASE",
    "WECHAT_REPLY_TIMEOUT",
)  # fmt: skip


@pytest.fixture()
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with none of the product's variables but BOT_VAR_DIR (a temporary one)."""
    known = Settings(var_dir=tmp_path, database_url="").as_env()
    for name in (*known, *CLUSTER_VARIABLES, *WECHAT_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    return monkeypatch


def test_defaults_need_no_configuration(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'ipbot.db'}"
    assert settings.generated_secrets == {"RASA_AUTH_TOKEN", "SESSION_SECRET"}
    assert settings.wechat is None and settings.cluster == ClusterSettings()
    assert (settings.redis_url, settings.redis_namespace) == ("", "ipbot")
    again = Settings.from_env()  # the generated secrets are kept
    assert (again.rasa_auth_token, again.session_secret) == (
        settings.rasa_auth_token,
        settings.session_secret,
    )


def test_child_processes_get_every_setting(environment: pytest.MonkeyPatch) -> None:
    """`as_env()` read back by `from_env()` (what a process `bot run` starts does) gives the same
    settings: nothing the parent read is lost on the way."""
    for name, value in {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
        "BOT_HOST": "10.0.0.2", "BOT_PORT": "8100", "RASA_PORT": "5100", "ACTION_PORT": "5155",
        "RASA_URLS": "http://10.0.0.3:5005,http://10.0.0.4:5005",
        "RASA_AUTH_TOKEN": "token-0123", "SESSION_SECRET": "secret-4567",
        "RASA_TIMEOUT": "3.5", "DB_TIMEOUT": "2", "BOT_ALLOWED_ORIGINS": "https://a.example.cn",
        "CHAT_RATE_LIMIT": "4", "CHAT_RATE_WINDOW": "7.5", "HANDOFF_HOURS": "always",
        "HANDOFF_TIMEZONE": "UTC", "HANDOFF_RELEASE_SECONDS": "30",
        "REDIS_URL": "redis://127.0.0.1:6379/3", "REDIS_NAMESPACE": "ipbot-b",
        "BOT_ENV": "Production",
        "WECHAT_TOKEN": " token-of-wechat ", "WECHAT_APP_ID": "wx1", "WECHAT_APP_SECRET": "s3",
        "WECHAT_AES_KEY": AES_KEY, "WECHAT_API_BASE": "http://127.0.0.1:9/",
        "WECHAT_REPLY_TIMEOUT": "3",
    }.items():  # fmt: skip
        environment.setenv(name, value)
    parent = Settings.from_env()
    assert parent.environment == "production" and parent.generated_secrets == frozenset()
    assert parent.wechat == WechatConfig(
        token="token-of-wechat",
        app_id="wx1",
        app_secret="s3",
        aes_key=AES_KEY,
        api_base="http://127.0.0.1:9",
        reply_timeout=3.0,
    )
    for name, value in parent.as_env().items():
        environment.setenv(name, value)
    assert Settings.from_env() == parent
    # WeChat off in the parent is off in the child, whatever the child inherits besides.
    off = replace(parent, wechat=None).as_env()
    assert off["WECHAT_TOKEN"] == ""
    environment.setenv("WECHAT_TOKEN", off["WECHAT_TOKEN"])
    assert Settings.from_env().wechat is None


def test_cluster_variables_are_read_too(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("RASA_REPLICAS", "3")
    environment.setenv("RASA_LOCK_KEY_PREFIX", "nlu")
    environment.setenv("TF_INTRA_OP_PARALLELISM_THREADS", "")  # empty: unset
    cluster = Settings.from_env().cluster
    assert cluster == ClusterSettings(rasa_replicas=3, lock_key_prefix="nlu")
    environment.setenv("GATEWAY_INSTANCES", "two")
    with pytest.raises(ValueError, match="GATEWAY_INSTANCES must be a whole number, got 'two'"):
        Settings.from_env()


def test_a_bad_wechat_variable_stops_reading_with_its_name(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("WECHAT_TOKEN", "t")
    environment.setenv("WECHAT_AES_KEY", "short")
    environment.setenv("WECHAT_APP_ID", "wx1")
    with pytest.raises(WechatConfigError, match="WECHAT_AES_KEY"):
        Settings.from_env()


def test_rasa_takes_its_token_from_the_environment_only(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """bot/rasa/server.py: no token in the environment, no Rasa (and nothing generated)."""
    from bot.rasa import server

    with pytest.raises(SystemExit, match="RASA_AUTH_TOKEN is not set"):
        server.main()
    assert not (tmp_path / "secrets.json").exists()
    assert Settings.from_env(generate_secrets=False).generated_secrets == frozenset()


def test_secrets_json_is_created_0600_with_no_window(tmp_path: Path, monkeypatch) -> None:
    """Created with mode 0600 from the start, not chmod-ed afterwards: with chmod switched off
    and a permissive umask, the file (and its .tmp before the rename) is still 0600."""
    created: dict[str, int] = {}
    original_replace = os.replace

    def replace(src, dst) -> None:  # the .tmp file's mode just before it becomes secrets.json
        created[str(src)] = stat.S_IMODE(os.stat(src).st_mode)
        original_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchmod", lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    previous = os.umask(0o022)
    try:
        value = load_or_create_secret(tmp_path, "session_secret")
    finally:
        os.umask(previous)
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert list(created.values()) == [0o600], created
    assert load_or_create_secret(tmp_path, "session_secret") == value
