"""Every web chat message is stored before its ack; resends, history, tabs and new conversations.

Query-level tests run on SQLite and PostgreSQL (the `database_url` fixture); the gateway tests use
the real gateway app against a stand-in for Rasa (see test_webchat_gateway.py).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.db import conversations
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.webchat.ratelimit import RateLimiter
from bot.webchat.routes import LIMITER
from tests.support.fake_rasa import (
    FakeRasa,
    message,
    receive_until_quiet,
    settings_for,
)


def stored_messages(database_url: str) -> list[Message]:
    with session_factory(database_url)() as session:
        return list(session.execute(select(Message).order_by(Message.id)).scalars())


# ---- queries, on both databases ---------------------------------------------------------------


def test_a_client_id_is_stored_once_per_conversation(database_url: str) -> None:
    with session_factory(database_url)() as session:
        first = conversations.store_user_message(session, "c1", "m1", "你好", None)
        again = conversations.store_user_message(session, "c1", "m1", "你好", None)
        other = conversations.store_user_message(session, "c2", "m1", "你好", None)
        count = session.execute(select(func.count()).select_from(Message)).scalar_one()
    assert not first.duplicate and again.duplicate and not other.duplicate
    assert again.id == first.id != other.id
    assert count == 2


def test_replies_are_stored_in_order_and_mark_the_question(database_url: str) -> None:
    with session_factory(database_url)() as session:
        question = conversations.store_user_message(session, "c1", "m1", "鄞州", "/inform")
        custom = {"kind": "service_points", "items": [{"name": "站", "address": None}]}
        conversations.store_replies(
            session, "c1", question.id, [{"text": "一"}, {"text": "二", "custom": custom}]
        )
        failed = conversations.store_user_message(session, "c1", "m2", "在吗", None)
        conversations.store_replies(session, "c1", failed.id, [])
        history = conversations.history(session, "c1")
        unanswered = conversations.unanswered(session)
    assert [(m.role, m.text) for m in history] == [
        ("user", "鄞州"),
        ("bot", "一"),
        ("bot", "二"),
        ("user", "在吗"),
    ]
    assert history[0].payload == "/inform" and history[0].status == "answered"
    assert history[2].data == {"custom": custom}  # JSON round trip, None kept
    assert [m.text for m in unanswered] == ["在吗"]


def test_history_is_the_latest_messages_oldest_first(database_url: str) -> None:
    with session_factory(database_url)() as session:
        for n in range(5):
            conversations.store_user_message(session, "c1", f"m{n}", f"第{n}条", None)
        conversations.store_user_message(session, "c2", "x", "别人的", None)
        latest = conversations.history(session, "c1", limit=3)
    assert [m.text for m in latest] == ["第2条", "第3条", "第4条"]


# ---- the gateway ------------------------------------------------------------------------------


async def test_message_is_stored_before_it_is_acknowledged(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    fake_rasa.delay = 1  # the ack must not wait for the answer
    settings = settings_for(tmp_path, fake_rasa.port)
    client = await aiohttp_client(create_app(settings))
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        sent = message("商标受理窗口在哪")
        await ws.send_json(sent)
        ack = await ws.receive_json(timeout=0.5)
        [stored] = stored_messages(settings.database_url)
        assert ack["type"] == "ack" and ack["id"] == stored.id
        assert (stored.role, stored.text, stored.client_message_id, stored.status) == (
            "user",
            "商标受理窗口在哪",
            sent["id"],
            "received",
        )
        await receive_until_quiet(ws, 1.5)
    user, bot = stored_messages(settings.database_url)
    assert user.status == "answered" and (bot.role, bot.text) == ("bot", "您好")
    assert user.conversation_id == bot.conversation_id == fake_rasa.received[0]["sender"]


async def test_a_resent_message_is_acknowledged_again_but_answered_once(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    settings = settings_for(tmp_path, fake_rasa.port)
    client = await aiohttp_client(create_app(settings))
    sent = message("你好")
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json(sent)
        first = await receive_until_quiet(ws)
    async with client.ws_connect("/ws") as ws:  # a reconnect that resends the same message
        history = await ws.receive_json(timeout=2)
        await ws.send_json(sent)
        again = await receive_until_quiet(ws)
    assert [m["client_id"] for m in history["messages"] if m["type"] == "user"] == [sent["id"]]
    assert again == [{**first[0], "duplicate": True}]  # the same ack, nothing else
    assert len(fake_rasa.received) == 1
    assert [m.role for m in stored_messages(settings.database_url)] == ["user", "bot"]


async def test_rasa_down_keeps_the_message_for_staff(tmp_path: Path, aiohttp_client) -> None:
    settings = settings_for(tmp_path, rasa_port=1)
    client = await aiohttp_client(create_app(settings))
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json(message("我要投诉侵权"))
        frames = await receive_until_quiet(ws)
    assert [f["type"] for f in frames] == ["ack", "typing", "error", "typing"]
    [stored] = stored_messages(settings.database_url)
    assert (stored.text, stored.status) == ("我要投诉侵权", "failed")


async def test_history_restores_the_conversation_on_reconnect(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, fake_rasa.port)))
    async with client.ws_connect("/ws") as ws:
        first = await ws.receive_json(timeout=2)
        fake_rasa.reply = [
            {"text": "哪个区？", "buttons": [{"title": "鄞州区", "payload": "/inform"}]}
        ]
        await ws.send_json(message("品牌指导站在哪"))
        await receive_until_quiet(ws)
    async with client.ws_connect("/ws") as ws:
        restored = await ws.receive_json(timeout=2)
    assert first["messages"] == [] and "猜你想问" in first["welcome"]["title"]
    assert len(first["welcome"]["buttons"]) >= 4
    assert "welcome" not in restored
    assert [(m["type"], m.get("text")) for m in restored["messages"]] == [
        ("user", "品牌指导站在哪"),
        ("bot", "哪个区？"),
    ]
    assert restored["messages"][1]["buttons"] == [{"title": "鄞州区", "payload": "/inform"}]


async def test_another_tab_sees_the_conversation_live(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, fake_rasa.port)))
    async with client.ws_connect("/ws") as tab1, client.ws_connect("/ws") as tab2:
        await tab1.receive_json(timeout=2)
        await tab2.receive_json(timeout=2)
        sent = message("你好")
        await tab1.send_json(sent)
        seen_by_tab2 = await receive_until_quiet(tab2)
    types = [f["type"] for f in seen_by_tab2]
    assert types == ["user", "typing", "bot", "typing"]
    assert seen_by_tab2[0]["client_id"] == sent["id"] and seen_by_tab2[0]["text"] == "你好"


async def test_new_conversation_is_issued_by_the_gateway(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    client: TestClient = await aiohttp_client(create_app(settings_for(tmp_path, fake_rasa.port)))
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_json(message("一"))
        await receive_until_quiet(ws)
        # Cross-site attempts: no custom header (a form), or a foreign Origin.
        assert (await client.post("/conversations/new")).status == 403
        refused = await client.post(
            "/conversations/new",
            headers={"X-Requested-With": "ipbot", "Origin": "https://evil.example"},
        )
        assert refused.status == 403
        response = await client.post("/conversations/new", headers={"X-Requested-With": "ipbot"})
        assert response.status == 200
        closed = await ws.receive(timeout=2)
        assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED) and ws.close_code == 4001
    async with client.ws_connect("/ws") as ws:
        fresh = await ws.receive_json(timeout=2)
        await ws.send_json(message("二"))
        await receive_until_quiet(ws)
    assert fresh["messages"] == [] and "welcome" in fresh
    first_id, second_id = (m["sender"] for m in fake_rasa.received)
    assert first_id != second_id and len(second_id) == 32


async def test_flooding_is_slowed_with_a_message(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    now = [0.0]  # the limiter's clock, moved by hand: no timing flakes on a busy machine
    app = create_app(settings_for(tmp_path, fake_rasa.port))
    app[LIMITER] = RateLimiter(limit=10, window=10, clock=lambda: now[0])
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        sent = [message(f"第{n}条") for n in range(11)]
        for frame in sent:
            await ws.send_json(frame)
        frames = await receive_until_quiet(ws, 1.0)
        acks = [f["client_id"] for f in frames if f["type"] == "ack"]
        [slowed] = [f for f in frames if f["type"] == "error"]
        now[0] = 10.0  # the first ten have left the window
        await ws.send_json(sent[10])  # what the page does after retry_after
        later = await receive_until_quiet(ws, 1.0)
    assert acks == [f["id"] for f in sent[:10]]
    assert slowed["code"] == "rate_limited" and slowed["client_id"] == sent[10]["id"]
    assert "太快" in slowed["text"] and slowed["retry_after"] == 10.0
    assert later[0]["type"] == "ack" and later[0]["client_id"] == sent[10]["id"]
    assert len(fake_rasa.received) == 11


async def test_another_conversation_is_not_slowed(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    app = create_app(settings_for(tmp_path, fake_rasa.port, chat_rate_limit=2))
    first, second = await aiohttp_client(app), await aiohttp_client(app)
    busy = await _send_all(first, [message("一"), message("二"), message("三")])
    calm = await _send_all(second, [message("四")])
    assert [f["type"] for f in busy if f["type"] in ("ack", "error")] == ["ack", "ack", "error"]
    assert [f["type"] for f in calm if f["type"] in ("ack", "error")] == ["ack"]


async def _send_all(client: TestClient, frames: list[dict]) -> list[dict]:
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        for frame in frames:
            await ws.send_json(frame)
        return await receive_until_quiet(ws)


async def test_database_down_means_no_ack_and_a_retry(
    tmp_path: Path,
    fake_rasa: FakeRasa,
    aiohttp_client,
) -> None:
    settings = settings_for(tmp_path, fake_rasa.port)
    broken = settings.__class__(
        **{**settings.__dict__, "database_url": f"sqlite:///{tmp_path / 'missing' / 'x' / 'n.db'}"}
    )
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "x").write_text("a file where a directory should be")
    client = await aiohttp_client(create_app(broken))
    async with client.ws_connect("/ws") as ws:
        history = await ws.receive_json(timeout=5)
        sent = message("你好")
        await ws.send_json(sent)
        frames = await receive_until_quiet(ws, 1.0)
    assert history["messages"] == []
    [error] = frames
    assert error["code"] == "not_stored" and error["client_id"] == sent["id"]
    assert error["retry_after"] > 0
    assert fake_rasa.received == []  # not stored → not answered


def test_the_rate_limit_is_a_sliding_window() -> None:
    now = [100.0]
    limiter = RateLimiter(limit=3, window=10, clock=lambda: now[0])
    for moment in (100.0, 101.0, 102.0):
        now[0] = moment
        assert limiter.retry_after("c") is None
    now[0] = 104.0
    assert limiter.retry_after("c") == 6.0  # until the first message leaves the window
    assert limiter.retry_after("other") is None  # per conversation
    now[0] = 110.0
    assert limiter.retry_after("c") is None
    assert limiter.retry_after("c") == 1.0  # refused messages do not count
