"""At most `limit` hits per `window` seconds per key (a sliding window, in memory, per process).

The state is bounded: keys are kept in least-recently-used order, a key whose hits have all aged
out is forgotten as soon as it reaches the front, and past `max_keys` the least recently used key
is dropped (it loses its history: the bound is on memory, a flood of new keys cannot grow it).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 20_000


class RateLimiter:
    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def retry_after(self, key: str) -> float | None:
        """None (and the hit counts) when allowed, else seconds until it would be."""
        wait = self.peek(key)
        if wait is None:
            self.record(key)
        return wait

    def peek(self, key: str) -> float | None:
        """Like retry_after, without counting a hit."""
        now = self._clock()
        self._prune(now)
        hits = self._hits.get(key)
        if hits is None:
            return None if self.limit > 0 else self.window
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(0.1, math.ceil((hits[0] + self.window - now) * 10) / 10)  # never early
        return None

    def record(self, key: str) -> None:
        """Count a hit for `key` (after peek allowed it)."""
        hits = self._hits.pop(key, None)
        if hits is None:
            hits = deque()
        hits.append(self._clock())
        self._hits[key] = hits  # last: the most recently used
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def _prune(self, now: float) -> None:
        """Forget the least recently used keys whose newest hit has aged out."""
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > now - self.window:
                return
            del self._hits[key]
