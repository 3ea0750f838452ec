"""A local stand-in for Rasa's REST channel, and helpers to drive the gateway's /ws with it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.db.migrate import upgrade
from bot.settings import Settings


class FakeRasa:
    """Speaks Rasa's REST channel: POST /webhooks/rest/webhook {sender, message} → messages."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: list[dict[str, Any]] = [{"recipient_id": "x", "text": "您好"}]
        self.delay = 0.0  # seconds before answering: a slow Rasa
        self.port = 0

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            await asyncio.sleep(self.delay)
            return web.json_response(self.reply)

        async def version(_: web.Request) -> web.Response:
            return web.json_response({"version": "3.6.21"})

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_get("/version", version)
        return app


def settings_for(tmp_path: Path, rasa_port: int, **extra: Any) -> Settings:
    """Settings on a migrated SQLite database under tmp_path."""
    database_url = extra.pop("database_url", f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(database_url)
    options: dict[str, Any] = {
        "rasa_auth_token": "t",
        "session_secret": "s",
        "rasa_timeout": 2,
        **extra,
    }
    return Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_port=rasa_port,
        action_port=1,  # nothing listens there: the action server is "down"
        **options,
    )


def message(text: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "id": uuid.uuid4().hex, "text": text, **extra}


async def receive_until_quiet(ws, quiet: float = 0.5) -> list[dict[str, Any]]:
    received = []
    while True:
        try:
            received.append(await ws.receive_json(timeout=quiet))
        except asyncio.TimeoutError:
            return received


# Frames that answer an acknowledged message (a look-up's answer carries no typing frames).
ANSWERING = frozenset({"bot", "error", "handoff", "system"})


def awaits_answer(frames: list[dict[str, Any]]) -> bool:
    """The last acknowledged message has no answer yet."""
    acks = [i for i, f in enumerate(frames) if f.get("type") == "ack" and not f.get("duplicate")]
    return bool(acks) and not any(f.get("type") in ANSWERING for f in frames[acks[-1] :])


async def exchange(
    client: TestClient, *frames: Any, quiet: float = 0.5, answer_within: float = 5.0
) -> list[dict[str, Any]]:
    """Send frames on a fresh socket; every frame received (but history) until it goes quiet,
    waiting up to `answer_within` for the answer of an acknowledged message (a busy machine can
    be slower than the quiet window)."""
    async with client.ws_connect("/ws") as ws:
        assert (await ws.receive_json(timeout=2))["type"] == "history"
        for frame in frames:
            await (ws.send_str(frame) if isinstance(frame, str) else ws.send_json(frame))
        received = await receive_until_quiet(ws, quiet)
        deadline = asyncio.get_running_loop().time() + answer_within
        while awaits_answer(received) and asyncio.get_running_loop().time() < deadline:
            received += await receive_until_quiet(ws, quiet)
        return received


def without_ids(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k not in ("id", "time")} for f in frames]
