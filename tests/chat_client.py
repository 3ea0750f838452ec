"""A websocket client of the web chat protocol, for end-to-end tests."""

from __future__ import annotations

from typing import Any

import aiohttp

REPLY_TIMEOUT_SECONDS = 30


class ChatClient:
    """One browser: a cookie jar (its conversation) and a websocket to /ws."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> ChatClient:
        self.http = aiohttp.ClientSession()
        async with self.http.get(self.gateway_url + "/") as page:  # sets the session cookie
            assert page.status == 200
        self.ws = await self.http.ws_connect(self.gateway_url + "/ws")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()

    async def ask(self, text: str, payload: str | None = None) -> list[dict[str, Any]]:
        """Send a message; return the frames of its answer (between typing on and off)."""
        assert self.ws is not None
        frame: dict[str, Any] = {"type": "message", "text": text}
        if payload is not None:
            frame["payload"] = payload
        await self.ws.send_json(frame)
        answer: list[dict[str, Any]] = []
        while True:
            received = await self.ws.receive_json(timeout=REPLY_TIMEOUT_SECONDS)
            if received == {"type": "typing", "on": False}:
                return answer
            if received.get("type") != "typing":
                answer.append(received)


def texts(frames: list[dict[str, Any]]) -> str:
    return "\n".join(f.get("text", "") for f in frames)


def cards(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for f in frames if "custom" in f for item in f["custom"].get("items", [])]


def buttons(frames: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [b for f in frames for b in f.get("buttons", [])]
