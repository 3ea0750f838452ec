"""Faults, on loopback and bounded in time (README "Faults"): the gateway killed around an
acknowledgement, PostgreSQL away for a few seconds, the action server down.

The session's `stack` is shared: whatever a test stops, it starts again (and leaves running).
Each step notes what the user sees on the page.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.conversation.frames import HUMAN_BUTTON
from bot.conversation.handoff import NOBODY_TEXT, WAITING_TEXT
from bot.conversation.pipeline import BUSY_TEXT
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.migrate import upgrade
from bot.webchat.routes import NOT_STORED_TEXT, RETRY_NOT_STORED_SECONDS
from tests.support.chat_client import ChatClient, texts
from tests.support.running_stack import RunningStack, free_port
from tests.support.tcp_proxy import TcpProxy

QUESTION = "商标受理窗口在哪"
ANSWER_MENTIONS = "商标受理窗口"  # the real model's answer to QUESTION says this
QUIET_SECONDS = 1.5  # after a duplicate's ack: long enough for an answer that must not come


# ---- helpers ----------------------------------------------------------------------------------


def signal_group(stack: RunningStack, name: str, sig: signal.Signals) -> None:
    os.killpg(stack.processes[name].pid, sig)


def kill(stack: RunningStack, name: str) -> None:
    """SIGKILL: no shutdown handler runs, sockets are left as a crash leaves them."""
    process = stack.processes.pop(name)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


async def start(stack: RunningStack, name: str) -> None:
    await asyncio.to_thread(stack.start, name)  # blocking: keep this loop free meanwhile


@dataclass
class Exchange:
    ack: dict[str, Any]
    answer: list[dict[str, Any]]  # bot/error/system frames until typing stops


async def send(chat: ChatClient, client_id: str, text: str, payload: str | None = None) -> Exchange:
    """Send one message; its ack and, unless it is a duplicate, its whole answer."""
    assert chat.ws is not None
    frame: dict[str, Any] = {"type": "message", "id": client_id, "text": text}
    if payload is not None:
        frame["payload"] = payload
    await chat.ws.send_json(frame)
    ack = await chat.wait_for(lambda f: f.get("client_id") == client_id)
    if ack["type"] != "ack" or ack["duplicate"]:
        return Exchange(ack, await frames_until_quiet(chat))
    answer = []
    while (received := await chat.ws.receive_json(timeout=30)) != {"type": "typing", "on": False}:
        if received.get("type") != "typing":
            answer.append(received)
    return Exchange(ack, answer)


async def frames_until_quiet(chat: ChatClient, seconds: float = QUIET_SECONDS) -> list[dict]:
    assert chat.ws is not None
    frames = []
    while True:
        try:
            frames.append(await chat.ws.receive_json(timeout=seconds))
        except asyncio.TimeoutError:
            return frames


def stored_copies(database_url: str, client_id: str) -> list[Message]:
    with session_factory(database_url)() as session:
        return list(
            session.execute(select(Message).where(Message.client_message_id == client_id)).scalars()
        )


def roles_and_texts(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["type"], m.get("text", "")) for m in history["messages"]]


def answered_once(history: dict[str, Any], client_id: str) -> list[str]:
    """The bot texts between the user message `client_id` and the next user message."""
    messages = history["messages"]
    [at] = [i for i, m in enumerate(messages) if m.get("client_id") == client_id]
    after = []
    for message in messages[at + 1 :]:
        if message["type"] == "user":
            break
        after.append(message.get("text", ""))
    return after


# ---- the gateway killed -----------------------------------------------------------------------


@pytest.mark.e2e
async def test_gateway_killed_before_the_ack(stack: RunningStack) -> None:
    client_id = uuid.uuid4().hex
    async with ChatClient(stack.gateway_url) as chat:
        greeting = await send(chat, uuid.uuid4().hex, "你好")
        assert "宁波知识产权公共服务助手" in texts(greeting.answer)
        signal_group(stack, "gateway", signal.SIGSTOP)  # takes no more work …
        assert chat.ws is not None
        await chat.ws.send_json({"type": "message", "id": client_id, "text": QUESTION})
        kill(stack, "gateway")  # … and dies with the frame unread: never stored nor acknowledged
        # The page: "连接中…", the question shown as pending in its outbox.
        try:
            assert stored_copies(stack.settings.database_url, client_id) == []
        finally:
            await start(stack, "gateway")
        history = await chat.connect()  # the page reconnects: the greeting is still there
        assert roles_and_texts(history)[0] == ("user", "你好")
        assert client_id not in {m.get("client_id") for m in history["messages"]}
        # The page resends its outbox once the history has arrived: stored now, answered once.
        resent = await send(chat, client_id, QUESTION)
        assert resent.ack["type"] == "ack" and resent.ack["duplicate"] is False
        assert ANSWER_MENTIONS in texts(resent.answer)
        assert not [f for f in resent.answer if f["type"] == "error"]
        # A second resend (the page did not see the ack) changes nothing.
        again = await send(chat, client_id, QUESTION)
        assert again.ack["duplicate"] is True and again.answer == []
        history = await chat.connect()
    assert len(stored_copies(stack.settings.database_url, client_id)) == 1
    assert ANSWER_MENTIONS in "".join(answered_once(history, client_id))
    assert [m["type"] for m in history["messages"]].count("user") == 2


@pytest.mark.e2e
async def test_gateway_killed_after_the_ack_before_the_answer(stack: RunningStack) -> None:
    """Stored and acknowledged, then the gateway dies before the answer: after the restart the
    resent copy is not stored again, and the question still gets its one answer."""
    client_id = uuid.uuid4().hex
    async with ChatClient(stack.gateway_url) as chat:
        await send(chat, uuid.uuid4().hex, "你好")
        signal_group(stack, "rasa", signal.SIGSTOP)  # Rasa takes the question, answers later
        try:
            assert chat.ws is not None
            await chat.ws.send_json({"type": "message", "id": client_id, "text": QUESTION})
            ack = await chat.wait_for(lambda f: f.get("type") == "ack")
            assert ack["client_id"] == client_id and ack["duplicate"] is False
            # The page: the question marked as sent, "typing…", then the line drops.
            kill(stack, "gateway")
        finally:
            signal_group(stack, "rasa", signal.SIGCONT)
        await start(stack, "gateway")
        history = await chat.connect()
        assert [m.get("client_id") for m in history["messages"]].count(client_id) == 1
        # An unanswered question the page resends (it may not have seen the ack).
        resent = await send(chat, client_id, QUESTION)
        assert resent.ack["duplicate"] is True  # not stored twice …
        answer = texts([f for f in resent.answer if f.get("type") == "bot"])
        assert ANSWER_MENTIONS in answer, (
            "an acknowledged question whose answer died with the gateway is never answered",
            resent.answer,
        )  # … but answered once
        history = await chat.connect()
    assert len(stored_copies(stack.settings.database_url, client_id)) == 1
    assert ANSWER_MENTIONS in "".join(answered_once(history, client_id))


# ---- PostgreSQL away for a few seconds --------------------------------------------------------


def test_the_proxy_cuts_and_restores(postgres_schema_url: str) -> None:
    """The fault tool itself: a cut resets open connections and refuses new ones."""
    url = make_url(postgres_schema_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        dsn = f"host=127.0.0.1 port={proxy.port} user={url.username} dbname={url.database}"
        connection = psycopg2.connect(dsn, connect_timeout=3)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        proxy.cut()
        with pytest.raises(psycopg2.OperationalError), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        started = time.monotonic()
        with pytest.raises(psycopg2.OperationalError, match="refused"):
            psycopg2.connect(dsn, connect_timeout=3)
        assert time.monotonic() - started < 1
        proxy.restore()
        with psycopg2.connect(dsn, connect_timeout=3) as again, again.cursor() as cursor:
            cursor.execute("SELECT 2")
            assert cursor.fetchone() == (2,)
        again.close()
    finally:
        proxy.stop()


@pytest.fixture()
def gateway_through_proxy(
    stack: RunningStack, postgres_schema_url: str, tmp_path: Path
) -> Iterator[tuple[RunningStack, TcpProxy, str]]:
    """A second gateway process on a fresh PostgreSQL schema, its database line through a
    TcpProxy; the session's Rasa answers it. Yields (gateway, proxy, direct database URL)."""
    upgrade(postgres_schema_url)
    direct = make_url(postgres_schema_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432).start()
    proxied = direct.set(host="127.0.0.1", port=proxy.port)
    settings = replace(
        stack.settings,
        gateway_port=free_port(),
        database_url=proxied.render_as_string(hide_password=False),
    )
    gateway = RunningStack(settings, stack.model, tmp_path / "logs")
    try:
        gateway.start("gateway")
        yield gateway, proxy, postgres_schema_url
    finally:
        gateway.stop()
        proxy.stop()


