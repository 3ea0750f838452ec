"""Issue 14, findings #2–#5: login floods, lock-out, revoked sessions and the live socket.

Each test drives the real gateway app (bot.app.create_app) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from sqlalchemy import text, update

from bot.app import create_app
from bot.db.engine import session_factory
from bot.db.runner import run_db
from bot.db.staff import StaffUser
from bot.settings import Settings
from bot.staff import accounts
from tests.support.staff_login import (
    COOKIE,
    FAST_HASHER,
    PASSWORD,
    PRODUCT_HASHER,
    csrf_of,
    logged_in,
    login,
)

TOO_MANY = "登录尝试过于频繁，请稍后再试。"


def settings_for(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_auth_token="t",
        session_secret="staff-test-secret",
        rasa_port=1,
        action_port=1,
    )


def session_cookie(client: TestClient) -> str:
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    raise AssertionError("no session cookie")


def use_only_cookie(client: TestClient, value: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: value}, client.make_url("/"))


# --- #2: a login flood does not starve the chat's database calls ---------------------------------


async def test_a_login_flood_leaves_chat_database_calls_within_their_deadline(
    client: TestClient, agent: int, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "HASHER", PRODUCT_HASHER)  # 64 MiB, 3 passes: the real cost
    token = await csrf_of(client)

    async def attempt(i: int) -> tuple[int, str]:
        response = await client.post(
            "/staff/login",
            data={"csrf_token": token, "username": f"nobody{i}", "password": f"guess {i}"},
            allow_redirects=False,
        )
        return response.status, await response.text()

    flood = [asyncio.create_task(attempt(i)) for i in range(60)]
    await asyncio.sleep(0.3)  # the flood is being answered
    started = time.monotonic()
    answer = await run_db(database_url, lambda db: db.execute(text("select 1")).scalar(), 1.0)
    waited = time.monotonic() - started
    async with client.ws_connect("/ws") as citizen:  # a citizen chats meanwhile
        assert (await citizen.receive_json(timeout=5))["type"] == "history"
        await citizen.send_json({"type": "message", "id": "during-flood", "text": "商标在哪里注册"})
        ack = await citizen.receive_json(timeout=1.0)  # well within DB_TIMEOUT (5 s)
    results = await asyncio.gather(*flood)
    assert answer == 1 and waited < 1.0
    assert (ack["type"], ack["client_id"]) == ("ack", "during-flood")
    with session_factory(database_url)() as db:
        stored = db.execute(
            text("select text from messages where client_message_id = 'during-flood'")
        )
        assert stored.scalar_one() == "商标在哪里注册"
    statuses = Counter(status for status, _ in results)
    assert statuses[429] > 0, statuses  # throttled before any hashing
    assert all(TOO_MANY in body for status, body in results if status == 429)


async def test_logins_from_one_address_are_throttled_before_hashing(
    client: TestClient, agent: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = accounts._verify
    monkeypatch.setattr(
        accounts, "_verify", lambda h, stored, pw: verified.append(pw) or real_verify(h, stored, pw)
    )
    statuses = [(await login(client, "nobody", f"guess {i}")).status for i in range(15)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 5
    assert len(verified) == 10
    refused = await login(client, "wangxm", PASSWORD)  # even the right password, for a while
    assert refused.status == 429 and TOO_MANY in await refused.text()


# --- #5: lock-out counted atomically, and the same answer for locked and unknown names ---------


class CountingHasher(PasswordHasher):
    """FAST_HASHER's parameters; counts (slowly) the verifications against one hash."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.target = ""
        self.count = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        if hash == self.target:
            with self._lock:
                self.count += 1
            time.sleep(0.05)  # long enough for the whole burst to overlap
        return super().verify(hash, password)


def test_a_concurrent_burst_of_wrong_passwords_verifies_at_most_five(
    database_url: str, agent: int
) -> None:
    hasher = CountingHasher()
    with session_factory(database_url)() as db:
        hasher.target = db.get(StaffUser, agent).password_hash
    barrier = threading.Barrier(20)
    texts: list[str] = []

    def guess(i: int) -> None:
        with session_factory(database_url)() as db:
            barrier.wait()
            try:
                accounts.authenticate(db, "wangxm", f"wrong password {i}", hasher=hasher)
            except accounts.LoginRefused as refused:
                texts.append(refused.text)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(texts) == 20
    assert hasher.count <= 5, f"{hasher.count} passwords were tried"
    with session_factory(database_url)() as db:
        account = db.get(StaffUser, agent)
        assert account.locked_until is not None
        with pytest.raises(accounts.LoginRefused) as locked:
            accounts.authenticate(db, "wangxm", PASSWORD, hasher=hasher)
        with pytest.raises(accounts.LoginRefused) as unknown:
            accounts.authenticate(db, "nobody", PASSWORD, hasher=hasher)
    assert hasher.count <= 5
    assert locked.value.text == unknown.value.text == accounts.BAD_CREDENTIALS
    assert set(texts) == {accounts.BAD_CREDENTIALS}


