"""Login throttling and the password-hashing executor (issue 14, #2).

argon2 costs 64 MiB and a fraction of a CPU second by design. Run on the default thread pool, a
flood of login POSTs starved every chat database call (bot/db/runner.run_db) sharing that pool.
So hashing runs only on HashPool (its own two threads), and LoginThrottle answers 429 before any
hashing: per client address (a sliding window) and globally (a bound on logins in flight).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
TOO_MANY_TEXT = "登录尝试过于频繁，请稍后再试。"
PER_ADDRESS_ATTEMPTS = 10  # unsuccessful logins from one address ...
PER_ADDRESS_WINDOW = 300.0  # ... within five minutes; then 429 until the oldest one ages out
MAX_IN_FLIGHT = 8  # logins being checked at once (all addresses): a bounded hashing queue
MAX_ADDRESSES = 10_000  # memory bound: the oldest addresses are forgotten first


class HashPool:
    """Runs blocking password hashing on its own executor, never the loop's default pool."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(work, *args))


class Throttled(Exception):
    """Too many logins: answer 429 with TOO_MANY_TEXT."""


class LoginThrottle:
    """Per gateway process. Checked before the database and before any hashing."""

    def __init__(
        self,
        per_address: int = PER_ADDRESS_ATTEMPTS,
        window: float = PER_ADDRESS_WINDOW,
        max_in_flight: int = MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_address = per_address
        self.window = window
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.in_flight = 0
        self._attempts: dict[str, deque[float]] = {}

    @contextmanager
    def attempt(self, address: str) -> Iterator[Callable[[], None]]:
        """Admit one login attempt (Throttled if not); yields `succeeded`, to call when the
        password was right (a successful login does not count against the address)."""
        now = self.clock()
        recent = self._attempts.pop(address, deque())  # re-inserted last: most recent
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        self._attempts[address] = recent
        while len(self._attempts) > MAX_ADDRESSES:
            del self._attempts[next(iter(self._attempts))]
        if len(recent) >= self.per_address or self.in_flight >= self.max_in_flight:
            raise Throttled()
        recent.append(now)
        self.in_flight += 1

        def succeeded() -> None:
            if now in recent:
                recent.remove(now)

        try:
            yield succeeded
        finally:
            self.in_flight -= 1


THROTTLE = web.AppKey("staff_login_throttle", LoginThrottle)
