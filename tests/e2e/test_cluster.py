"""The scale-out topology (bot/ops/cluster.py) with real processes: two Rasa replicas sharing a
PostgreSQL tracker store and a Redis lock store, the action server, a gateway that knows both
replicas. A conversation stays on its replica; when that replica is killed during load, the
conversation continues on the other with its tracker (a half-filled form) intact, and every
message of every citizen is stored and answered.

Which replica served a request is read from each replica's own access log (Sanic's, switched on
with LOG_LEVEL_LIBRARIES=INFO), not inferred from the hash ring.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from bot.db.engine import session_factory
from bot.db.migrate import upgrade
from bot.kb.seed import seed_if_empty
from bot.ops.cluster import ClusterConfig, LocalCluster, services_cluster
from bot.rasa.pool import HashRing
from bot.settings import Settings
from tests.conftest import require_service
from tests.support.chat_client import ChatClient, buttons, texts
from tests.support.running_stack import NO_ADDRESS_LIMITS, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REDIS_URL = "redis://127.0.0.1:6379/0"
WEBHOOK_LINE = re.compile(r"\(sanic.access\).*: POST http://\S+/webhooks/rest/webhook ")
# What background citizens ask, and a fragment each answer must contain.
SCRIPT = [
    ("商标受理窗口在哪", "商标受理窗口"),
    ("鄞州有品牌指导站吗", "鄞州区"),
    ("知识产权保险有哪些", "保险"),
    ("谢谢", "不客气"),
]


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
        **NO_ADDRESS_LIMITS,
    )
    config = ClusterConfig(
        database_url=postgres_schema_url,
        redis_url=REDIS_URL,
        lock_key_prefix=f"t{uuid.uuid4().hex[:8]}",
        rasa_ports=(free_port(), free_port()),
        gateway_ports=(free_port(),),
        action_port=free_port(),
        action_workers=1,
        rasa_env={"LOG_LEVEL_LIBRARIES": "INFO"},  # Sanic's access log: which replica served
    )
    running = LocalCluster(services_cluster(settings, trained_model, config), tmp_path / "logs")
    try:
        running.start()
        yield running, config
    finally:
        running.stop()


def webhook_posts(cluster: LocalCluster, name: str) -> int:
    return len(WEBHOOK_LINE.findall(cluster.log(name)))


async def background_citizen(gateway: str, started: asyncio.Event, problems: list[str]) -> int:
    """One citizen's scripted conversation; returns how many messages it sent."""
    async with ChatClient(gateway) as chat:
        for turn, (question, expected) in enumerate(SCRIPT):
            answer = await chat.ask(question)
            if turn == 0:
                started.set()
            errors = [f for f in answer if f.get("type") == "error"]
            if errors or expected not in texts(answer):
                problems.append(f"{question!r} → {errors or texts(answer)[:80]!r}")
            await asyncio.sleep(0.3)
    return len(SCRIPT)


async def test_a_conversation_keeps_its_replica_and_survives_its_death(
    cluster: tuple[LocalCluster, ClusterConfig],
) -> None:
    running, config = cluster
    gateway = f"http://127.0.0.1:{config.gateway_ports[0]}"
    replicas = {f"rasa-{i}": url for i, url in enumerate(config.rasa_urls("127.0.0.1"), 1)}
    database = session_factory(config.database_url)

    async with ChatClient(gateway) as citizen:
        # Phase 1, nothing else running: the conversation's messages all reach one replica.
        ack = await citizen.say("有没有专利保险")
        await citizen.wait_for(lambda f: f.get("type") == "typing" and f.get("on") is False)
        with database() as session:
            conversation_id = session.execute(
                text("SELECT conversation_id FROM messages WHERE id = :id"), {"id": ack["id"]}
            ).scalar_one()
        asked = await citizen.ask("我要登记咨询", payload="/request_insurance_consultation")
        assert "请问贵公司（单位）的名称是" in texts(asked)
        asked = await citizen.ask("宁波甬新电子有限公司")
        assert "请问联系人怎么称呼" in texts(asked)

        posts = {name: webhook_posts(running, name) for name in replicas}
        owner = next(name for name, count in posts.items() if count)
        survivor = next(name for name in replicas if name != owner)
        assert posts == {owner: 3, survivor: 0}
        assert replicas[owner] == HashRing(replicas.values()).owner(conversation_id)

        # Phase 2: other citizens chatting; the owner replica dies in the middle of it.
        problems: list[str] = []
        events = [asyncio.Event() for _ in range(6)]
        others = [asyncio.create_task(background_citizen(gateway, e, problems)) for e in events]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
        # The owner dies with the citizen's next message in flight: frozen first, so that the
        # message has surely reached it, then killed.
        running.pause(owner)
        in_flight = asyncio.create_task(citizen.ask("王先生"))
        await asyncio.sleep(1.5)
        running.kill(owner)

        # The form goes on where it was: the tracker (active form, filled slots) is in PostgreSQL.
        asked = await in_flight
        assert "请留一个联系电话" in texts(asked)
        asked = await citizen.ask("13812345678")
        assert "您想了解哪类保险" in texts(asked)
        product = next(b for b in buttons(asked) if b["payload"].startswith("/inform"))
        done = await citizen.ask(product["title"], payload=product["payload"])
        sent_by_others = sum(await asyncio.gather(*others))

    summary = texts(done)
    for fragment in ("已登记您的保险咨询", "宁波甬新电子有限公司", "王先生", "13812345678"):
        assert fragment in summary
    assert problems == []
    assert webhook_posts(running, survivor) >= 3  # the conversation's last three turns

    with database() as session:
        lead = session.execute(
            text(
                "SELECT company, contact_name, phone, products FROM consultation_requests"
                " WHERE conversation_id = :c"
            ),
            {"c": conversation_id},
        ).one()
        assert tuple(lead) == ("宁波甬新电子有限公司", "王先生", "13812345678", product["title"])
        # Rasa's tracker: each user message once, in order, across both replicas.
        said = [
            json.loads(data)["text"]
            for (data,) in session.execute(
                text(
                    "SELECT data FROM events WHERE sender_id = :c AND type_name = 'user'"
                    " ORDER BY id"
                ),
                {"c": conversation_id},
            )
        ]
        assert said == [
            "有没有专利保险",
            "/request_insurance_consultation",
            "宁波甬新电子有限公司",
            "王先生",
            "13812345678",
            product["payload"],
        ]
        # No message lost: every user message stored, answered, and followed by a bot reply.
        rows = session.execute(
            text(
                "SELECT m.status, (SELECT count(*) FROM messages b WHERE b.conversation_id ="
                " m.conversation_id AND b.role = 'bot' AND b.id > m.id) FROM messages m"
                " WHERE m.role = 'user'"
            )
        ).all()
    assert len(rows) == 6 + sent_by_others
    assert {status for status, _ in rows} == {"answered"}
    assert all(replies > 0 for _, replies in rows)
