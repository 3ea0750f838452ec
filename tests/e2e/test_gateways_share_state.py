"""Two gateway instances behind a load balancer share the database and Redis: a citizen on one
instance is served by a staff member on the other (real Redis pub/sub, real database)."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.db.engine import session_factory
from bot.settings import Settings
from bot.staff.accounts import create_account
from tests.conftest import require_service
from tests.support.running_stack import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "一个足够长的测试密码"
TIMEOUT = 15


@pytest.fixture()
def redis_namespace() -> str:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        require_service("Redis", exc)
    return f"test-{uuid.uuid4().hex[:8]}"


def instance_settings(tmp_path: Path, database_url: str, namespace: str) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_port=free_port(),  # no Rasa: "转人工" still starts a handoff (reason busy)
        rasa_auth_token="t",
        session_secret="shared-by-both-instances",
        handoff_hours="always",
        redis_url=REDIS_URL,
        redis_namespace=namespace,
    )


async def receive(ws, kind: str, **fields):
    while True:
        frame = await ws.receive_json(timeout=TIMEOUT)
        if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


async def test_staff_on_one_instance_serves_a_citizen_on_the_other(
    database_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    with session_factory(database_url)() as session:
        create_account(session, "wang", "王小明", PASSWORD)
    settings = instance_settings(tmp_path, database_url, redis_namespace)
    async with (
        TestClient(TestServer(create_app(settings))) as staff_side,
        TestClient(TestServer(create_app(settings))) as citizen_side,
    ):
        login = await (await staff_side.get("/staff/login")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        form = {"username": "wang", "password": PASSWORD, "csrf_token": token}
        assert (
            await staff_side.post("/staff/login", data=form, allow_redirects=False)
        ).status == 303
        staff = await staff_side.ws_connect("/staff/ws")
        await receive(staff, "hello")
        await asyncio.sleep(0.5)  # presence reaches Redis at once; the other instance reads it

        await citizen_side.get("/")
        citizen = await citizen_side.ws_connect("/ws")
        await receive(citizen, "history")
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        # The citizen's instance learns from Redis that an agent is online (refreshed every 5 s).
        while True:
            await citizen.send_json(
                {
                    "type": "message",
                    "id": uuid.uuid4().hex,
                    "text": "转人工",
                    "payload": "/request_human",
                }
            )
            state = await receive(citizen, "handoff")
            if state["state"] == "waiting":
                break
            assert loop_time() < deadline, "the other instance never saw the agent online"
            await asyncio.sleep(1)

        new = await receive(staff, "new_handoff")
        await staff.send_json({"type": "accept", "handoff_id": new["handoff"]["handoff_id"]})
        accepted = await receive(staff, "accepted")
        joined = await receive(citizen, "handoff", state="active")
        assert joined["agent"] == "王小明"

        await citizen.send_json({"type": "message", "id": "c1", "text": "我在另一台网关上"})
        got = await receive(staff, "message", conversation_id=accepted["conversation_id"])
        while got["message"].get("text") != "我在另一台网关上":
            got = await receive(staff, "message", conversation_id=accepted["conversation_id"])
        await staff.send_json(
            {
                "type": "reply",
                "conversation_id": accepted["conversation_id"],
                "id": "s1",
                "text": "收到",
            }
        )
        reply = await receive(citizen, "staff")
        assert (reply["text"], reply["agent"]) == ("收到", "王小明")
        await citizen.send_json({"type": "typing", "on": True})
        typing = await receive(staff, "typing")
        assert typing == {
            "type": "typing",
            "conversation_id": accepted["conversation_id"],
            "on": True,
        }
        await staff.close()
        await citizen.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()
