"""Issue 14, #6: per-address limits with a fresh cookie per conversation, every frame type limited,
tickets only after an offline handoff and once per client id, bounded limiter state.

The real gateway app; Rasa is down (nothing listens on its port), so "转人工" makes the gateway
start the handoff itself, and with nobody online it is offline (a ticket may follow).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.engine import session_factory
from bot.db.handoffs import Handoff, Ticket
from bot.domain.vocabulary import REQUEST_HUMAN
from bot.web.client_address import parse_networks, resolve
from bot.web.keys import PIPELINE
from bot.webchat.ratelimit import RateLimiter
from tests.support.fake_rasa import message, receive_until_quiet, settings_for
from tests.support.running_stack import free_port

CITIZEN = {"X-Forwarded-For": "203.0.113.7"}  # the local proxy (127.0.0.1) says who it is
OTHER_CITIZEN = {"X-Forwarded-For": "198.51.100.20"}


def count(database_url: str, model: Any) -> int:
    with session_factory(database_url)() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


async def fresh_browser(
    client: TestClient, *frames: dict, headers: dict | None = None, handoff_first: bool = False
) -> list[dict]:
    """A browser without cookies (a script throwing its cookie away) sends frames on /ws;
    `handoff_first`: "转人工" first, and the rest once its answer has come."""
    client.session.cookie_jar.clear()
    received: list[dict] = []
    async with client.ws_connect("/ws", headers=headers or CITIZEN) as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "history"
        if handoff_first:
            await ws.send_json(message("转人工", payload=REQUEST_HUMAN))
            received += await receive_until_quiet(ws, 0.7)
        for frame in frames:
            await ws.send_json(frame)
        return received + await receive_until_quiet(ws, 0.7)


def ticket(client_id: str | None = None) -> dict:
    return {
        "type": "ticket",
        "id": client_id or uuid.uuid4().hex,
        "phone": "13800138000",
        "text": "想咨询商标续展",
    }


async def test_fresh_cookies_from_one_address_are_limited(tmp_path: Path, aiohttp_client) -> None:
    settings = settings_for(tmp_path, free_port(), address_new_conversations=3)
    client = await aiohttp_client(create_app(settings))
    for n in range(3):
        frames = await fresh_browser(client, message(f"第{n}条"))
        assert frames[0]["type"] == "ack"
    client.session.cookie_jar.clear()
    refused = await client.get("/ws", headers=CITIZEN)  # the fourth new conversation
    assert refused.status == 429 and "新对话过于频繁" in await refused.text()
    assert int(refused.headers["Retry-After"]) > 0
    client.session.cookie_jar.clear()
    page = await client.get("/", headers=CITIZEN)
    assert page.status == 429  # the page would hand out a fifth
    # Another address behind the same proxy is not affected.
    assert (await fresh_browser(client, message("你好"), headers=OTHER_CITIZEN))[0]["type"] == "ack"


def test_the_forwarded_address_is_believed_only_from_a_trusted_proxy() -> None:
    local = parse_networks(("127.0.0.1", "::1"))
    assert resolve("127.0.0.1", "1.2.3.4", local) == "1.2.3.4"
    # A client's own X-Forwarded-For entries stand left of what the proxy appended.
    assert resolve("127.0.0.1", "6.6.6.6, 1.2.3.4", local) == "1.2.3.4"
    # A peer that is not a configured proxy (a private address included) is the client itself.
    assert resolve("10.0.0.9", "1.2.3.4", local) == "10.0.0.9"
    assert resolve("198.51.100.1", "1.2.3.4", local) == "198.51.100.1"
    # A chain of trusted proxies: the first untrusted entry from the right.
    chain = parse_networks(("127.0.0.1", "10.0.0.0/8"))
    assert resolve("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.5", chain) == "1.2.3.4"
    assert resolve("127.0.0.1", "10.0.0.5", chain) == "127.0.0.1"


async def test_handoffs_from_one_address_are_limited(tmp_path: Path, aiohttp_client) -> None:
    settings = settings_for(tmp_path, free_port(), handoff_hours="always", address_handoffs=2)
    client = await aiohttp_client(create_app(settings))
    for _ in range(2):
        frames = await fresh_browser(client, message("转人工", payload=REQUEST_HUMAN))
        assert any(f["type"] == "handoff" and f["state"] == "offline" for f in frames), frames
    frames = await fresh_browser(client, message("转人工", payload=REQUEST_HUMAN))
    [refused] = [f for f in frames if f["type"] == "error"]
    assert refused["code"] == "rate_limited" and "转人工请求过于频繁" in refused["text"]
    assert not any(f["type"] == "handoff" for f in frames)
    assert count(settings.database_url, Handoff) == 2
    frames = await fresh_browser(
        client, message("转人工", payload=REQUEST_HUMAN), headers=OTHER_CITIZEN
    )
    assert any(f["type"] == "handoff" for f in frames)


async def test_a_ticket_needs_an_offline_handoff_and_is_stored_once_per_client_id(
    tmp_path: Path, aiohttp_client
) -> None:
    settings = settings_for(tmp_path, free_port(), handoff_hours="always")
    client = await aiohttp_client(create_app(settings))
    [refused] = await fresh_browser(client, ticket())  # no handoff at all
    assert refused["code"] == "bad_ticket" and "无需留言" in refused["text"]
    assert count(settings.database_url, Ticket) == 0

    again = ticket()
    frames = await fresh_browser(client, again, again, again, handoff_first=True)
    saved = [f for f in frames if f["type"] == "ticket_saved"]
    assert len(saved) == 3 and len({f["ticket_id"] for f in saved}) == 1
    assert count(settings.database_url, Ticket) == 1


async def test_every_frame_type_is_limited(tmp_path: Path, aiohttp_client) -> None:
    settings = settings_for(tmp_path, free_port(), handoff_hours="always", address_tickets=50)
    app = create_app(settings)
    client = await aiohttp_client(app)
    ratings = [{"type": "rating", "handoff_id": 1, "score": 5} for _ in range(8)]
    tickets = [ticket() for _ in range(8)]
    frames = await fresh_browser(client, *tickets, handoff_first=True)
    codes = [f.get("code") or f["type"] for f in frames if f["type"] in ("error", "ticket_saved")]
    assert codes == ["ticket_saved"] * 5 + ["rate_limited"] * 3
    assert count(settings.database_url, Ticket) == 5
    frames = await fresh_browser(client, *ratings)
    codes = [f["code"] for f in frames if f["type"] == "error"]
    assert codes == ["bad_rating"] * 5 + ["rate_limited"] * 3

    typed: list[bool] = []

    async def user_typing(conversation_id: str, on: bool) -> None:
        typed.append(on)

    app[PIPELINE].user_typing = user_typing  # type: ignore[method-assign]
    await fresh_browser(client, *({"type": "typing", "on": n % 2 == 0} for n in range(60)))
    assert len(typed) == 20  # the rest dropped: only an indicator


async def test_tickets_from_one_address_are_limited(tmp_path: Path, aiohttp_client) -> None:
    settings = settings_for(tmp_path, free_port(), handoff_hours="always", address_tickets=2)
    client = await aiohttp_client(create_app(settings))
    outcomes = []
    for _ in range(3):  # three conversations, each with its own offline handoff
        frames = await fresh_browser(client, ticket(), handoff_first=True)
        outcomes += [f.get("code") or f["type"] for f in frames if f["type"] != "handoff"]
    assert [o for o in outcomes if o in ("ticket_saved", "rate_limited")] == [
        "ticket_saved",
        "ticket_saved",
        "rate_limited",
    ]
    assert count(settings.database_url, Ticket) == 2


def test_limiter_state_is_bounded_and_forgets_idle_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=3, window=10, clock=lambda: now[0], max_keys=1000)
    for n in range(50_000):  # a flood of new keys (addresses, throwaway conversations)
        limiter.retry_after(f"key-{n}")
    assert len(limiter._hits) <= 1000
    now[0] = 11.0  # every hit has aged out
    limiter.retry_after("late")
    assert len(limiter._hits) == 1


def test_a_bad_trusted_proxy_entry_stops_the_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, free_port(), trusted_proxies=("127.0.0.1", "proxy-1"))
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: 'proxy-1'"):
        create_app(settings)
