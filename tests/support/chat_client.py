"""A websocket client of the web chat protocol, for end-to-end tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

REPLY_TIMEOUT_SECONDS = 30


class ChatClient:
    """One browser: a cookie jar (its conversation) and a websocket to /ws."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.history: dict[str, Any] | None = None
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> ChatClient:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
        async with self.http.get(self.gateway_url + "/") as page:  # sets the session cookie
            assert page.status == 200
        await self.connect()
        return self

    async def connect(self) -> dict[str, Any]:
        """(Re)open the websocket; returns the history frame the server sends first."""
        assert self.http is not None
        if self.ws is not None:
            await self.ws.close()
        self.ws = await self.http.ws_connect(self.gateway_url + "/ws")
        self.history = await self.ws.receive_json(timeout=REPLY_TIMEOUT_SECONDS)
        assert self.history["type"] == "history"
        return self.history

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()

    async def say(self, text: str, payload: str | None = None) -> dict[str, Any]:
        """Send a message without waiting for an answer (e.g. to a person); returns its ack."""
        assert self.ws is not None
        frame: dict[str, Any] = {"type": "message", "id": uuid.uuid4().hex, "text": text}
        if payload is not None:
            frame["payload"] = payload
        await self.ws.send_json(frame)
        return await self.wait_for(lambda f: f.get("type") == "ack")

    async def wait_for(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next frame that `matches`; the frames skipped are kept in `seen`."""
        assert self.ws is not None
        while True:
            received = await self.ws.receive_json(timeout=REPLY_TIMEOUT_SECONDS)
            self.seen.append(received)
            if matches(received):
                return received

    async def ask(
        self, text: str, payload: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Send a message; return the frames of its answer (between its ack and typing off)."""
        assert self.ws is not None
        frame: dict[str, Any] = {"type": "message", "id": client_id or uuid.uuid4().hex}
        frame["text"] = text
        if payload is not None:
            frame["payload"] = payload
        await self.ws.send_json(frame)
        answer: list[dict[str, Any]] = []
        while True:
            received = await self.ws.receive_json(timeout=REPLY_TIMEOUT_SECONDS)
            if received == {"type": "typing", "on": False}:
                return answer
            if received.get("type") not in ("typing", "ack"):
                answer.append(received)


def texts(frames: list[dict[str, Any]]) -> str:
    return "\n".join(f.get("text", "") for f in frames)


def cards(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for f in frames if "custom" in f for item in f["custom"].get("items", [])]


def buttons(frames: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for f in frames for b in f.get("buttons", [])]
