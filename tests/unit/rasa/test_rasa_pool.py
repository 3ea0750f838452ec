"""RasaPool: consistent hashing of conversations over Rasa replicas, failover and recovery.

Each replica is a real local HTTP server speaking Rasa's REST channel (these test the routing,
not Rasa; tests/e2e/test_cluster.py runs real Rasa replicas). Servers are stopped and restarted on
the same port to play a replica that dies and comes back.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.rasa.pool import HashRing, RasaPool, RasaUnavailable, parse_rasa_urls


class Replica:
    """A stand-in Rasa replica: answers "<name>:<message>", records what reached it.

    mode: "ok", "500" (answers HTTP 500), "slow" (answers messages only when released),
    "frozen" (answers nothing, not even /version, until released), "401".
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.messages: list[tuple[str, str]] = []  # (sender, message) answered or refused
        # (conversation id, ?token= in the URL, the Authorization header)
        self.resumed: list[tuple[str, str, str]] = []
        self.version_calls = 0
        self.release = asyncio.Event()
        self.server: TestServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            self.messages.append((body["sender"], body["message"]))
            if self.mode in ("slow", "frozen"):
                await self.release.wait()
            if self.mode == "500":
                return web.json_response({"error": "boom"}, status=500)
            if self.mode == "401":
                return web.json_response({"error": "no"}, status=401)
            text = f"{self.name}:{body['message']}"
            return web.json_response([{"recipient_id": body["sender"], "text": text}])

        async def events(request: web.Request) -> web.Response:
            self.resumed.append(
                (
                    request.match_info["cid"],
                    request.query.get("token", ""),
                    request.headers.get("Authorization", ""),
                )
            )
            return web.json_response({"ok": True})

        async def version(_: web.Request) -> web.Response:
            self.version_calls += 1
            if self.mode == "frozen":
                await self.release.wait()
            return web.json_response({"version": "3.6.21"})

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_post("/conversations/{cid}/tracker/events", events)
        app.router.add_get("/version", version)
        return app

    async def start(self) -> None:
        self.server = TestServer(self.app(), host="127.0.0.1", port=self.port or None)
        await self.server.start_server()
        self.port = self.server.port

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            await self.server.close()
            self.server = None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
async def replicas() -> AsyncIterator[list[Replica]]:
    started = [Replica(name) for name in ("r0", "r1", "r2")]
    for replica in started:
        await replica.start()
    yield started
    for replica in started:
        await replica.stop()


@pytest.fixture()
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def conversation_owned_by(pool: RasaPool, url: str, prefix: str = "c") -> str:
    return next(f"{prefix}{i}" for i in range(10_000) if pool.ring.owner(f"{prefix}{i}") == url)


