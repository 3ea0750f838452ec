"""WeChat's customer-service message allowance per user, and the text waiting for the next message.

Since June 2023 an Official Account may send a user only a few customer-service (客服) messages
after that user acts: 5 within 48 hours after a message, 3 within one minute after a follow, a
menu click or a scan. The allowances do not add up: an action sets the count to the larger of
what is left and its own, and the window to the later end (as WeChat documents for its
customer-service API). The passive reply (the HTTP answer) costs nothing.

The gateway keeps the count itself, so that it sends no message WeChat would refuse (45047, or
45015 once the window has closed) and keeps what does not fit for the user's next message.
With Redis the count and the waiting text are shared by every gateway of the account (keys under
REDIS_NAMESPACE); without, they live in this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

MESSAGE_QUOTA, MESSAGE_WINDOW_SECONDS = 5, 48 * 3600
EVENT_QUOTA, EVENT_WINDOW_SECONDS = 3, 60
# Text kept for a user who has not written again is forgotten after this long.
PENDING_SECONDS = 30 * 24 * 3600
# Ends the last message that fits when more is waiting.
MORE_NOTICE = "（内容较长，回复任意内容查看后续）"
Clock = Callable[[], float]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allowance:
    """What may still be sent: `remaining` messages until `closes_at` (epoch seconds; 0: no window
    is open), and how many texts wait for the user's next message."""

    remaining: int
    closes_at: float
    waiting: int = 0

    def refusal(self) -> str:
        """Why a message cannot be sent now, in Chinese for staff."""
        if self.closes_at <= 0:
            return (
                "微信规定：市民发消息后48小时内，公众号最多可向其发送5条客服消息；"
                "该市民超过48小时没有发消息，需等其再次发消息后才能回复，或改用电话联系。"
            )
        return (
            "微信规定：市民每发一条消息后，公众号最多可向其发送5条客服消息（关注、点菜单、扫码后"
            "1分钟内3条）。本次额度已用完，需等市民再次发消息后才能继续回复。"
        )


class QuotaStore(Protocol):
    async def opened(self, openid: str, quota: int, seconds: int) -> None:
        """The user acted: at least `quota` messages may be sent in the next `seconds`."""

    async def take(self, openid: str) -> bool:
        """Use one message of the allowance; False when none is left."""

    async def spend_all(self, openid: str) -> None:
        """WeChat refused a send (45047, 45015): nothing is left until the user acts again."""

    async def allowance(self, openid: str) -> Allowance: ...

    async def keep(self, openid: str, texts: list[str]) -> None:
        """Texts that did not fit, for the user's next message (after any kept before)."""

    async def take_kept(self, openid: str) -> list[str]:
        """The texts kept for the user, removed (to be sent now)."""


@dataclass
class _Window:
    remaining: int = 0
    closes_at: float = 0.0


