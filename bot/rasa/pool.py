"""Several Rasa replicas behind one client: consistent hashing of the conversation id, failover.

Each conversation goes to one replica, chosen on a hash ring with virtual nodes: Rasa's open-source
RedisLockStore is not race-free across replicas, so two replicas must never work on the same
conversation at once. The ring keeps almost every conversation where it was when a replica is added
or removed (only ~1/N of them move), and every gateway computes the same mapping (a stable hash, not
Python's per-process `hash()`), provided they list the same replica URLs.

When a replica fails (connection refused or reset, a 5xx, a timeout) it is marked down for a short
back-off, doubling while it keeps failing; its conversations go to the next replica on the ring,
which reads the same tracker from the shared SQLTrackerStore. After the back-off a background probe
(`GET /version`) decides whether it is back; only then do its conversations return, so no user
message is spent on finding out that a replica is still dead.

Timeouts are the one case where the same message is not retried on another replica: the request
may still be running on the slow replica (retrying would let two replicas process one conversation),
and RASA_TIMEOUT is the whole wait a user accepts. Nor does a timeout alone mark a replica down: an
overloaded replica is slow but alive, and moving its conversations would only overload the next one
(and break the one-replica-per-conversation rule while it is still working on them). A timeout
starts a liveness probe instead; only a replica that does not answer `/version` either within
RASA_TIMEOUT (hung, frozen) is marked down.

In front of each replica a bounded queue (bot/rasa/queue.py) keeps Rasa from being sent more than
it can answer at once: waiting messages go in order, and their citizens are told they wait.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.rasa.auth import bearer_header
from bot.rasa.queue import OnQueued, QueueFull, QueueLimits, ReplicaQueue

logger = logging.getLogger(__name__)


class RasaUnavailable(RuntimeError):
    """Rasa did not answer in time, or answered with an error."""


class RasaBusy(RasaUnavailable):
    """The replica's queue is full: the message was not sent."""


VIRTUAL_NODES = 160  # per replica: with 2-4 replicas each gets its share within a few percent
BACKOFF_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 2.0


def parse_rasa_urls(raw: str, fallback: str) -> tuple[str, ...]:
    """RASA_URLS ("http://10.0.0.5:5005,http://10.0.0.6:5005") or else the single fallback URL."""
    urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
    return tuple(dict.fromkeys(urls)) or (fallback.rstrip("/"),)


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class HashRing:
    """A consistent-hash ring of replica URLs with `vnodes` points each."""

    def __init__(self, nodes: Iterable[str], vnodes: int = VIRTUAL_NODES) -> None:
        self.nodes = tuple(dict.fromkeys(nodes))
        if not self.nodes:
            raise ValueError("a hash ring needs at least one node")
        ring = sorted((_point(f"{node}#{i}"), node) for node in self.nodes for i in range(vnodes))
        self._points = [p for p, _ in ring]
        self._owners = [n for _, n in ring]

    def preference(self, key: str) -> list[str]:
        """Every node, in the order met walking the ring clockwise from the key's point."""
        start = bisect.bisect(self._points, _point(key))
        order: list[str] = []
        for i in range(len(self._owners)):
            node = self._owners[(start + i) % len(self._owners)]
            if node not in order:
                order.append(node)
                if len(order) == len(self.nodes):
                    break
        return order

    def owner(self, key: str) -> str:
        return self._owners[bisect.bisect(self._points, _point(key)) % len(self._owners)]


@dataclass
class _Health:
    down_until: float = 0.0  # monotonic time; 0 = up
    failures: int = 0  # consecutive failures, for the doubling back-off
    probing: bool = False