async def test_a_locked_name_and_an_unknown_name_get_the_same_page(
    client: TestClient, agent: int, database_url: str
) -> None:
    for attempt in range(5):
        await login(client, "wangxm", f"wrong password {attempt}")
    with session_factory(database_url)() as db:
        assert db.get(StaffUser, agent).locked_until is not None
    locked = await login(client, "wangxm", PASSWORD)
    unknown = await login(client, "nobody", PASSWORD)
    assert locked.status == unknown.status == 401
    locked_html, unknown_html = await locked.text(), await unknown.text()
    assert "账号已锁定" not in locked_html
    assert locked_html.replace("wangxm", "nobody") == unknown_html


# --- #4: logout is stored in the database, for every gateway and after a restart -------------


async def test_a_logged_out_cookie_is_refused_by_another_gateway_and_after_a_restart(
    client: TestClient, agent: int, database_url: str, tmp_path: Path, aiohttp_client
) -> None:
    token = await logged_in(client, "wangxm")
    copied = session_cookie(client)
    other = await aiohttp_client(create_app(settings_for(database_url, tmp_path)))
    use_only_cookie(other, copied)
    assert (await other.get("/staff", allow_redirects=False)).status == 200  # shared: it works
    response = await client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert (await other.get("/staff", allow_redirects=False)).status == 302
    assert (await other.get("/staff/admin/transcripts.csv")).status == 401
    restarted = await aiohttp_client(create_app(settings_for(database_url, tmp_path)))
    use_only_cookie(restarted, copied)
    assert (await restarted.get("/staff", allow_redirects=False)).status == 302


# --- #3: the live socket re-checks the session on every action ---------------------------------


async def next_answer(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
    """The next frame that is not a queue update; None when the server closed the socket."""
    while True:
        message = await ws.receive(timeout=5)
        if message.type != aiohttp.WSMsgType.TEXT:
            return None
        frame = message.json()
        if frame["type"] not in ("queue", "new_handoff"):
            return frame


def refused(answer: dict[str, Any] | None) -> bool:
    return answer is None or (answer["type"] == "error" and answer["code"] == "unauthorized")


async def try_an_action(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Send an action, unless the server has closed the socket already."""
    with contextlib.suppress(ConnectionResetError):
        if not ws.closed:
            await ws.send_json({"type": "open", "conversation_id": "no-such-conversation"})


async def open_console(client: TestClient) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/staff/ws", origin=str(client.make_url("")).rstrip("/"))
    assert (await next_answer(ws) or {}).get("type") == "hello"
    # Still signed in: an action is answered (the conversation does not exist).
    await ws.send_json({"type": "open", "conversation_id": "no-such-conversation"})
    answer = await next_answer(ws)
    assert answer is not None and answer.get("code") != "unauthorized", answer
    return ws


async def test_the_live_socket_ends_with_logout(client: TestClient, agent: int) -> None:
    token = await logged_in(client, "wangxm")
    ws = await open_console(client)
    response = await client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    await try_an_action(ws)
    assert refused(await next_answer(ws))
    await ws.close()


async def test_the_live_socket_ends_with_deactivation(
    client: TestClient, agent: int, database_url: str
) -> None:
    await logged_in(client, "wangxm")
    ws = await open_console(client)
    with session_factory(database_url)() as db:
        db.execute(update(StaffUser).where(StaffUser.id == agent).values(active=False))
        db.commit()
    await asyncio.sleep(1.2)  # longer than the socket's identity cache
    await try_an_action(ws)
    assert refused(await next_answer(ws))
    await ws.close()


async def test_the_live_socket_ends_with_demotion(
    client: TestClient, admin: int, database_url: str
) -> None:
    await logged_in(client, "lihua")
    ws = await open_console(client)
    with session_factory(database_url)() as db:
        db.execute(update(StaffUser).where(StaffUser.id == admin).values(role="agent"))
        db.commit()
    await asyncio.sleep(1.2)
    await try_an_action(ws)
    assert refused(await next_answer(ws))
    await ws.close()


def test_fast_hasher_is_what_the_fixture_installs() -> None:
    assert accounts.HASHER is FAST_HASHER
