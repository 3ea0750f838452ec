"""Answer each pushed message once: WeChat resends a message it got no reply to (up to 3 times).

With REDIS_URL the first copy wins a `SET NX EX` (shared by every gateway process of the deployment:
keys under its REDIS_NAMESPACE); without it a per-process memory of recent keys does the same for
one process, and the database (the pipeline stores a message once per MsgId) stops any copy that
gets past it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class Deduper(Protocol):
    async def first(self, key: str) -> bool:
        """True for the first copy of `key` within the time to live, False for a repeat."""

    async def release(self, key: str) -> None:
        """Forget `key` (the first copy failed: let a resent copy through)."""


class MemoryDeduper:
    def __init__(self, ttl_seconds: float, max_keys: int = 50_000) -> None:
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._expiry: OrderedDict[str, float] = OrderedDict()  # oldest first (one ttl for all)

    async def first(self, key: str) -> bool:
        now = time.monotonic()
        while self._expiry and (
            next(iter(self._expiry.values())) <= now or len(self._expiry) >= self.max_keys
        ):
            self._expiry.popitem(last=False)
        if key in self._expiry:
            return False
        self._expiry[key] = now + self.ttl
        return True

    async def release(self, key: str) -> None:
        self._expiry.pop(key, None)


class RedisDeduper:
    """Keys `<namespace>:wechat:<scope>:<key>`: `namespace` is the deployment's REDIS_NAMESPACE,
    `scope` what is remembered (e.g. "msg:<AppID>")."""

    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        scope: str,
        ttl_seconds: int,
        fallback: Deduper | None = None,
    ) -> None:
        self.client = client
        self.prefix = f"{namespace}:wechat:{scope}:"
        self.ttl = ttl_seconds
        # Asked while Redis is unavailable (None: fail open, every key is new).
        self.fallback = fallback

    def redis_key(self, key: str) -> str:
        return self.prefix + key

    async def first(self, key: str) -> bool:
        try:
            return bool(await self.client.set(self.redis_key(key), "1", nx=True, ex=self.ttl))
        except (RedisError, OSError):
            if self.fallback is not None:  # e.g. nonces: this process's own memory of them
                logger.warning("Redis unavailable for %s; remembering in memory", self.prefix)
                return await self.fallback.first(key)
            # Fail open: the database still stores (and answers) a MsgId only once.
            logger.warning("Redis unavailable for WeChat dedupe; relying on the database")
            return True

    async def release(self, key: str) -> None:
        try:
            await self.client.delete(self.redis_key(key))
        except (RedisError, OSError):
            logger.warning("Redis unavailable: could not release %s", key)