@pytest.mark.e2e
async def test_postgresql_away_for_a_few_seconds(
    gateway_through_proxy: tuple[RunningStack, TcpProxy, str],
) -> None:
    gateway, proxy, database_url = gateway_through_proxy
    client_id = uuid.uuid4().hex
    async with ChatClient(gateway.gateway_url) as chat:
        greeting = await send(chat, uuid.uuid4().hex, "你好")
        assert "宁波知识产权公共服务助手" in texts(greeting.answer)
        assert proxy.accepted >= 1  # the gateway's database line runs through the proxy

        proxy.cut()  # PostgreSQL gone: open connections reset, new ones refused
        started = time.monotonic()
        refused = await send(chat, client_id, QUESTION)
        # The page: "消息暂时没有发出，稍后会自动重发。" under the question, no tick; it resends
        # by itself after retry_after seconds. Nothing is acknowledged that is not stored.
        assert refused.ack == {
            "type": "error",
            "code": "not_stored",
            "text": NOT_STORED_TEXT,
            "client_id": client_id,
            "retry_after": RETRY_NOT_STORED_SECONDS,
        }
        assert time.monotonic() - started < 5  # told at once, not after a long hang
        assert not [f for f in refused.answer if f.get("type") in ("ack", "bot")]
        assert stored_copies(database_url, client_id) == []
        # Another tab opened now still connects (its history is read again later).
        async with ChatClient(gateway.gateway_url) as other_tab:
            assert other_tab.history is not None and other_tab.history["type"] == "history"
        assert chat.ws is not None and not chat.ws.closed  # the socket stayed open

        proxy.restore()  # PostgreSQL back: no restart; the pool's pre-ping drops dead connections
        resent = await send(chat, client_id, QUESTION)
        # The page: the question gets its tick, then the answer.
        assert resent.ack["type"] == "ack" and resent.ack["duplicate"] is False
        assert ANSWER_MENTIONS in texts(resent.answer)
        history = await chat.connect()
    [stored] = stored_copies(database_url, client_id)
    assert stored.text == QUESTION and stored.status == "answered"
    assert ANSWER_MENTIONS in "".join(answered_once(history, client_id))
    assert [m.get("text") for m in history["messages"] if m["type"] == "user"] == ["你好", QUESTION]