class MemoryQuota:
    """One gateway: the allowances in this process."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._kept: dict[str, tuple[float, list[str]]] = {}

    def _window(self, openid: str) -> _Window:
        window = self._windows.get(openid)
        if window is None or window.closes_at <= self._clock():
            return _Window()
        return window

    async def opened(self, openid: str, quota: int, seconds: int) -> None:
        now, window = self._clock(), self._window(openid)
        self._windows[openid] = _Window(
            max(window.remaining, quota), max(window.closes_at, now + seconds)
        )

    async def take(self, openid: str) -> bool:
        window = self._window(openid)
        if window.remaining <= 0:
            return False
        window.remaining -= 1
        return True

    async def spend_all(self, openid: str) -> None:
        window = self._windows.get(openid)
        if window is not None:
            window.remaining = 0

    async def allowance(self, openid: str) -> Allowance:
        window = self._window(openid)
        return Allowance(window.remaining, window.closes_at, len(self._kept_now(openid)))

    def _kept_now(self, openid: str) -> list[str]:
        stored = self._kept.get(openid)
        if stored is None or stored[0] <= self._clock():
            self._kept.pop(openid, None)
            return []
        return stored[1]

    async def keep(self, openid: str, texts: list[str]) -> None:
        if texts:
            self._kept[openid] = (
                self._clock() + PENDING_SECONDS,
                self._kept_now(openid) + list(texts),
            )

    async def take_kept(self, openid: str) -> list[str]:
        texts = self._kept_now(openid)
        self._kept.pop(openid, None)
        return texts


# KEYS[1] the window hash; ARGV: now, quota, seconds. Max of what is left and the new allowance.
_OPEN = """
local now, quota, seconds = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local closes = tonumber(redis.call('HGET', KEYS[1], 'closes_at') or '0')
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
if closes <= now then remaining = 0; closes = 0 end
closes = math.max(closes, now + seconds)
remaining = math.max(remaining, quota)
redis.call('HSET', KEYS[1], 'closes_at', tostring(closes), 'remaining', remaining)
redis.call('EXPIREAT', KEYS[1], math.ceil(closes) + 60)
return remaining
"""
# KEYS[1] the window hash; ARGV: now. 1 and one message fewer, or 0.
_TAKE = """
local closes = tonumber(redis.call('HGET', KEYS[1], 'closes_at') or '0')
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '0')
if closes <= tonumber(ARGV[1]) or remaining <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'remaining', -1)
return 1
"""


class RedisQuota:
    """Several gateways: the allowances and the kept texts in Redis. While Redis is down this
    process counts (and keeps texts) in memory, so that nothing is lost."""

    def __init__(
        self, redis: aioredis.Redis, namespace: str, app_id: str, clock: Clock = time.time
    ) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:wechat-quota:{app_id}:"
        self._clock = clock
        self._open = redis.register_script(_OPEN)
        self._take = redis.register_script(_TAKE)
        self.fallback = MemoryQuota(clock)

    def _keys(self, openid: str) -> tuple[str, str]:
        return self._prefix + "window:" + openid, self._prefix + "kept:" + openid

    async def opened(self, openid: str, quota: int, seconds: int) -> None:
        await self.fallback.opened(openid, quota, seconds)  # ready should Redis fail later
        try:
            await self._open(keys=[self._keys(openid)[0]], args=[self._clock(), quota, seconds])
        except (RedisError, OSError):
            logger.warning("Redis unavailable: the WeChat allowance is counted in memory")

    async def take(self, openid: str) -> bool:
        try:
            return bool(await self._take(keys=[self._keys(openid)[0]], args=[self._clock()]))
        except (RedisError, OSError):
            return await self.fallback.take(openid)

    async def spend_all(self, openid: str) -> None:
        await self.fallback.spend_all(openid)
        try:
            await self._spend_all(openid)
        except (RedisError, OSError):
            logger.warning("Redis unavailable: the WeChat allowance is counted in memory")

    async def allowance(self, openid: str) -> Allowance:
        try:
            return await self._allowance(openid)
        except (RedisError, OSError):
            return await self.fallback.allowance(openid)

    async def keep(self, openid: str, texts: list[str]) -> None:
        try:
            await self._keep(openid, texts)
        except (RedisError, OSError):
            logger.warning("Redis unavailable: %d WeChat text(s) kept in memory", len(texts))
            await self.fallback.keep(openid, texts)

    async def take_kept(self, openid: str) -> list[str]:
        kept = await self.fallback.take_kept(openid)
        try:
            return kept + await self._take_kept(openid)
        except (RedisError, OSError):
            return kept

    async def _spend_all(self, openid: str) -> None:
        window = self._keys(openid)[0]
        if await self._redis.exists(window):
            await self._redis.hset(window, "remaining", 0)

    async def _allowance(self, openid: str) -> Allowance:
        window, kept = self._keys(openid)
        fields, waiting = await asyncio.gather(
            self._redis.hmget(window, ["remaining", "closes_at"]), self._redis.llen(kept)
        )
        remaining, closes_at = (float(v) if v is not None else 0.0 for v in fields)
        if closes_at <= self._clock():
            return Allowance(0, 0.0, int(waiting))
        return Allowance(int(remaining), closes_at, int(waiting))

    async def _keep(self, openid: str, texts: list[str]) -> None:
        if not texts:
            return
        kept = self._keys(openid)[1]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(kept, *[json.dumps(t, ensure_ascii=False) for t in texts])
            pipe.expire(kept, PENDING_SECONDS)
            await pipe.execute()

    async def _take_kept(self, openid: str) -> list[str]:
        kept = self._keys(openid)[1]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrange(kept, 0, -1)
            pipe.delete(kept)
            values, _ = await pipe.execute()
        return [json.loads(v) for v in values]


# ---- fitting an answer into the allowance ------------------------------------------------------


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def fit(messages: list[str], remaining: int, limit: int) -> tuple[list[str], list[str]]:
    """The messages to send now (at most `remaining`, each at most `limit` bytes) and the texts
    to keep. When some must wait, the last message sent ends with MORE_NOTICE, so that the user
    knows to write again; `messages` are already merged into as few as fit."""
    if len(messages) <= remaining:
        return list(messages), []
    if remaining <= 0:
        return [], list(messages)
    send, keep = list(messages[: remaining - 1]), list(messages[remaining:])
    last = messages[remaining - 1]
    room = limit - _byte_len(MORE_NOTICE)
    if _byte_len(last) <= room:
        return [*send, last + MORE_NOTICE], keep
    head = _cut(last, room)
    return [*send, head + MORE_NOTICE], [last[len(head) :].lstrip("\n"), *keep]


def _cut(text: str, room: int) -> str:
    """The longest start of `text` within `room` bytes, ending at a line break when there is one."""
    head = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    line_end = head.rfind("\n")
    return head[:line_end] if line_end > len(head) // 2 else head


def without_notice(text: str) -> str:
    return text[: -len(MORE_NOTICE)] if text.endswith(MORE_NOTICE) else text