async def wait_until(condition: Any, seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_parse_rasa_urls_falls_back_to_the_single_rasa() -> None:
    assert parse_rasa_urls("", "http://127.0.0.1:5005/") == ("http://127.0.0.1:5005",)
    assert parse_rasa_urls(" http://a:1/ , http://b:2,,http://a:1", "http://x:9") == (
        "http://a:1",
        "http://b:2",
    )


async def test_each_conversation_stays_on_one_replica_and_load_spreads_evenly(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    pool = RasaPool(http, [r.url for r in replicas], timeout=5)
    conversations = [f"conv-{i}" for i in range(300)]
    for turn in ("你好", "商标受理窗口在哪"):
        answers = await asyncio.gather(*(pool.send_message(c, turn) for c in conversations))
        for conversation, answer in zip(conversations, answers, strict=True):
            owner = next(r for r in replicas if r.url == pool.ring.owner(conversation))
            assert answer == [{"recipient_id": conversation, "text": f"{owner.name}:{turn}"}]

    replica_of: dict[str, set[str]] = collections.defaultdict(set)
    for replica in replicas:
        for sender, _ in replica.messages:
            replica_of[sender].add(replica.name)
    assert all(len(names) == 1 for names in replica_of.values())
    assert len(replica_of) == 300
    shares = [len(r.messages) / 600 for r in replicas]
    assert all(0.25 < share < 0.42 for share in shares), shares  # 1/3 each, give or take


def test_the_mapping_is_stable_when_replicas_are_added_or_removed() -> None:
    urls = ["http://10.0.0.1:5005", "http://10.0.0.2:5005", "http://10.0.0.3:5005"]
    keys = [f"conversation-{i}" for i in range(4000)]
    three = HashRing(urls)
    before = {k: three.owner(k) for k in keys}

    # The same replicas listed in another order (another gateway's RASA_URLS): the same mapping.
    assert {k: HashRing(reversed(urls)).owner(k) for k in keys} == before

    four = HashRing([*urls, "http://10.0.0.4:5005"])
    moved = {k for k in keys if four.owner(k) != before[k]}
    assert all(four.owner(k) == "http://10.0.0.4:5005" for k in moved)  # only to the newcomer
    assert 0.17 < len(moved) / len(keys) < 0.33  # about a quarter moves

    two = HashRing(urls[:2])
    moved = {k for k in keys if two.owner(k) != before[k]}
    assert moved == {k for k in keys if before[k] == urls[2]}  # only the removed one's

    # Every gateway process must agree: the hash is fixed, not Python's per-process hash().
    assert HashRing(urls).owner("conversation-0") == HashRing(urls).owner("conversation-0")
    assert "".join(HashRing(urls).owner(f"k{i}")[-6] for i in range(12)) == "323232232211"


async def test_a_failing_replica_fails_over_to_the_next_on_the_ring(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    pool = RasaPool(http, [r.url for r in replicas], timeout=5, clock=clock)
    r0 = replicas[0]
    conversation = conversation_owned_by(pool, r0.url)
    successor = next(r for r in replicas if r.url == pool.ring.preference(conversation)[1])

    r0.mode = "500"
    answer = await pool.send_message(conversation, "商标受理窗口在哪")
    assert answer[0]["text"] == f"{successor.name}:商标受理窗口在哪"
    assert pool.is_down(r0.url)
    assert pool.replica_for(conversation) == successor.url

    # While r0 is down its conversations go straight to the successor: r0 is not tried again.
    tried_before = len(r0.messages)
    answer = await pool.send_message(conversation, "品牌指导站")
    assert answer[0]["text"] == f"{successor.name}:品牌指导站"
    assert len(r0.messages) == tried_before
    # Conversations of the other replicas did not move.
    other = conversation_owned_by(pool, replicas[2].url, "o")
    assert (await pool.send_message(other, "x"))[0]["text"] == "r2:x"

    # A dead process (connection refused) fails over the same way.
    dead = replicas[2]
    await dead.stop()
    answer = await pool.send_message(other, "保险")
    assert answer[0]["text"].endswith(":保险")
    assert not answer[0]["text"].startswith("r2")
    assert pool.is_down(dead.url)


async def test_a_refusal_that_is_not_the_replicas_fault_does_not_fail_over(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    pool = RasaPool(http, [r.url for r in replicas], timeout=5)
    conversation = conversation_owned_by(pool, replicas[1].url)
    replicas[1].mode = "401"
    with pytest.raises(RasaUnavailable, match="HTTP 401"):
        await pool.send_message(conversation, "你好")
    assert not pool.is_down(replicas[1].url)
    assert [len(r.messages) for r in replicas] == [0, 1, 0]


async def test_a_slow_replica_keeps_its_conversations_and_gets_no_message_twice(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    pool = RasaPool(http, [r.url for r in replicas], timeout=0.3)
    r1 = replicas[1]
    conversation = conversation_owned_by(pool, r1.url)
    r1.mode = "slow"  # overloaded: messages time out, /version still answers
    with pytest.raises(RasaUnavailable, match="did not answer in time"):
        await pool.send_message(conversation, "第一句")
    # It may still be working on it: no other replica got the same message ...
    assert sum(len(r.messages) for r in replicas) == 1
    await wait_until(lambda: r1.version_calls == 1 and not pool._health[r1.url].probing)
    # ... and, alive, it keeps the conversation (moving it would overload the next replica).
    assert not pool.is_down(r1.url)
    r1.mode = "ok"
    assert (await pool.send_message(conversation, "第二句"))[0]["text"] == "r1:第二句"


async def test_a_frozen_replica_is_marked_down_after_a_timeout(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    pool = RasaPool(http, [r.url for r in replicas], timeout=0.3)
    r1 = replicas[1]
    conversation = conversation_owned_by(pool, r1.url)
    r1.mode = "frozen"  # hung: not even /version answers
    with pytest.raises(RasaUnavailable, match="did not answer in time"):
        await pool.send_message(conversation, "第一句")
    assert sum(len(r.messages) for r in replicas) == 1
    await wait_until(lambda: pool.is_down(r1.url), seconds=4)  # the probe waits 2 s at least
    answer = await pool.send_message(conversation, "第二句")
    assert answer[0]["text"].endswith(":第二句")
    assert not answer[0]["text"].startswith("r1")
    assert len(r1.messages) == 1


async def test_a_replica_that_answers_again_gets_its_conversations_back(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    pool = RasaPool(http, [r.url for r in replicas], timeout=5, backoff=2.0, clock=clock)
    r0 = replicas[0]
    conversation = conversation_owned_by(pool, r0.url)
    await r0.stop()
    assert not (await pool.send_message(conversation, "一"))[0]["text"].startswith("r0")

    # Back-off over, still dead: the probe fails and the back-off doubles (2 s, then 4 s).
    clock.now += 2.0
    pool.replica_for(conversation)  # routing notices the back-off is over and probes
    await wait_until(lambda: not pool._health[r0.url].probing)
    assert pool.is_down(r0.url)
    assert pool._health[r0.url].down_until == pytest.approx(clock.now + 4.0)

    await r0.start()  # same port: the replica is back
    clock.now += 3.9
    assert (await pool.send_message(conversation, "二"))[0]["text"] != "r0:二"  # not yet probed
    assert r0.version_calls == 0
    clock.now += 0.1
    # This message still goes to the successor while the probe runs in the background ...
    assert not (await pool.send_message(conversation, "三"))[0]["text"].startswith("r0")
    await wait_until(lambda: not pool.is_down(r0.url))
    assert r0.version_calls == 1
    # ... and the next ones go home, where nothing was lost: r0 sees only what came after.
    assert (await pool.send_message(conversation, "四"))[0]["text"] == "r0:四"
    assert r0.messages == [(conversation, "四")]


async def test_many_requests_failing_at_once_count_as_one_failure(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    pool = RasaPool(http, [r.url for r in replicas], timeout=5, backoff=2.0, clock=clock)
    r2 = replicas[2]
    r2.mode = "500"
    owned = [f"c{i}" for i in range(400) if pool.ring.owner(f"c{i}") == r2.url][:20]
    r2.mode = "slow"  # hold them all in flight, then fail them together
    sends = [asyncio.create_task(pool.send_message(c, "同时")) for c in owned]
    await wait_until(lambda: len(r2.messages) == len(owned))
    r2.mode = "500"
    r2.release.set()
    answers = await asyncio.gather(*sends)
    assert all(not a[0]["text"].startswith("r2") for a in answers)
    assert pool._health[r2.url].down_until == pytest.approx(clock.now + 2.0)  # not 2 * 2**19


def signed_by(authorization: str, secret: str) -> dict:
    """The claims of a `Bearer` JWT, verified as Rasa's sanic-jwt does (HS256, expiry)."""
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer"
    return jwt.decode(token, secret, algorithms=["HS256"])


async def test_resume_goes_to_the_conversations_replica_with_a_signed_header_not_the_token(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    """Issue 14, #14: the token never travels in `?token=` (access logs keep URLs)."""
    pool = RasaPool(http, [r.url for r in replicas], timeout=5, token="secret-token-" + "x" * 20)
    conversation = conversation_owned_by(pool, replicas[2].url, "会话/")
    await pool.resume(conversation)
    [(resumed, in_url, authorization)] = replicas[2].resumed
    assert (resumed, in_url) == (conversation, "")
    claims = signed_by(authorization, "secret-token-" + "x" * 20)
    assert claims["user"] == {"username": "gateway", "role": "admin"}
    assert 0 < claims["exp"] - time.time() <= 60
    with pytest.raises(jwt.InvalidSignatureError):
        signed_by(authorization, "another-secret-" + "x" * 20)
    await replicas[2].stop()
    await pool.resume(conversation)
    successor = next(r for r in replicas if r.url == pool.ring.preference(conversation)[1])
    assert [r[:2] for r in successor.resumed] == [(conversation, "")]


async def test_with_every_replica_down_the_user_gets_rasa_unavailable(
    replicas: list[Replica], http: aiohttp.ClientSession
) -> None:
    pool = RasaPool(http, [r.url for r in replicas], timeout=5)
    assert await pool.is_up()
    await replicas[0].stop()
    await replicas[1].stop()
    assert await pool.is_up()  # degraded but serving
    assert await pool.replicas_up() == {
        replicas[0].url: False,
        replicas[1].url: False,
        replicas[2].url: True,
    }
    await replicas[2].stop()
    assert not await pool.is_up()
    with pytest.raises(RasaUnavailable, match="no Rasa replica answered") as raised:
        await pool.send_message("someone", "你好")
    assert all(r.url in str(raised.value) for r in replicas)  # each one was tried
    # Marked down, they are still tried when there is nothing else: one comes back, it answers.
    await replicas[1].start()
    assert (await pool.send_message("someone", "还在吗"))[0]["text"] == "r1:还在吗"
    await pool.close()
