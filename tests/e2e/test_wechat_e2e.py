"""The WeChat channel end to end: pushes built the way WeChat builds them (wechatpy's signatures and
encryption) to a real gateway process configured for WeChat, in front of the session's real Rasa
model and action server; the customer-service API is the local fake (tests/fake_wechat.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import redis
import yaml
from sqlalchemy import delete, select

from bot.conversation.frames import HOT_QUESTIONS, WELCOME_TEXT
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.models import ServicePoint
from bot.db.service_points import distance_km
from bot.settings import PROJECT_ROOT
from tests.conftest import require_service
from tests.support.fake_wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWechat,
    new_msg_id,
    new_openid,
    open_reply,
    sign,
    text_xml,
    xml_of,
)
from tests.support.running_stack import RunningStack, free_port
from tests.support.staff_client import StaffClient, add_staff_account

pytestmark = pytest.mark.e2e
REDIS_URL = "redis://127.0.0.1:6379/14"
ANSWER_SECONDS = 30  # generous: two cores run the whole suite

# The seed knowledge items by key: what the bot answers, as staff would have written it.
SEED = {
    item["key"]: item
    for item in yaml.safe_load((PROJECT_ROOT / "data/kb/knowledge.yml").read_text("utf-8"))
}


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeWechat]:
    fake = FakeWechat().start()
    yield fake
    fake.stop()


def wechat_gateway(stack: RunningStack, fake: FakeWechat, name: str, **env: str) -> RunningStack:
    """A second gateway process for WeChat, in front of the stack's Rasa, actions and database."""
    settings = dataclasses.replace(stack.settings, gateway_port=free_port())
    gateway = RunningStack(
        settings,
        stack.model,
        stack.log_dir / name,
        extra_env={
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APP_ID": APP_ID,
            "WECHAT_APP_SECRET": APP_SECRET,
            "WECHAT_AES_KEY": AES_KEY,
            "WECHAT_API_BASE": fake.url,
            **env,
        },
    )
    gateway.start("gateway")
    return gateway


@pytest.fixture(scope="module")
def gateway(stack: RunningStack, fake_api: FakeWechat) -> Iterator[RunningStack]:
    """Answers in time (passive replies); dedupes with Redis."""
    running = wechat_gateway(stack, fake_api, "wechat", REDIS_URL=REDIS_URL)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def late_gateway(stack: RunningStack, fake_api: FakeWechat) -> Iterator[RunningStack]:
    """Never in time: every answer goes through the customer-service API; dedupes in the DB."""
    running = wechat_gateway(stack, fake_api, "wechat-late", WECHAT_REPLY_TIMEOUT="0.01")
    yield running
    running.stop()


@pytest.fixture()
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS)) as s:
        yield s


async def push(
    http: aiohttp.ClientSession, gateway: RunningStack, xml: str, mode: str = "safe"
) -> tuple[int, dict[str, Any] | None]:
    """POST a push; (status, the passive reply's fields or None for "success")."""
    signed = sign(xml, mode)
    url = gateway.gateway_url + "/wechat"
    async with http.post(url, params=signed.params, data=signed.body) as response:
        body = await response.text()
        if response.status != 200:
            return response.status, {"error": body}
        return 200, open_reply(body, signed.params)


async def ask(
    http: aiohttp.ClientSession,
    gateway: RunningStack,
    openid: str,
    text: str,
    msg_id: int | None = None,
    mode: str = "safe",
) -> str:
    status, reply = await push(http, gateway, text_xml(openid, text, msg_id), mode)
    assert status == 200, reply
    if reply is not None:
        assert (reply["ToUserName"], reply["FromUserName"]) == (openid, "gh_ipbot_test")
    return "" if reply is None else reply["Content"]


async def test_a_question_gets_the_right_answer_in_a_passive_reply(
    gateway: RunningStack, http
) -> None:
    openid = new_openid()
    answer = await ask(http, gateway, openid, "商标受理窗口在哪")
    overview = SEED["overview-trademark-window"]
    assert answer.startswith(overview["answer"])  # the direct answer first …
    assert "【宁波市商标受理窗口】" in answer and "地址：全市，地址待核实" in answer  # … the card
    related = [SEED[k]["question"] for k in overview["related"]]
    assert "\n".join(f"{n}. {q}" for n, q in enumerate(related, 1)) in answer  # numbered
    assert len(answer.encode()) <= 2048
    # The user answers with a number: the related question is asked for them.
    follow_up = await ask(http, gateway, openid, "2", mode="compatible")
    assert follow_up.startswith(SEED["trademark-fee-online"]["answer"])
    assert "270元" in follow_up
    with session_factory(gateway.settings.database_url)() as session:
        chosen = session.execute(
            select(Message).where(Message.conversation_id == "wx-" + openid, Message.role == "user")
        ).scalars()
        assert [m.text for m in chosen] == ["商标受理窗口在哪", related[1]]


