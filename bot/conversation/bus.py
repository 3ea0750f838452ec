"""Fan-out between gateway instances: a frame for a citizen or an event for the staff console
reaches the instance where that browser's socket is open.

One gateway (the embedded default) delivers in-process (`LocalBus`). Several gateways share Redis
pub/sub (`RedisBus`, with REDIS_URL): every instance publishes and every instance, itself
included, delivers what it receives to its own sockets. Redis keeps the order of one publisher's
messages, so the frames of one answer arrive in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[None]]
PRESENCE_TTL_SECONDS = 15
PRESENCE_REFRESH_SECONDS = 5.0
# A hung Redis (accepts, never answers) must not hang a socket's frames: every command times out,
# and a publish is given up after PUBLISH_TIMEOUT_SECONDS for the local fallback.
REDIS_TIMEOUT_SECONDS = 2.0
PUBLISH_TIMEOUT_SECONDS = 2.5
HEALTH_CHECK_SECONDS = 15
LISTEN_POLL_SECONDS = 1.0  # a wait for the next pub/sub message, shorter than REDIS_TIMEOUT_SECONDS
CLOSE_TIMEOUT_SECONDS = 3.0


class Bus(Protocol):
    def subscribe(self, topic: str, handler: Handler) -> None: ...

    async def publish(self, topic: str, message: dict[str, Any]) -> None: ...

    def set_local_staff(self, staff_ids: set[int]) -> None: ...

    def online_staff(self) -> set[int]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One gateway: publishing is calling the handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._staff: set[int] = set()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        for handler in self._handlers[topic]:
            await handler(message)

    def set_local_staff(self, staff_ids: set[int]) -> None:
        self._staff = set(staff_ids)

    def online_staff(self) -> set[int]:
        return set(self._staff)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus(LocalBus):
    """Several gateways: Redis pub/sub for frames, a per-instance presence set for staff."""

    def __init__(self, redis_url: str, namespace: str = "ipbot") -> None:
        super().__init__()
        self.instance = uuid.uuid4().hex[:12]
        # Pub/sub channels are global to a Redis server (not per database): a namespace keeps
        # deployments (and test runs) sharing one server apart.
        self.channel_prefix = f"{namespace}:bus:"
        self.presence_prefix = f"{namespace}:staff-online:"  # + instance: staff ids, with a TTL
        self._redis = aioredis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            health_check_interval=HEALTH_CHECK_SECONDS,
        )
        self._tasks: list[asyncio.Task] = []
        self._closing = False
        self._online: set[int] = set()
        self._online_at = 0.0  # time.monotonic() of the last good presence refresh

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(
                self._redis.publish(self.channel_prefix + topic, json.dumps(message)),
                PUBLISH_TIMEOUT_SECONDS,
            )
        except (RedisError, OSError, asyncio.TimeoutError):
            # Redis down: this instance's own sockets still get it (others cannot be reached).
            logger.warning("Redis unavailable: %s delivered on this instance only", topic)
            await super().publish(topic, message)

    def set_local_staff(self, staff_ids: set[int]) -> None:
        super().set_local_staff(staff_ids)
        self._online |= staff_ids  # known at once here; other instances see it on refresh

    def online_staff(self) -> set[int]:
        return set(self._online) | super().online_staff()

    async def start(self) -> None:
        await self._redis.ping()  # a wrong REDIS_URL fails at start-up, not at the first message
        self._tasks = [
            asyncio.create_task(self._listen()),
            asyncio.create_task(self._refresh_presence()),
        ]

    async def close(self) -> None:
        self._closing = True
        pending = set(self._tasks)
        deadline = time.monotonic() + CLOSE_TIMEOUT_SECONDS
        while pending and time.monotonic() < deadline:
            # Cancelled again until done: a cancel that lands as redis-py's own read timeout
            # fires is swallowed (async-timeout turns it into a timeout, get_message into None).
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        if pending:
            logger.warning("%d Redis bus task(s) did not stop", len(pending))
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(
                self._redis.delete(self.presence_prefix + self.instance), REDIS_TIMEOUT_SECONDS
            )
        await self._redis.close()

    async def _listen(self) -> None:
        while not self._closing:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(self.channel_prefix + "*")
                while not self._closing:
                    # Polled with a timeout of its own: listen() would read under the client's
                    # socket timeout, fail after 2 quiet seconds and lose what was published
                    # while it subscribed again (frames for this gateway's own sockets too).
                    item = await pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                    if item is None or item.get("type") != "pmessage":
                        continue
                    topic = str(item["channel"])[len(self.channel_prefix) :]
                    await self._dispatch(topic, item["data"])
            except RedisError:
                logger.warning("lost the Redis subscription; retrying", exc_info=True)
                await asyncio.sleep(1)

    async def _dispatch(self, topic: str, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            logger.warning("ignoring a malformed bus message on %s", topic)
            return
        for handler in self._handlers.get(topic, []):
            try:
                await handler(message)
            except Exception:
                logger.exception("bus handler for %s failed", topic)

    async def _refresh_presence(self) -> None:
        while not self._closing:
            try:
                key = self.presence_prefix + self.instance
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.delete(key)
                    if self._staff:
                        pipe.sadd(key, *self._staff)
                        pipe.expire(key, PRESENCE_TTL_SECONDS)
                    await pipe.execute()
                online: set[int] = set()
                async for other in self._redis.scan_iter(match=self.presence_prefix + "*"):
                    online |= {int(m) for m in await self._redis.smembers(other)}
                self._online, self._online_at = online, time.monotonic()
            except (RedisError, OSError, asyncio.TimeoutError):
                logger.warning("could not refresh staff presence in Redis", exc_info=True)
                if time.monotonic() - self._online_at > PRESENCE_TTL_SECONDS:
                    # Expired as their Redis keys would: only this instance's own staff count.
                    self._online = set()
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)


def make_bus(redis_url: str, namespace: str = "ipbot") -> Bus:
    return RedisBus(redis_url, namespace) if redis_url else LocalBus()
