"""RedisBus against a Redis that accepts connections and never answers (a hung server, a
half-open connection): publishing falls back to this instance within seconds, and other
gateways' staff presence expires instead of being believed forever (issue 14, findings 2, 15)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.conversation.bus import PRESENCE_TTL_SECONDS, RedisBus


async def close(bus: RedisBus) -> None:
    started = time.monotonic()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(bus.close(), timeout=10)
    assert time.monotonic() - started < 5, "closing the bus hung on a silent Redis"


@pytest.fixture()
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that accepts and never answers: its redis:// URL."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # keep it open, say nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_publish_falls_back_to_this_instance_within_three_seconds(
    silent_redis: str,
) -> None:
    bus = RedisBus(silent_redis, namespace="test-silent")
    got: list[dict[str, Any]] = []

    async def handler(message: dict[str, Any]) -> None:
        got.append(message)

    bus.subscribe("frames", handler)
    started = time.monotonic()
    try:
        try:
            await asyncio.wait_for(bus.publish("frames", {"text": "你好"}), timeout=10)
        except asyncio.TimeoutError:
            pytest.fail("publish still hung after 10 s: no Redis timeout")
        elapsed = time.monotonic() - started
        assert elapsed < 3.5, f"publish took {elapsed:.1f} s against a silent Redis"
        assert got == [{"text": "你好"}], "the local fallback did not deliver"
    finally:
        await close(bus)


async def test_other_gateways_presence_expires_when_refreshing_fails(silent_redis: str) -> None:
    bus = RedisBus(silent_redis, namespace="test-silent")
    bus.set_local_staff({1})
    bus._online = {1, 7}  # staff 7 was online on another gateway at the last good refresh
    bus._online_at = time.monotonic() - PRESENCE_TTL_SECONDS - 1
    refresh = asyncio.create_task(bus._refresh_presence())
    try:
        deadline = time.monotonic() + 6
        while 7 in bus.online_staff() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert bus.online_staff() == {1}, "another gateway's staff stayed online without Redis"
    finally:
        refresh.cancel()
        await asyncio.gather(refresh, return_exceptions=True)
        await close(bus)


async def test_a_quiet_subscription_still_delivers(caplog: pytest.LogCaptureFixture) -> None:
    """The read timeout guards commands, not the subscription: a bus that heard nothing for
    longer than REDIS_TIMEOUT_SECONDS still gets the next frame (a gateway's own sockets get
    their answers through it), without dropping and renewing the subscription meanwhile."""
    import redis

    from bot.conversation.bus import REDIS_TIMEOUT_SECONDS
    from tests.conftest import require_service

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        require_service("Redis", exc)
    bus = RedisBus(url, namespace=f"test-quiet-{time.monotonic_ns()}")
    got: list[dict[str, Any]] = []

    async def handler(message: dict[str, Any]) -> None:
        got.append(message)

    bus.subscribe("frames", handler)
    await bus.start()
    try:
        await asyncio.sleep(REDIS_TIMEOUT_SECONDS * 2 + 1)  # quiet: longer than a read timeout
        await bus.publish("frames", {"text": "你好"})
        for _ in range(20):
            if got:
                break
            await asyncio.sleep(0.1)
    finally:
        await close(bus)
    assert got == [{"text": "你好"}]
    assert "lost the Redis subscription" not in caplog.text


async def test_close_ends_a_task_whose_cancel_was_swallowed() -> None:
    """redis-py 4's get_message() can swallow a cancel that lands as its read timeout fires (it
    returns None and the loop goes on): closing must still end the task, not wait for ever."""
    bus = RedisBus("redis://127.0.0.1:1/0", namespace="test-swallow")  # nothing listens there
    cancels = 0

    async def swallows_the_first_cancel() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise

    task = asyncio.create_task(swallows_the_first_cancel())
    bus._tasks = [task]
    await asyncio.sleep(0)
    await close(bus)
    assert task.done() and cancels == 2