async def test_a_bad_signature_is_refused(gateway: RunningStack, http) -> None:
    signed = sign(text_xml(new_openid(), "商标受理窗口在哪"), "safe")
    for params in (
        {**signed.params, "signature": "0" * 40},
        {**signed.params, "msg_signature": "1"},
    ):
        async with http.post(gateway.gateway_url + "/wechat", params=params, data=signed.body) as r:
            assert r.status == 403
    async with http.post(gateway.gateway_url + "/wechat", params=signed.params, data=b"<xml>") as r:
        assert r.status == 400


async def test_the_same_msgid_three_times_gets_one_answer(gateway: RunningStack, http) -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        require_service("Redis", exc)
    openid, msg_id = new_openid(), new_msg_id()
    replies = [await ask(http, gateway, openid, "鄞州有品牌指导站吗", msg_id) for _ in range(3)]
    assert "鄞州区" in replies[0] and replies[1:] == ["", ""]
    key = f"ipbot:wechat:msg:{APP_ID}:msg:{msg_id}"
    assert redis.Redis.from_url(REDIS_URL).exists(key) == 1  # Redis stopped the copies
    with session_factory(gateway.settings.database_url)() as session:
        stored = session.execute(
            select(Message.role).where(Message.conversation_id == "wx-" + openid)
        ).scalars()
        roles = list(stored)
    assert roles.count("user") == 1 and roles.count("bot") >= 1


@pytest.fixture()
def located_stations(stack: RunningStack) -> Iterator[list[ServicePoint]]:
    """Two brand stations with coordinates (the seed has none), removed afterwards."""
    common = {
        "service_type": "商标品牌指导站",
        "opening_hours": "工作日 9:00-17:00",
        "source": "测试",
    }
    points = [
        ServicePoint(name="微信测试近处品牌指导站", district="江北区", address="江北区测试路1号",
                     latitude=29.8790, longitude=121.5560, phone="0574-87000001", **common),
        ServicePoint(name="微信测试远处品牌指导站", district="镇海区", address="镇海区测试路2号",
                     latitude=29.9500, longitude=121.7100, phone="0574-87000002", **common),
    ]  # fmt: skip
    database_url = stack.settings.database_url
    with session_factory(database_url)() as session:
        session.add_all(points)
        session.commit()
    yield points
    with session_factory(database_url)() as session:
        names = [p.name for p in points]
        session.execute(delete(ServicePoint).where(ServicePoint.name.in_(names)))
        session.commit()


async def test_a_shared_location_gets_the_nearest_stations(
    gateway: RunningStack, http, located_stations: list[ServicePoint]
) -> None:
    lat, lon = 29.8683, 121.5440
    location = {"MsgType": "location", "Location_X": lat, "Location_Y": lon, "Scale": 15,
                "Label": "宁波市鄞州区天童南路", "MsgId": new_msg_id()}  # fmt: skip
    status, reply = await push(http, gateway, xml_of(location, new_openid()))
    assert status == 200 and reply is not None
    answer = reply["Content"]
    near = round(distance_km(lat, lon, 29.8790, 121.5560), 1)
    far = round(distance_km(lat, lon, 29.9500, 121.7100), 1)
    # The nearest first (another test may have added located stations: the count is not fixed).
    assert re.search(
        f"离您最近的[23]个商标品牌指导站（直线距离）：微信测试近处品牌指导站约{near}公里", answer
    )
    assert (
        f"【微信测试近处品牌指导站】\n距离：约{near}公里\n地址：江北区，江北区测试路1号" in answer
    )
    assert f"【微信测试远处品牌指导站】\n距离：约{far}公里" in answer
    assert answer.index("近处") < answer.index("远处")


