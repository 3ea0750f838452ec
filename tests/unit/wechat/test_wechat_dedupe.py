"""Each pushed message once: the memory of one process, and Redis (the real local one) shared."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.wechat.dedupe import MemoryDeduper, RedisDeduper
from tests.conftest import require_service

REDIS_URL = "redis://127.0.0.1:6379/15"


async def test_memory_remembers_a_key_for_its_time_to_live() -> None:
    seen = MemoryDeduper(ttl_seconds=0.2)
    assert await seen.first("msg:1") and not await seen.first("msg:1")
    assert await seen.first("msg:2")
    await asyncio.sleep(0.25)
    assert await seen.first("msg:1")  # expired: WeChat stopped resending long ago
    await seen.release("msg:1")
    assert await seen.first("msg:1")  # released after a failure: the resent copy gets through


async def test_memory_is_bounded() -> None:
    seen = MemoryDeduper(ttl_seconds=60, max_keys=3)
    for key in "abcd":
        assert await seen.first(key)
    assert await seen.first("a")  # the oldest was dropped to stay within 3 keys
    assert not await seen.first("d")


async def test_redis_set_nx_with_a_ttl_shared_by_processes() -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.close()
        require_service("Redis", exc)
    namespace, scope = f"test-{uuid.uuid4().hex[:12]}", "msg:wx1"
    one = RedisDeduper(client, namespace, scope, 30)
    other = RedisDeduper(client, namespace, scope, 30)
    assert await one.first("msg:7")
    assert not await other.first("msg:7")  # another gateway process sees it
    assert 0 < await client.ttl(f"{namespace}:wechat:msg:wx1:msg:7") <= 30
    await one.release("msg:7")
    assert await other.first("msg:7")
    # Another deployment (its own REDIS_NAMESPACE) on the same Redis has not seen it.
    elsewhere = RedisDeduper(client, f"{namespace}-b", scope, 30)
    assert await elsewhere.first("msg:7")
    await client.delete(f"{namespace}:wechat:msg:wx1:msg:7", f"{namespace}-b:wechat:msg:wx1:msg:7")
    await client.close()


async def test_redis_down_fails_open_to_the_database() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    seen = RedisDeduper(client, "ipbot", "x", 30)
    assert await seen.first("msg:1") and await seen.first("msg:1")  # the DB dedupes instead
    await seen.release("msg:1")  # logged, not raised
    await client.close()


async def test_nonces_are_remembered_in_memory_while_redis_is_down() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    nonces = RedisDeduper(client, "ipbot", "nonce:wx1", 660, fallback=MemoryDeduper(660))
    assert await nonces.first("1712345678:abc")
    assert not await nonces.first("1712345678:abc")  # a replay while Redis is down is refused
    assert await nonces.first("1712345678:def")
    await client.close()
