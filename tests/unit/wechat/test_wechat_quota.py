"""WeChat's customer-service allowance: the count (in memory and in Redis, with a test clock)
and fitting an answer into what is left."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.wechat.quota import (
    MORE_NOTICE,
    MemoryQuota,
    QuotaStore,
    RedisQuota,
    fit,
    without_notice,
)
from tests.conftest import require_service

REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
async def quota(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[QuotaStore]:
    if request.param == "memory":
        yield MemoryQuota(clock)
        return
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.close()
        require_service("Redis", exc)
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    yield RedisQuota(client, namespace, "wxapp", clock)
    async for key in client.scan_iter(match=f"{namespace}:*"):
        await client.delete(key)
    await client.close()


async def test_a_message_allows_five_within_48_hours(quota: QuotaStore, clock: Clock) -> None:
    assert (await quota.allowance("u")).remaining == 0
    assert not await quota.take("u")  # nothing before the user acts
    await quota.opened("u", 5, 48 * 3600)
    allowance = await quota.allowance("u")
    assert allowance.remaining == 5 and allowance.closes_at == clock.now + 48 * 3600
    assert [await quota.take("u") for _ in range(6)] == [True] * 5 + [False]
    assert "已用完" in (await quota.allowance("u")).refusal()
    await quota.opened("u", 5, 48 * 3600)  # the user writes again
    assert await quota.take("u")
    clock.now += 48 * 3600 + 1
    assert (await quota.allowance("u")).remaining == 0
    assert not await quota.take("u")
    assert "48小时" in (await quota.allowance("u")).refusal()
    assert (await quota.allowance("other")).remaining == 0


async def test_allowances_do_not_add_up(quota: QuotaStore, clock: Clock) -> None:
    await quota.opened("u", 3, 60)  # a follow
    assert (await quota.allowance("u")).remaining == 3
    await quota.opened("u", 5, 48 * 3600)  # then a message: five, not eight
    assert (await quota.allowance("u")).remaining == 5
    for _ in range(4):
        await quota.take("u")
    await quota.opened("u", 3, 60)  # a menu click: the larger of 1 and 3, the later end
    allowance = await quota.allowance("u")
    assert allowance.remaining == 3 and allowance.closes_at == clock.now + 48 * 3600
    await quota.spend_all("u")  # WeChat said 45047
    assert (await quota.allowance("u")).remaining == 0


async def test_kept_texts_wait_in_order_and_are_taken_once(quota: QuotaStore) -> None:
    await quota.keep("u", ["第一段", "第二段"])
    await quota.keep("u", ["第三段"])
    await quota.keep("u", [])
    assert (await quota.allowance("u")).waiting == 3
    assert await quota.take_kept("u") == ["第一段", "第二段", "第三段"]
    assert await quota.take_kept("u") == []
    assert (await quota.allowance("u")).waiting == 0


def test_fit_sends_what_the_allowance_covers_and_says_more_follows() -> None:
    assert fit(["甲", "乙"], 5, 2048) == (["甲", "乙"], [])
    assert fit(["甲", "乙"], 0, 2048) == ([], ["甲", "乙"])
    assert fit(["甲", "乙", "丙"], 2, 2048) == (["甲", "乙" + MORE_NOTICE], ["丙"])
    full = "\n".join(["知识产权" * 40] * 5)  # 2 404 bytes with its line breaks: too long for 2 048
    long = full[:2040]
    send, keep = fit([long, "丙"], 1, 2048)
    assert len(send) == 1 and send[0].endswith(MORE_NOTICE)
    assert len(send[0].encode()) <= 2048
    assert without_notice(send[0]) + "\n" + keep[0] == long and keep[1:] == ["丙"]


async def test_with_redis_down_the_count_and_the_texts_stay_in_memory(clock: Clock) -> None:
    down = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    quota = RedisQuota(down, "test", "wxapp", clock)
    await quota.opened("u", 5, 48 * 3600)
    assert (await quota.allowance("u")).remaining == 5
    assert await quota.take("u")
    await quota.keep("u", ["第一段"])
    assert (await quota.allowance("u")).waiting == 1
    assert await quota.take_kept("u") == ["第一段"]
    await quota.spend_all("u")
    assert not await quota.take("u")
    await down.close()