async def test_subscribe_gets_the_welcome_and_a_hot_question_by_number(
    gateway: RunningStack, http
) -> None:
    openid = new_openid()
    event = xml_of({"MsgType": "event", "Event": "subscribe", "EventKey": ""}, openid)
    status, reply = await push(http, gateway, event)
    assert status == 200 and reply is not None
    assert reply["Content"].startswith(WELCOME_TEXT)
    assert f"1. {HOT_QUESTIONS[0]}" in reply["Content"]
    answer = await ask(http, gateway, openid, "1")
    assert "【宁波市商标受理窗口】" in answer  # "1" asked the first hot question


async def test_a_late_answer_comes_through_customer_service(
    late_gateway: RunningStack, fake_api: FakeWechat, http
) -> None:
    openid, msg_id = new_openid(), new_msg_id()
    replies = [
        await ask(http, late_gateway, openid, "有哪些知识产权保险", msg_id) for _ in range(3)
    ]
    assert replies == ["", "", ""]  # "success" in time; the copies are not answered again
    first = await asyncio.to_thread(fake_api.wait_for_sends, openid, 1, ANSWER_SECONDS)
    await asyncio.sleep(1)  # the rest of a long answer, and any (wrong) second answer
    sent = fake_api.sent_to(openid)
    answer = "\n\n".join(sent)
    assert sent[0] == first[0] and all(len(m.encode()) <= 2048 for m in sent)
    assert answer.count(SEED["overview-ip-insurance"]["answer"]) == 1  # one answer, one way
    assert answer.endswith("转人工") and "回复数字：" in answer

    # The cached access token expires (e.g. another server took a new one): refreshed, resent.
    requests_before = fake_api.token_requests
    fake_api.expire_tokens()
    assert await ask(http, late_gateway, openid, "专利预审怎么申请") == ""
    after = await asyncio.to_thread(fake_api.wait_for_sends, openid, len(sent) + 1, ANSWER_SECONDS)
    assert "快速通道" in after[len(sent)]
    assert fake_api.token_requests == requests_before + 1
    assert 42001 in [code for code, _ in fake_api.refused]


def is_type(kind: str, **fields: Any):
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


async def test_staff_reply_in_a_handoff_and_the_48_hour_window(
    gateway: RunningStack, fake_api: FakeWechat, http
) -> None:
    openid = new_openid()
    conversation = "wx-" + openid
    username = add_staff_account(gateway.settings.database_url, "王小明")
    async with StaffClient(gateway.gateway_url, username) as staff:
        queued = await ask(http, gateway, openid, "转人工")
        assert "正在为您转接人工客服" in queued and "排队" in queued
        new = await staff.wait_for(
            lambda f: (
                f.get("type") == "new_handoff" and f["handoff"]["conversation_id"] == conversation
            )
        )
        assert new["handoff"]["channel"] == "wechat"
        await staff.send({"type": "accept", "handoff_id": new["handoff"]["handoff_id"]})
        joined = await asyncio.to_thread(fake_api.wait_for_sends, openid, 1, ANSWER_SECONDS)
        assert joined == ["人工客服 王小明 已接入"]

        assert await ask(http, gateway, openid, "我的商标被人抢注了") == ""  # goes to staff
        await staff.wait_for(
            lambda f: (
                f.get("type") == "message" and f["message"].get("text") == "我的商标被人抢注了"
            )
        )
        await staff.send({"type": "reply", "conversation_id": conversation, "id": "r1",
                          "text": "请提供您的商标注册号。"})  # fmt: skip
        await staff.wait_for(is_type("ack", client_id="r1"))
        sent = await asyncio.to_thread(fake_api.wait_for_sends, openid, 2, ANSWER_SECONDS)
        assert sent[1] == "【人工客服 王小明】\n请提供您的商标注册号。"

        fake_api.send_errcode = 45015  # the user has been silent for more than 48 hours
        try:
            await staff.send({"type": "reply", "conversation_id": conversation, "id": "r2",
                              "text": "还在吗？"})  # fmt: skip
            error = await staff.wait_for(is_type("error", code="delivery_failed"))
        finally:
            fake_api.send_errcode = 0
        assert "48小时" in error["text"] and "下次发消息时" in error["text"]
        # Kept, not lost: it comes in the passive reply to the user's next message.
        assert await ask(http, gateway, openid, "在的") == "【人工客服 王小明】\n还在吗？"
        await staff.send({"type": "close", "conversation_id": conversation})
        rating = await asyncio.to_thread(fake_api.wait_for_sends, openid, 4, ANSWER_SECONDS)
        assert "5. 非常满意" in rating[-1]
    assert await ask(http, gateway, openid, "5") == "感谢您的评价！"
