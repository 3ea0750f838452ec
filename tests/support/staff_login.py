"""Signing in to the staff console through aiohttp's test client, with a cheap password hash."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from bot.db.engine import session_factory
from bot.staff import accounts

PASSWORD = "correct horse battery"
COOKIE = "ipbot_session"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# A cheap argon2id for tests (the product uses argon2-cffi's defaults: 64 MiB, 3 passes).
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PRODUCT_HASHER = accounts.HASHER  # before the fixture below swaps it


def add_account(database_url: str, username: str, role: str = "agent", name: str = "") -> int:
    with session_factory(database_url)() as db:
        account = accounts.create_account(
            db, username, name or f"客服{username}", PASSWORD, role, hasher=FAST_HASHER
        )
        return account.id


async def csrf_of(client: TestClient, path: str = "/staff/login") -> str:
    response = await client.get(path)
    assert response.status == 200, path
    found = CSRF_FIELD.search(await response.text())
    assert found, f"no csrf_token field on {path}"
    return found.group(1)


async def login(client: TestClient, username: str, password: str = PASSWORD):
    token = await csrf_of(client)
    return await client.post(
        "/staff/login",
        data={"csrf_token": token, "username": username, "password": password},
        allow_redirects=False,
    )


async def logged_in(client: TestClient, username: str) -> str:
    """Sign in; return the CSRF token of the signed-in session."""
    response = await login(client, username)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/staff"
    return await csrf_of(client, "/staff/tickets")
