"""A staff member's browser for end-to-end tests: logs in (with the CSRF token) and opens the
console's websocket."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.db.engine import session_factory
from bot.staff.accounts import create_account

TIMEOUT_SECONDS = 30
PASSWORD = "测试用的长密码-2026"


def add_staff_account(database_url: str, display_name: str, role: str = "agent") -> str:
    """Create an account with a unique username; returns the username."""
    username = f"staff-{uuid.uuid4().hex[:8]}"
    with session_factory(database_url)() as session:
        create_account(session, username, display_name, PASSWORD, role)
    return username


class StaffClient:
    def __init__(self, gateway_url: str, username: str) -> None:
        self.gateway_url = gateway_url
        self.username = username
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> StaffClient:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1
        async with self.http.get(self.gateway_url + "/staff/login") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text()).group(1)
        form = {"username": self.username, "password": PASSWORD, "csrf_token": token}
        async with self.http.post(
            self.gateway_url + "/staff/login", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        await self.connect()
        return self

    async def connect(self) -> None:
        assert self.http is not None
        if self.ws is not None:
            await self.ws.close()
        self.ws = await self.http.ws_connect(self.gateway_url + "/staff/ws")
        hello = await self.ws.receive_json(timeout=TIMEOUT_SECONDS)
        assert hello["type"] == "hello"

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(frame)

    async def wait_for(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next frame that `matches` (frames before it are kept in `seen`)."""
        assert self.ws is not None
        while True:
            frame = await self.ws.receive_json(timeout=TIMEOUT_SECONDS)
            self.seen.append(frame)
            if matches(frame):
                return frame
