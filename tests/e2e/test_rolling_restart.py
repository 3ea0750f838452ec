"""A rolling restart loses nothing (README "Deployment", "Rolling out a new version").

The local cluster (bot/ops/cluster.py: the processes and commands deploy/ runs, see
tests/unit/deploy/test_manifests.py) with two Rasa replicas and two gateways, under chat load.
As Kubernetes or systemd would during a rollout, one Rasa replica and then one gateway are
stopped with SIGTERM and started again, one at a time, while citizens keep chatting. A citizen
behaves like the page (bot/webchat/static/chat.js) behind the load balancer: when its socket
closes it reconnects to the other gateway, reads the history and resends only what was never
acknowledged. Every message must be stored once and answered with the right answer, with no
"busy" apology.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from sqlalchemy import text

from bot.db.engine import session_factory
from bot.db.migrate import upgrade
from bot.kb.seed import seed_if_empty
from bot.ops.cluster import ClusterConfig, LocalCluster, services_cluster
from bot.settings import Settings
from tests.conftest import require_service
from tests.support.running_stack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REDIS_URL = "redis://127.0.0.1:6379/0"
CITIZENS = 6
# What the citizens ask, round and round, and a fragment each answer must contain.
SCRIPT = [
    ("商标受理窗口在哪", "商标受理窗口"),
    ("鄞州有品牌指导站吗", "鄞州区"),
    ("知识产权保险有哪些", "保险"),
    ("谢谢", "不客气"),
]
ANSWER_DEADLINE_SECONDS = 60  # one message, reconnections included
# Between an answer and the next question: reading and typing, and under the chat rate limit
# (CHAT_RATE_LIMIT, 10 messages per 10 s per conversation).
PAUSE_SECONDS = 1.5


@pytest.fixture()
def cluster(
    postgres_schema_url: str, trained_model: Path, tmp_path: Path
) -> Iterator[tuple[LocalCluster, ClusterConfig]]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as exc:
        require_service("Redis", exc)
    upgrade(postgres_schema_url)
    with session_factory(postgres_schema_url)() as session:
        seed_if_empty(session)
    settings = Settings(
        var_dir=tmp_path,
        database_url=postgres_schema_url,
        rasa_auth_token="test-token",
        session_secret="test-session-secret",
        rasa_timeout=20,  # a slow, busy test machine must not turn into "busy" answers
        handoff_hours="always",
        redis_namespace=f"test-{uuid.uuid4().hex[:8]}",
    )
    config = ClusterConfig(
        database_url=postgres_schema_url,
        redis_url=REDIS_URL,
        lock_key_prefix=f"t{uuid.uuid4().hex[:8]}",
        rasa_ports=(free_port(), free_port()),
        gateway_ports=(free_port(), free_port()),
        action_port=free_port(),
        action_workers=1,
    )
    running = LocalCluster(services_cluster(settings, trained_model, config), tmp_path / "logs")
    try:
        running.start()
        yield running, config
    finally:
        running.stop()


class Disconnected(Exception):
    """The socket closed (its gateway is shutting down) or could not be opened."""


@dataclass
class Citizen:
    """One browser behind the load balancer: a cookie, and a socket to one gateway or another."""

    gateways: list[str]
    home: int  # the gateway the load balancer's cookie hash picks while it is up
    index: int = -1
    http: aiohttp.ClientSession | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    answered: int = 0
    reconnections: list[str] = field(default_factory=list)  # why, and to which gateway
    problems: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # client ids
    awaiting: bool = False  # a message acknowledged, its answer not yet here

    @property
    def gateway(self) -> str:
        return self.gateways[self.index % len(self.gateways)]

    async def open(self) -> None:
        self.index = self.home
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.get(self.gateway + "/") as page:  # the session cookie
            assert page.status == 200

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()

    async def connect(self) -> list[dict[str, Any]]:
        """(Re)open the socket on the current gateway; the history's messages."""
        assert self.http is not None
        if self.ws is not None:
            await self.ws.close()
        try:
            self.ws = await self.http.ws_connect(self.gateway + "/ws", timeout=5)
            history = await self.receive()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise Disconnected(str(exc)) from exc
        assert history["type"] == "history", history
        return list(history["messages"])

    async def reconnect(self, why: str) -> list[dict[str, Any]]:
        """The page reconnects; the load balancer sends it to its own gateway if that one
        accepts, else to the next."""
        for attempt in itertools.count():
            self.index = self.home + attempt
            try:
                history = await self.connect()
            except Disconnected:
                await asyncio.sleep(min(0.1 * 2**attempt, 1))
                continue
            self.reconnections.append(f"{why} → {self.gateway}")
            return history
        raise AssertionError("unreachable")

    async def receive(self) -> dict[str, Any]:
        assert self.ws is not None
        message = await self.ws.receive(timeout=30)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise Disconnected(f"socket {message.type.name}")
        frame: dict[str, Any] = message.json()
        return frame

    async def send(self, client_id: str, question: str) -> None:
        assert self.ws is not None
        try:
            await self.ws.send_json({"type": "message", "id": client_id, "text": question})
        except ConnectionError as exc:
            raise Disconnected(str(exc)) from exc

    async def ask(self, question: str) -> str:
        """Send one message and return its answer's text, across reconnections like the page."""
        client_id = uuid.uuid4().hex
        self.sent.append(client_id)
        deadline = time.monotonic() + ANSWER_DEADLINE_SECONDS
        acked = False  # the page pairs answers with questions by order: after the ack
        texts: list[str] = []
        with contextlib.suppress(Disconnected):  # the receive below notices and reconnects
            await self.send(client_id, question)
        while time.monotonic() < deadline:
            try:
                frame = await self.receive()
            except (Disconnected, asyncio.TimeoutError) as exc:
                if isinstance(exc, asyncio.TimeoutError):  # the page would wait forever
                    self.problems.append(f"{question!r}: the socket stayed silent for 30 s")
                history = await self.reconnect(str(exc) or type(exc).__name__)
                while client_id in [m.get("client_id") for m in history]:
                    answer = answer_in_history(history, client_id)
                    if answer:
                        self.awaiting = False
                        return answer
                    # Stored, not answered yet: the answer is on its way (the stopping gateway
                    # finishes its queued answers); read the history again shortly.
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(1)
                    try:
                        history = await self.connect()
                    except Disconnected as exc:
                        history = await self.reconnect(str(exc))
                else:
                    acked, texts = False, []  # never stored: the page resends it
                    await self.send(client_id, question)
                continue
            if frame.get("client_id") == client_id:
                if frame["type"] != "ack":
                    self.problems.append(f"{question!r} refused: {frame}")
                    return ""
                acked = self.awaiting = True
            elif frame["type"] == "error":
                self.problems.append(f"{question!r}: {frame}")
            elif frame["type"] == "bot" and acked:
                texts.append(frame.get("text", ""))
            elif frame["type"] == "typing" and frame["on"] is False and texts:
                self.awaiting = False
                return "\n".join(texts)
        self.problems.append(f"{question!r}: no answer within {ANSWER_DEADLINE_SECONDS} s")
        return ""


