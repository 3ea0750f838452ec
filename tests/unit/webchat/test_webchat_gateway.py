"""The gateway's web chat protocol, against a local stand-in for Rasa's REST channel.

These cover what the gateway itself decides (limits, errors, identities, headers); the real Rasa
is exercised by tests/e2e/test_e2e_webchat.py. Storage, history and resends:
test_webchat_storage.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from tests.support.fake_rasa import (
    FakeRasa,
    exchange,
    message,
    receive_until_quiet,
    settings_for,
    without_ids,
)


@pytest.fixture()
async def client(tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings_for(tmp_path, fake_rasa.port)))


async def test_page_has_security_headers(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert "宁波知识产权服务助手" in page and "新对话" in page
    assert "<script>" not in page and "style=" not in page  # nothing inline
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_message_is_acknowledged_then_answered(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    sent = message("你好")
    frames = await exchange(client, sent)
    ack, *rest = frames
    assert ack["type"] == "ack" and ack["client_id"] == sent["id"]
    assert ack["duplicate"] is False and isinstance(ack["id"], int)
    assert without_ids(rest) == [
        {"type": "typing", "on": True},
        {"type": "bot", "text": "您好"},
        {"type": "typing", "on": False},
    ]
    assert rest[1]["id"] > ack["id"] and rest[1]["time"].endswith("+00:00")
    assert fake_rasa.received[0]["message"] == "你好"


async def test_button_payload_goes_to_rasa(client: TestClient, fake_rasa: FakeRasa) -> None:
    payload = '/inform{"district": "鄞州区"}'
    await exchange(client, message("鄞州区", payload=payload))
    assert fake_rasa.received[0]["message"] == payload


async def test_conversation_id_comes_from_the_gateway(
    tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client
) -> None:
    app = create_app(settings_for(tmp_path, fake_rasa.port))
    first, second = await aiohttp_client(app), await aiohttp_client(app)
    await exchange(first, message("一", sender="someone-else", conversation_id="x" * 32))
    await exchange(first, message("二"))
    await exchange(second, message("三"))
    senders = [m["sender"] for m in fake_rasa.received]
    assert senders[0] == senders[1] != senders[2]  # same browser, same conversation
    assert "someone-else" not in senders and "x" * 32 not in senders
    assert len(senders[0]) == 32


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ('["a list"]', "bad_frame"),
        ({"type": "message", "text": "好"}, "bad_frame"),  # no client id
        ({"type": "message", "id": "有空格 的id", "text": "好"}, "bad_frame"),
        ({"type": "message", "id": "a" * 65, "text": "好"}, "bad_frame"),
        (message(42), "bad_frame"),
        ({"type": "subscribe"}, "bad_frame"),
        (message("好", payload="not-a-slash"), "bad_frame"),
        (message("长" * 501), "too_long"),
    ],
)
async def test_bad_frames_get_an_error_frame(
    client: TestClient, fake_rasa: FakeRasa, frame: Any, code: str
) -> None:
    frames = await exchange(client, frame)
    assert [f["code"] for f in frames] == [code]
    assert frames[0]["text"]  # a reason in words
    assert fake_rasa.received == []


async def test_the_socket_survives_bad_frames(client: TestClient, fake_rasa: FakeRasa) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        await ws.send_bytes(b"\x00\x01")
        await ws.send_str("{not json")
        await ws.send_json(message("你好"))
        frames = await receive_until_quiet(ws)
    assert [f.get("code") for f in frames if f["type"] == "error"] == ["bad_frame", "bad_json"]
    assert [f["text"] for f in frames if f["type"] == "bot"] == ["您好"]


async def test_too_long_message_says_why_and_is_tied_to_it(client: TestClient) -> None:
    sent = message("长" * 501)
    [frame] = await exchange(client, sent)
    assert "501字" in frame["text"] and "500字以内" in frame["text"]
    assert frame["client_id"] == sent["id"]


async def test_exactly_500_characters_are_accepted(client: TestClient, fake_rasa: FakeRasa) -> None:
    frames = await exchange(client, message("长" * 500))
    assert frames[0]["type"] == "ack"
    assert fake_rasa.received[0]["message"] == "长" * 500


async def test_empty_message_is_ignored(client: TestClient, fake_rasa: FakeRasa) -> None:
    assert await exchange(client, message("   "), message("")) == []
    assert fake_rasa.received == []


async def test_html_and_emoji_pass_through_as_text(client: TestClient, fake_rasa: FakeRasa) -> None:
    text = "<script>alert(1)</script> 😀 商标"
    await exchange(client, message(text))
    assert fake_rasa.received[0]["message"] == text


async def test_rasa_down_gives_busy_and_a_person(tmp_path: Path, aiohttp_client) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, rasa_port=1)))
    frames = await exchange(client, message("你好"))
    assert frames[0]["type"] == "ack"  # stored before Rasa was asked
    [error] = [f for f in frames if f["type"] == "error"]
    assert error["code"] == "busy" and error["text"].startswith("系统繁忙")
    assert error["buttons"] == [{"title": "转人工", "payload": "/request_human"}]


async def test_slow_rasa_gives_busy_within_the_timeout(
    tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client
) -> None:
    fake_rasa.delay = 3
    client = await aiohttp_client(
        create_app(settings_for(tmp_path, fake_rasa.port, rasa_timeout=0.5))
    )
    async with client.ws_connect("/ws") as ws:
        await ws.receive_json(timeout=2)
        started = asyncio.get_running_loop().time()
        await ws.send_json(message("你好"))
        while (frame := await ws.receive_json(timeout=2))["type"] != "error":
            pass
        waited = asyncio.get_running_loop().time() - started
    assert frame["code"] == "busy" and frame["buttons"][0]["title"] == "转人工"
    assert waited < 1.5


async def test_no_reply_from_rasa_is_not_silence(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = []  # what Rasa answers when a custom action failed
    frames = await exchange(client, message("你好"))
    assert [f["code"] for f in frames if f["type"] == "error"] == ["no_answer"]


async def test_cards_and_buttons_reach_the_page(client: TestClient, fake_rasa: FakeRasa) -> None:
    custom = {"kind": "service_points", "items": [{"name": "站", "address": None}]}
    fake_rasa.reply = [
        {"text": "找到 1 个", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
        {"custom": custom},
        {"image": "ignored.png"},  # nothing the page shows
    ]
    frames = await exchange(client, message("站"))
    bots = without_ids([f for f in frames if f["type"] == "bot"])
    assert bots == [
        {
            "type": "bot",
            "text": "找到 1 个",
            "buttons": [{"title": "转人工", "payload": "/request_human"}],
        },
        {"type": "bot", "custom": custom},
    ]


async def test_foreign_origin_is_refused(client: TestClient) -> None:
    response = await client.get(
        "/ws",
        headers={
            "Origin": "https://evil.example",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert response.status == 403


async def test_configured_origin_is_accepted(
    tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client
) -> None:
    settings = settings_for(tmp_path, fake_rasa.port, allowed_origins=("https://wx.example",))
    client = await aiohttp_client(create_app(settings))
    async with client.ws_connect("/ws", headers={"Origin": "https://wx.example"}) as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "history"
        await ws.send_json(message("你好"))
        assert (await ws.receive_json(timeout=2))["type"] == "ack"


async def test_healthz_reports_what_is_down(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"status": "degraded", "rasa": "up", "actions": "down"}