# ---- the action server down -------------------------------------------------------------------


@pytest.mark.e2e
async def test_action_server_down_offers_a_person(stack: RunningStack) -> None:
    """Covered for the gateway alone by test_webchat_gateway.py::
    test_no_reply_from_rasa_is_not_silence (a stand-in Rasa answering nothing); here with the
    real Rasa, whose custom actions fail, and the offered button followed."""
    stack.stop("actions")
    try:
        async with ChatClient(stack.gateway_url) as chat:
            asked = await send(chat, uuid.uuid4().hex, "鄞州有品牌指导站吗")  # a custom action
            # The page: "系统繁忙，请稍后再试，或转人工咨询。" with a 转人工 button, not silence.
            assert [f for f in asked.answer if f["type"] == "error"] == [
                {"type": "error", "code": "no_answer", "text": BUSY_TEXT, "buttons": [HUMAN_BUTTON]}
            ]
            # The button does what it says: a person (nobody is online in tests, so the offer
            # to leave a call-back number), not the same apology again.
            pressed = await send(chat, uuid.uuid4().hex, "转人工", payload=HUMAN_BUTTON["payload"])
            assert not [f for f in pressed.answer if f["type"] == "error"], pressed.answer
            shown = texts([f for f in pressed.answer if f["type"] == "system"])
            assert shown in (NOBODY_TEXT, WAITING_TEXT), pressed.answer
            assert [f["state"] for f in pressed.answer if f["type"] == "handoff"] in (
                ["offline"],
                ["waiting"],
            )
    finally:
        await start(stack, "actions")