class _Once:
    """The queue notice: told at most once per message, even when it waits at two replicas."""

    def __init__(self, callback: OnQueued | None) -> None:
        self._callback = callback

    @property
    def pending(self) -> bool:
        return self._callback is not None

    async def run(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            await callback()


class _ReplicaFailed(Exception):
    """This replica failed; another one may answer."""


class RasaPool:
    """Rasa's HTTP API for the gateway (send_message, resume, is_up) over one or more replicas."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        urls: Sequence[str],
        timeout: float,
        token: str = "",
        *,
        vnodes: int = VIRTUAL_NODES,
        backoff: float = BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        queue: QueueLimits | None = None,
    ) -> None:
        self._http = http
        self.ring = HashRing((u.rstrip("/") for u in urls), vnodes)
        self._timeout = timeout
        self._token = token
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._health = {url: _Health() for url in self.ring.nodes}
        self._probes: set[asyncio.Task[None]] = set()
        limits = queue if queue is not None and queue.concurrency > 0 else None
        self._queues = {url: ReplicaQueue(limits) for url in self.ring.nodes} if limits else {}

    @property
    def urls(self) -> tuple[str, ...]:
        return self.ring.nodes

    # ---- routing ------------------------------------------------------------------------------

    def is_down(self, url: str) -> bool:
        return self._health[url].down_until > 0

    def replica_for(self, conversation_id: str) -> str:
        """The replica that answers this conversation now (its owner unless that one is down)."""
        return self._candidates(conversation_id)[0]

    def _candidates(self, conversation_id: str) -> list[str]:
        """Replicas to try, in order: the healthy ones in ring order, then the down ones (when
        every replica is marked down, trying is still better than refusing)."""
        order = self.ring.preference(conversation_id)
        for url in order:
            self._probe_if_due(url)
        return [u for u in order if not self.is_down(u)] + [u for u in order if self.is_down(u)]

    def _mark_down(self, url: str, reason: str, *, probed: bool = False) -> None:
        health = self._health[url]
        if health.down_until and not probed:
            return  # another request in flight saw the same failure: one back-off step only
        health.failures += 1
        delay = min(self._backoff * 2 ** (health.failures - 1), self._max_backoff)
        health.down_until = self._clock() + delay
        logger.warning("Rasa replica %s is down (%s); retry in %.1f s", url, reason, delay)

    def _mark_up(self, url: str) -> None:
        health = self._health[url]
        if health.down_until:
            logger.info("Rasa replica %s answers again", url)
        health.down_until = 0.0
        health.failures = 0

    def _probe_if_due(self, url: str) -> None:
        """A down replica whose back-off is over: probe it in the background."""
        health = self._health[url]
        if health.down_until and not health.probing and self._clock() >= health.down_until:
            self._probe_in_background(url, self._probe_down)

    def _check_alive(self, url: str) -> None:
        """After a timeout: mark the replica down only if it does not answer /version either."""
        health = self._health[url]
        if not health.down_until and not health.probing:
            self._probe_in_background(url, self._probe_timed_out)

    def _probe_in_background(self, url: str, probe: Callable[[str], Awaitable[None]]) -> None:
        health = self._health[url]
        health.probing = True

        async def run() -> None:
            try:
                await probe(url)
            finally:
                health.probing = False

        task = asyncio.get_running_loop().create_task(run())
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe_down(self, url: str) -> None:
        if await self._version_ok(url):
            self._mark_up(url)
        else:
            self._mark_down(url, "probe failed", probed=True)

    async def _probe_timed_out(self, url: str) -> None:
        # As patient as a user: an overloaded replica answers /version late, but it does.
        if not await self._version_ok(url, max(PROBE_TIMEOUT_SECONDS, self._timeout)):
            self._mark_down(url, "timeout, and /version does not answer")

    async def close(self) -> None:
        """Cancel probes in flight (on shutdown, before the HTTP session closes)."""
        for task in list(self._probes):
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)

    # ---- what the conversation core calls --------------------------------------------------------

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        metadata: dict[str, Any] | None = None,
        on_queued: OnQueued | None = None,
    ) -> list[dict[str, Any]]:
        """Post one user message to the conversation's replica; returns Rasa's bot messages.
        `on_queued` runs once if the message waits in the replica's queue (bot/rasa/queue.py)."""
        body: dict[str, Any] = {"sender": conversation_id, "message": text}
        if metadata:
            body["metadata"] = metadata
        messages = await self._call(
            conversation_id, lambda url, t: self._post_message(url, body, t), on_queued
        )
        return messages

    async def resume(self, conversation_id: str) -> None:
        """Lift the pause a handoff put on the conversation (Rasa's `resume` event)."""
        path = f"/conversations/{quote(conversation_id, safe='')}/tracker/events"
        await self._call(conversation_id, lambda url, t: self._post_resume(url + path, t))

    async def user_intents(self, conversation_id: str) -> list[str]:
        """The intents of the conversation's user messages, oldest first (Rasa's tracker)."""
        path = f"/conversations/{quote(conversation_id, safe='')}/tracker"
        return await self._call(conversation_id, lambda url, t: self._get_intents(url + path, t))

    async def is_up(self) -> bool:
        """At least one replica answers (the service works, possibly degraded)."""
        return any(await asyncio.gather(*(self._version_ok(u) for u in self.urls)))

    async def replicas_up(self) -> dict[str, bool]:
        """Each replica's answer to /version, for health pages."""
        answers = await asyncio.gather(*(self._version_ok(u) for u in self.urls))
        return dict(zip(self.urls, answers, strict=True))

    # ---- HTTP ---------------------------------------------------------------------------------

    async def _call(
        self,
        conversation_id: str,
        attempt: Callable[[str, float], Any],
        on_queued: OnQueued | None = None,
    ) -> Any:
        """Try the conversation's replicas in order within one RASA_TIMEOUT budget, which starts
        when the message leaves the queue of the first replica tried."""
        deadline: float | None = None
        errors: list[str] = []
        notice = _Once(on_queued)
        candidates = self._candidates(conversation_id)
        for i, url in enumerate(candidates):
            async with self._admitted(url, notice):
                if self.is_down(url) and any(not self.is_down(u) for u in candidates[i + 1 :]):
                    continue  # marked down while this message waited in its queue
                if deadline is None:
                    deadline = self._clock() + self._timeout
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                try:
                    result = await attempt(url, remaining)
                except _ReplicaFailed as exc:
                    self._mark_down(url, str(exc))
                    errors.append(f"{url}: {exc}")
                    continue
                except asyncio.TimeoutError as exc:
                    # Possibly still running there: do not hand the message to a second replica.
                    self._check_alive(url)
                    raise RasaUnavailable(f"Rasa replica {url} did not answer in time") from exc
                self._mark_up(url)
                return result
        raise RasaUnavailable("no Rasa replica answered: " + "; ".join(errors or ["timeout"]))

    @contextlib.asynccontextmanager
    async def _admitted(self, url: str, notice: _Once) -> AsyncIterator[None]:
        """A place among the messages in flight to `url` (at once when it has no queue)."""
        queue = self._queues.get(url)
        if queue is not None:
            try:
                await queue.acquire(notice.run if notice.pending else None)
            except QueueFull as exc:
                raise RasaBusy(f"Rasa replica {url} is saturated: {exc}") from exc
        try:
            yield
        finally:
            if queue is not None:
                queue.release()

    async def _post_message(
        self, url: str, body: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        status, raw = await self._fetch("POST", f"{url}/webhooks/rest/webhook", timeout, json=body)
        if status != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {status}")
        try:
            messages = json.loads(raw)
        except ValueError as exc:
            raise RasaUnavailable("Rasa answered something other than JSON") from exc
        if not isinstance(messages, list):
            raise RasaUnavailable("Rasa answered something other than a list of messages")
        return messages

    async def _post_resume(self, url: str, timeout: float) -> None:
        status, _ = await self._fetch(
            "POST", url, timeout, headers=bearer_header(self._token), json={"event": "resume"}
        )
        if status != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {status} to resume")

    async def _get_intents(self, url: str, timeout: float) -> list[str]:
        status, raw = await self._fetch(
            "GET",
            url,
            timeout,
            headers=bearer_header(self._token),
            params={"include_events": "APPLIED"},
        )
        if status != 200:
            raise RasaUnavailable(f"Rasa answered HTTP {status} to the tracker")
        try:
            events = json.loads(raw).get("events") or []
        except (ValueError, AttributeError) as exc:
            raise RasaUnavailable("Rasa's tracker is not JSON") from exc
        names = [
            ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            for e in events
            if isinstance(e, dict) and e.get("event") == "user"
        ]
        return [n for n in names if isinstance(n, str)]

    async def _fetch(
        self, method: str, url: str, timeout: float, **kwargs: Any
    ) -> tuple[int, bytes]:
        """Status and body; a replica-level failure (no connection, reset, a body cut short,
        a 5xx) raises _ReplicaFailed, a timeout asyncio.TimeoutError."""
        try:
            async with self._http.request(
                method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
            ) as response:
                if response.status >= 500:
                    raise _ReplicaFailed(f"HTTP {response.status}")
                return response.status, await response.read()
        except aiohttp.ClientError as exc:
            raise _ReplicaFailed(repr(exc)) from exc

    async def _version_ok(self, url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
        try:
            async with self._http.get(
                f"{url}/version", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
