"""The staff app, its test client and two accounts, for every staff test (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from bot.app import create_app
from bot.settings import Settings
from bot.staff import accounts
from tests.support.staff_login import FAST_HASHER, add_account


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    monkeypatch.setattr(accounts, "HASHER", FAST_HASHER)
    return FAST_HASHER


@pytest.fixture()
def staff_app(database_url: str, tmp_path: Path) -> web.Application:
    settings = Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_auth_token="t",
        session_secret="staff-test-secret",
        rasa_port=1,  # nothing listens: these tests never reach Rasa
        action_port=1,
    )
    return create_app(settings)


@pytest.fixture()
async def client(staff_app: web.Application, aiohttp_client) -> TestClient:
    return await aiohttp_client(staff_app)


@pytest.fixture()
def agent(database_url: str) -> int:
    return add_account(database_url, "wangxm", "agent", "王小明")


@pytest.fixture()
def admin(database_url: str) -> int:
    return add_account(database_url, "lihua", "admin", "李华")
