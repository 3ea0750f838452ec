"""The queue in front of each Rasa replica (bot/rasa/queue.py): in order, bounded, with a notice.

Rasa is the slow FakeRasa (tests/support/fake_rasa.py) on a real local HTTP server; the gateway
test drives real websockets, one cookie jar (so one conversation) per citizen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.conversation.frames import QUEUED_TEXT
from bot.rasa.pool import RasaBusy, RasaPool
from bot.rasa.queue import QueueLimits
from tests.support.fake_rasa import FakeRasa, message, settings_for


@pytest.fixture()
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def pool_for(rasa: FakeRasa, http: aiohttp.ClientSession, **limits: Any) -> RasaPool:
    return RasaPool(http, [f"http://127.0.0.1:{rasa.port}"], timeout=5, queue=QueueLimits(**limits))


async def test_waiting_messages_reach_rasa_one_at_a_time_in_arrival_order(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 0.05
    pool = pool_for(fake_rasa, http, concurrency=1, depth=20, notice_after=10)
    in_flight = 0
    most = 0
    original = fake_rasa.received

    class Counting(list[dict[str, Any]]):
        def append(self, item: Any) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            super().append(item)

    fake_rasa.received = Counting(original)

    async def send(i: int) -> list[dict[str, Any]]:
        answer = await pool.send_message(f"citizen-{i}", f"问题{i}")
        nonlocal in_flight
        in_flight -= 1
        return answer

    tasks = []
    for i in range(8):
        tasks.append(asyncio.create_task(send(i)))
        await asyncio.sleep(0.005)  # arrival order = i
    answers = await asyncio.gather(*tasks)
    assert all(a == [{"recipient_id": "x", "text": "您好"}] for a in answers)
    assert [m["sender"] for m in fake_rasa.received] == [f"citizen-{i}" for i in range(8)]
    assert most == 1


async def test_beyond_the_bound_the_message_is_refused_at_once(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 1.0
    pool = pool_for(fake_rasa, http, concurrency=1, depth=2, notice_after=10)
    loop = asyncio.get_running_loop()
    admitted = [asyncio.create_task(pool.send_message(f"c{i}", "你好")) for i in range(3)]
    await asyncio.sleep(0.1)
    started = loop.time()
    with pytest.raises(RasaBusy):
        await pool.send_message("c-late", "你好")
    assert loop.time() - started < 0.1
    assert len(await asyncio.gather(*admitted)) == 3  # the three admitted are answered
    assert "c-late" not in [m["sender"] for m in fake_rasa.received]


async def test_a_message_waiting_too_long_gets_busy_and_frees_its_place(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 0.6
    pool = pool_for(fake_rasa, http, concurrency=1, depth=5, notice_after=10, max_wait=0.2)
    first = asyncio.create_task(pool.send_message("c1", "你好"))
    await asyncio.sleep(0.05)
    with pytest.raises(RasaBusy):
        await pool.send_message("c2", "你好")
    await first
    fake_rasa.delay = 0
    assert await pool.send_message("c3", "你好")  # neither place leaked
    assert [m["sender"] for m in fake_rasa.received] == ["c1", "c3"]


async def test_a_cancelled_waiter_does_not_hold_up_the_queue(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 0.3
    pool = pool_for(fake_rasa, http, concurrency=1, depth=5, notice_after=10)
    first = asyncio.create_task(pool.send_message("c1", "你好"))
    await asyncio.sleep(0.05)
    gone = asyncio.create_task(pool.send_message("c2", "你好"))
    third = asyncio.create_task(pool.send_message("c3", "你好"))
    await asyncio.sleep(0.05)
    gone.cancel()
    await asyncio.gather(first, third)
    assert [m["sender"] for m in fake_rasa.received] == ["c1", "c3"]


async def test_the_notice_comes_once_and_only_to_a_message_that_waits(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 0.5
    pool = pool_for(fake_rasa, http, concurrency=1, depth=5, notice_after=0.2)
    told: list[str] = []

    def notice(who: str) -> Any:
        async def run() -> None:
            told.append(who)

        return run

    first = asyncio.create_task(pool.send_message("c1", "你好", on_queued=notice("c1")))
    await asyncio.sleep(0.05)
    await pool.send_message("c2", "你好", on_queued=notice("c2"))
    await first
    assert told == ["c2"]


async def test_without_a_queue_every_message_goes_at_once(
    fake_rasa: FakeRasa, http: aiohttp.ClientSession
) -> None:
    fake_rasa.delay = 0.3
    pool = pool_for(fake_rasa, http, concurrency=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(pool.send_message(f"c{i}", "你好") for i in range(5)))
    assert loop.time() - started < 0.9


async def test_saturated_rasa_citizens_are_told_they_wait_then_answered_in_order(
    tmp_path: Path, fake_rasa: FakeRasa, aiohttp_client: Any
) -> None:
    """One message in flight, one waiting: the waiting one is told "正在排队" after 2 s and then
    answered; a third finds the queue full and gets the busy reply at once, not after 5 s."""
    fake_rasa.delay = 2.5
    settings = settings_for(
        tmp_path, fake_rasa.port, rasa_timeout=5, rasa_concurrency=1, rasa_queue_depth=1
    )
    client: TestClient = await aiohttp_client(create_app(settings))
    loop = asyncio.get_running_loop()
    arrived: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    async def citizen(name: str, delay: float) -> None:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
            http.ws_connect(client.make_url("/ws")) as ws,
        ):
            assert (await ws.receive_json(timeout=2))["type"] == "history"
            await asyncio.sleep(delay)
            started = loop.time()
            await ws.send_json(message(name))
            frames = arrived[name] = []
            while True:
                frame = await ws.receive_json(timeout=10)
                frames.append((loop.time() - started, frame))
                if frame["type"] == "typing" and frame["on"] is False:
                    return

    await asyncio.gather(citizen("甲", 0), citizen("乙", 0.3), citizen("丙", 0.6))

    assert [m["message"] for m in fake_rasa.received] == ["甲", "乙"]
    notices = {
        name: [t for t, f in frames if f["type"] == "typing" and f.get("text") == QUEUED_TEXT]
        for name, frames in arrived.items()
    }
    assert notices["甲"] == [] and notices["丙"] == []
    [told_at] = notices["乙"]
    assert 1.9 < told_at < 2.5
    [(answered_at, answer)] = [(t, f) for t, f in arrived["乙"] if f["type"] == "bot"]
    assert answer["text"] == "您好" and answered_at > 4
    [(refused_at, refusal)] = [(t, f) for t, f in arrived["丙"] if f["type"] == "error"]
    assert refusal["code"] == "busy" and refused_at < 1
    assert [f["text"] for _, f in arrived["甲"] if f["type"] == "bot"] == ["您好"]


async def test_a_message_waiting_for_a_replica_that_goes_down_goes_to_the_next(
    http: aiohttp.ClientSession,
) -> None:
    from tests.unit.rasa.test_rasa_pool import Replica, conversation_owned_by

    replicas = [Replica("r0"), Replica("r1")]
    for replica in replicas:
        await replica.start()
    try:
        pool = RasaPool(
            http,
            [r.url for r in replicas],
            timeout=5,
            queue=QueueLimits(concurrency=1, depth=5, notice_after=10),
        )
        first, second = (conversation_owned_by(pool, replicas[0].url, p) for p in ("a", "b"))
        replicas[0].mode = "slow"
        held = asyncio.create_task(pool.send_message(first, "一"))
        await asyncio.sleep(0.1)
        waiting = asyncio.create_task(pool.send_message(second, "二"))
        await asyncio.sleep(0.1)
        replicas[0].mode = "500"  # the message in flight fails: r0 is marked down
        replicas[0].release.set()
        assert await waiting == [{"recipient_id": second, "text": "r1:二"}]
        assert await held == [{"recipient_id": first, "text": "r1:一"}]
        assert replicas[0].messages == [(first, "一")]
    finally:
        for replica in replicas:
            await replica.stop()
