"""A staff member for end-to-end tests: signs in through /staff/login (with the CSRF token) and
speaks the live console's websocket (/staff/ws), from async tests or from synchronous ones."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from argon2 import PasswordHasher

from bot.db.engine import session_factory
from bot.staff.accounts import create_account

TIMEOUT_SECONDS = 30
PASSWORD = "测试用的长密码-2026"
Frame = dict[str, Any]


def add_staff_account(
    database_url: str,
    display_name: str,
    role: str = "agent",
    hasher: PasswordHasher | None = None,
) -> str:
    """Create an account (password PASSWORD) with a unique username; returns the username.

    `hasher`: e.g. a cheap argon2id, so that each login is fast (the product's by default).
    """
    username = f"staff-{uuid.uuid4().hex[:8]}"
    with session_factory(database_url)() as session:
        create_account(session, username, display_name, PASSWORD, role, hasher=hasher)
    return username


class StaffClient:
    """One staff member on /staff/ws. Every frame the server sends is read as it comes (so the
    socket answers the server's heartbeat) and queued for `wait_for` / `frames_until`.

    In async tests::

        async with StaffClient(gateway_url, username) as staff:
            await staff.send({"type": "accept", "handoff_id": 1})
            accepted = await staff.wait_for(lambda f: f["type"] == "accepted")

    In synchronous tests (Playwright's sync API owns the test thread's event loop),
    `StaffClient.in_thread(gateway_url, username)` signs in on an event loop of the client's own
    thread; the same methods then block and return their result (`staff.send(frame)`,
    `staff.wait_for(matches)`), and `staff.close()` ends the client and its thread.
    """

    def __init__(self, gateway_url: str, username: str, password: str = PASSWORD) -> None:
        self.gateway_url = gateway_url
        self.username = username
        self.password = password
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.seen: list[Frame] = []  # every frame taken from the queue, in order
        self._frames: asyncio.Queue[Frame | None] | None = None  # None: the socket closed
        self._reader: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set by in_thread
        self._thread: threading.Thread | None = None

    # ---- the two ways to run it ------------------------------------------------------------------

    async def __aenter__(self) -> StaffClient:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    @classmethod
    def in_thread(cls, gateway_url: str, username: str, password: str = PASSWORD) -> StaffClient:
        """Signed in and connected, on an event loop in a thread of its own."""
        client = cls(gateway_url, username, password)
        client._loop = asyncio.new_event_loop()
        client._thread = threading.Thread(target=client._loop.run_forever, daemon=True)
        client._thread.start()
        client._call(client._open())
        return client

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """The awaitable itself; on the client's own thread, run there and return its result."""
        if self._loop is None:
            return coroutine
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    # ---- what tests call (await them, unless the client runs in_thread) --------------------------

    def connect(self) -> Any:
        """(Re)open the websocket, e.g. after the gateway restarted; its hello frame is checked."""
        return self._call(self._connect())

    def send(self, frame: Frame) -> Any:
        return self._call(self._send(frame))

    def wait_for(self, matches: Callable[[Frame], bool], timeout: float = TIMEOUT_SECONDS) -> Any:
        """The next frame that `matches` (frames before it are passed over)."""
        return self._call(self._wait_for(matches, timeout))

    def frames_until(
        self, matches: Callable[[Frame], bool], timeout: float = TIMEOUT_SECONDS
    ) -> Any:
        """The frames received up to and including the first one `matches` accepts."""
        return self._call(self._frames_until(matches, timeout))

    def close(self) -> Any:
        if self._loop is None:
            return self._close()
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop.close()
        return None

    # ---- the work, on the client's event loop ----------------------------------------------------

    async def _open(self) -> None:
        # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.get(self.gateway_url + "/staff/login") as page:
            text = await page.text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert csrf, text
        form = {"username": self.username, "password": self.password, "csrf_token": csrf.group(1)}
        async with self.http.post(
            self.gateway_url + "/staff/login", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        await self._connect()

    async def _connect(self) -> None:
        assert self.http is not None
        await self._disconnect()
        self.ws = await self.http.ws_connect(
            self.gateway_url + "/staff/ws", origin=self.gateway_url
        )
        hello = await self.ws.receive_json(timeout=TIMEOUT_SECONDS)
        assert hello["type"] == "hello", hello
        self._frames = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(self.ws, self._frames))

    @staticmethod
    async def _read(
        ws: aiohttp.ClientWebSocketResponse, frames: asyncio.Queue[Frame | None]
    ) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                frames.put_nowait(json.loads(message.data))
        frames.put_nowait(None)

    async def _disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        self.ws, self._reader = None, None

    async def _close(self) -> None:
        await self._disconnect()
        if self.http is not None:
            await self.http.close()

    async def _send(self, frame: Frame) -> None:
        assert self.ws is not None
        await self.ws.send_json(frame)

    async def _wait_for(self, matches: Callable[[Frame], bool], timeout: float) -> Frame:
        return (await self._frames_until(matches, timeout))[-1]

    async def _frames_until(self, matches: Callable[[Frame], bool], timeout: float) -> list[Frame]:
        assert self._frames is not None
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(self._frames.get(), remaining)
            except asyncio.TimeoutError:
                break
            if frame is None:
                self._frames.put_nowait(None)  # closed: so says every later wait too
                raise AssertionError(f"the staff socket closed; it got {got}")
            self.seen.append(frame)
            got.append(frame)
            if matches(frame):
                return got
        raise AssertionError(f"the staff socket did not get the frame in {timeout} s; it got {got}")
