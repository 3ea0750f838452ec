"""A bounded first-come-first-served queue in front of each Rasa replica.

Rasa answers one message at a time on its CPU; sending it more at once only makes every message
slower, until they all pass RASA_TIMEOUT and every citizen gets "系统繁忙". The gateway therefore
keeps at most `concurrency` messages in flight per replica and lets the others wait in order, up
to `depth` of them: a message that waits longer than `notice_after` seconds tells its citizen
"正在排队，请稍候" (once), and only a message that finds the queue full, or waits longer than
`max_wait`, gets the busy reply. RASA_TIMEOUT counts from the moment a message is sent to Rasa.

Each gateway keeps its own queues: with G gateways a replica has up to G × concurrency messages
in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

OnQueued = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class QueueLimits:
    concurrency: int = 4  # messages in flight per replica (0: no limit, no queue)
    depth: int = 100  # messages waiting per replica; one more gets the busy reply
    notice_after: float = 2.0  # seconds of waiting before the "正在排队" notice
    max_wait: float = 30.0  # seconds in the queue before giving up (busy reply)


class QueueFull(Exception):
    """The replica's queue is full, or the message waited longer than `max_wait`."""


class ReplicaQueue:
    """At most `concurrency` holders of a slot; the others wait in arrival order."""

    def __init__(self, limits: QueueLimits) -> None:
        self.limits = limits
        self._free = limits.concurrency
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, on_queued: OnQueued | None = None) -> None:
        """A slot, at once or in turn; raises QueueFull. Every acquire needs one release()."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        if len(self._waiters) >= self.limits.depth:
            raise QueueFull(f"{len(self._waiters)} messages already wait")
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiters.append(granted)
        deadline = loop.time() + self.limits.max_wait
        try:
            if on_queued is not None:
                await asyncio.wait({granted}, timeout=self.limits.notice_after)
                if not granted.done():
                    try:
                        await on_queued()
                    except Exception:
                        logger.exception("could not tell a waiting citizen about the queue")
            if not granted.done():
                await asyncio.wait({granted}, timeout=max(0.0, deadline - loop.time()))
            if not granted.done():
                raise QueueFull(f"waited {self.limits.max_wait:.0f} s in the queue")
        except BaseException:  # cancelled, or gave up: the slot goes to the next in line
            if granted.done() and not granted.cancelled():
                self.release()
            else:
                granted.cancel()
                self._waiters.remove(granted)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to it
                return
        self._free += 1