def answer_in_history(messages: list[dict[str, Any]], client_id: str) -> str:
    """The bot texts between the user message `client_id` and the next user message."""
    [at] = [i for i, m in enumerate(messages) if m.get("client_id") == client_id]
    after = []
    for message in messages[at + 1 :]:
        if message["type"] == "user":
            break
        if message["type"] == "bot":
            after.append(message.get("text", ""))
    return "\n".join(after)


async def chat_until(citizen: Citizen, stop: asyncio.Event) -> None:
    await citizen.open()
    await citizen.connect()
    try:
        for question, expected in itertools.cycle(SCRIPT):
            if stop.is_set():
                return
            answer = await citizen.ask(question)
            if expected not in answer:
                citizen.problems.append(f"{question!r} → {answer[:80]!r}")
            citizen.answered += 1
            await asyncio.sleep(PAUSE_SECONDS)
    finally:
        await citizen.close()


async def restart(cluster: LocalCluster, name: str, busy: list[Citizen]) -> float:
    """SIGTERM (what Kubernetes and systemd send) while one of `busy` waits for an answer, then
    start it again and wait until it answers its health URL; returns the seconds it was away."""
    while not any(c.awaiting for c in busy):  # an answer in the making when the stop comes
        await asyncio.sleep(0.005)
    started = time.monotonic()
    await asyncio.to_thread(cluster.stop, name)
    await asyncio.to_thread(cluster.start, name)
    return time.monotonic() - started


async def test_a_rolling_restart_of_a_rasa_replica_and_a_gateway_loses_nothing(
    cluster: tuple[LocalCluster, ClusterConfig],
) -> None:
    running, config = cluster
    gateways = [f"http://127.0.0.1:{port}" for port in config.gateway_ports]
    citizens = [Citizen(gateways, home=i % len(gateways)) for i in range(CITIZENS)]
    stop = asyncio.Event()
    load = [asyncio.create_task(chat_until(c, stop)) for c in citizens]

    def answered() -> int:
        return sum(c.answered for c in citizens)

    async def some_more(count: int) -> None:
        target = answered() + count
        while answered() < target:
            assert not any(task.done() for task in load), [t.exception() for t in load]
            await asyncio.sleep(0.2)

    await asyncio.wait_for(some_more(CITIZENS), 120)  # everybody is chatting
    before = answered()
    rasa_away = await restart(running, "rasa-2", citizens)
    during_rasa = answered() - before
    await some_more(CITIZENS)  # with the replica back
    before = answered()
    moved = [c for c in citizens if c.gateway == gateways[0]]  # their sockets will close
    reconnected = {id(c): len(c.reconnections) for c in moved}
    gateway_away = await restart(running, "gateway-1", moved)
    await some_more(2 * CITIZENS)  # the moved citizens go on, on the other gateway
    during_gateway = answered() - before
    stop.set()
    await asyncio.wait_for(asyncio.gather(*load), 120)

    print(
        f"rasa-2 away {rasa_away:.1f} s ({during_rasa} answers meanwhile), gateway-1 away"
        f" {gateway_away:.1f} s ({during_gateway}), {answered()} answers,"
        f" reconnections: {[r for c in citizens for r in c.reconnections]}"
    )
    problems = [p for c in citizens for p in c.problems]
    assert problems == []
    # The load really ran through both restarts, and the gateway's citizens moved.
    assert during_rasa >= CITIZENS, (during_rasa, rasa_away)
    assert during_gateway >= CITIZENS, (during_gateway, gateway_away)
    assert len(moved) >= CITIZENS // 2
    assert all(len(c.reconnections) > reconnected[id(c)] for c in moved)
    # Nothing lost: every message a citizen sent is stored once, answered, and has a reply.
    sent = [client_id for c in citizens for client_id in c.sent]
    with session_factory(config.database_url)() as session:
        rows = session.execute(
            text(
                "SELECT m.client_message_id, m.status, (SELECT count(*) FROM messages b"
                " WHERE b.conversation_id = m.conversation_id AND b.role = 'bot'"
                " AND b.id > m.id) FROM messages m WHERE m.role = 'user'"
            )
        ).all()
    assert sorted(client_id for client_id, _, _ in rows) == sorted(sent)
    assert {status for _, status, _ in rows} == {"answered"}
    assert all(replies > 0 for _, _, replies in rows)
