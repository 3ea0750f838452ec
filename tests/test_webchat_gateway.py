"""The gateway's web chat protocol, against a local stand-in for Rasa's REST channel.

These cover what the gateway itself decides (limits, errors, identities, headers); the real Rasa
is exercised by tests/test_e2e_webchat.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.settings import Settings


class FakeRasa:
    """Speaks Rasa's REST channel: POST /webhooks/rest/webhook {sender, message} → messages."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: list[dict[str, Any]] = [{"recipient_id": "x", "text": "您好"}]

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.json_response(self.reply)

        async def version(_: web.Request) -> web.Response:
            return web.json_response({"version": "3.6.21"})

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_get("/version", version)
        return app


@pytest.fixture()
async def fake_rasa() -> FakeRasa:
    rasa = FakeRasa()
    server = TestServer(rasa.app(), host="127.0.0.1")
    await server.start_server()
    rasa.port = server.port  # type: ignore[attr-defined]
    yield rasa
    await server.close()


def settings_for(tmp_path: Path, rasa_port: int, **extra: Any) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        rasa_port=rasa_port,
        action_port=1,  # nothing listens there: the action server is "down"
        rasa_auth_token="t",
        session_secret="s",
        rasa_timeout=2,
        **extra,
    )


@pytest.fixture()
async def client(tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings_for(tmp_path, fake_rasa.port)))


async def exchange(client: TestClient, frame: Any) -> list[dict[str, Any]]:
    """Send one frame; return every frame received until the gateway goes quiet."""
    async with client.ws_connect("/ws") as ws:
        await (ws.send_str(frame) if isinstance(frame, str) else ws.send_json(frame))
        received = []
        while True:
            try:
                msg = await ws.receive_json(timeout=0.5)
            except asyncio.TimeoutError:
                return received
            received.append(msg)


async def test_page_has_security_headers(client: TestClient) -> None:
    response = await client.get("/")
    assert response.status == 200
    assert "宁波知识产权服务助手" in await response.text()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_message_is_relayed_and_answered(client: TestClient, fake_rasa: FakeRasa) -> None:
    frames = await exchange(client, {"type": "message", "text": "你好"})
    assert frames == [
        {"type": "typing", "on": True},
        {"type": "bot", "text": "您好"},
        {"type": "typing", "on": False},
    ]
    assert fake_rasa.received[0]["message"] == "你好"


async def test_button_payload_goes_to_rasa(client: TestClient, fake_rasa: FakeRasa) -> None:
    payload = '/inform{"district": "鄞州区"}'
    await exchange(client, {"type": "message", "text": "鄞州区", "payload": payload})
    assert fake_rasa.received[0]["message"] == payload


async def test_conversation_id_comes_from_the_gateway(
    tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client
) -> None:
    app = create_app(settings_for(tmp_path, fake_rasa.port))
    first, second = await aiohttp_client(app), await aiohttp_client(app)
    await exchange(first, {"type": "message", "text": "一", "sender": "someone-else"})
    await exchange(first, {"type": "message", "text": "二"})
    await exchange(second, {"type": "message", "text": "三"})
    senders = [m["sender"] for m in fake_rasa.received]
    assert senders[0] == senders[1] != senders[2]  # same browser, same conversation
    assert "someone-else" not in senders and len(senders[0]) == 32


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ('["a list"]', "bad_frame"),
        ({"type": "message", "text": 42}, "bad_frame"),
        ({"type": "subscribe"}, "bad_frame"),
        ({"type": "message", "text": "好", "payload": "not-a-slash"}, "bad_frame"),
        ({"type": "message", "text": "长" * 501}, "too_long"),
    ],
)
async def test_bad_frames_get_an_error_frame(
    client: TestClient, fake_rasa: FakeRasa, frame: Any, code: str
) -> None:
    frames = await exchange(client, frame)
    assert [f["code"] for f in frames] == [code]
    assert fake_rasa.received == []


async def test_too_long_message_says_the_limit(client: TestClient) -> None:
    [frame] = await exchange(client, {"type": "message", "text": "长" * 501})
    assert "501字" in frame["text"] and "500字以内" in frame["text"]


async def test_empty_message_is_ignored(client: TestClient, fake_rasa: FakeRasa) -> None:
    assert await exchange(client, {"type": "message", "text": "   "}) == []
    assert fake_rasa.received == []


async def test_html_and_emoji_pass_through_as_text(client: TestClient, fake_rasa: FakeRasa) -> None:
    text = "<script>alert(1)</script> 😀 商标"
    await exchange(client, {"type": "message", "text": text})
    assert fake_rasa.received[0]["message"] == text


async def test_rasa_down_gives_busy_and_a_person(tmp_path: Path, aiohttp_client) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, rasa_port=1)))
    frames = await exchange(client, {"type": "message", "text": "你好"})
    [error] = [f for f in frames if f["type"] == "error"]
    assert error["code"] == "busy" and error["text"].startswith("系统繁忙")
    assert error["buttons"] == [{"title": "转人工", "payload": "/request_human"}]


async def test_no_reply_from_rasa_is_not_silence(client: TestClient, fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = []  # what Rasa answers when a custom action failed
    frames = await exchange(client, {"type": "message", "text": "你好"})
    assert [f["code"] for f in frames if f["type"] == "error"] == ["no_answer"]


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
        await ws.send_json({"type": "message", "text": "你好"})
        assert (await ws.receive_json(timeout=2))["type"] == "typing"


async def test_healthz_reports_what_is_down(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {"status": "degraded", "rasa": "up", "actions": "down"}
