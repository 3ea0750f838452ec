"""/wechat in the real gateway app and pipeline, with a local stand-in for Rasa's REST channel and
the fake WeChat API: what the channel itself decides (modes, dedupe, timing, numbers, events,
handoff over the customer-service API). The real model: tests/e2e/test_wechat_e2e.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text

from bot.app import create_app
from bot.conversation.frames import HOT_QUESTIONS, WELCOME_TEXT
from bot.conversation.handoff import NOBODY_TEXT, HandoffError
from bot.db import handoffs
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.migrate import upgrade
from bot.db.staff import StaffUser
from bot.settings import Settings
from bot.web.keys import PIPELINE
from bot.wechat.quota import MORE_NOTICE, without_notice
from bot.wechat.render import UNSUPPORTED_TEXT
from bot.wechat.routes import WECHAT, WECHAT_CONFIG
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
    signature,
    text_xml,
    xml_of,
)
from tests.support.staff_login import add_account, logged_in

REDIS_URL = "redis://127.0.0.1:6379/15"


class ScriptedRasa:
    """Rasa's REST channel: answers from a script (message → replies), records what it got."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.script: dict[str, list[dict[str, Any]]] = {}
        self.delay = 0.0
        self.port = 0

    def messages(self) -> list[str]:
        return [r["message"] for r in self.received]

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            self.received.append(body)
            await asyncio.sleep(self.delay)
            default = [{"recipient_id": body["sender"], "text": f"答：{body['message']}"}]
            return web.json_response(self.script.get(body["message"], default))

        async def version(_: web.Request) -> web.Response:
            return web.json_response({"version": "3.6.21"})

        async def events(_: web.Request) -> web.Response:  # the handoff's "resume"
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_get("/version", version)
        app.router.add_post("/conversations/{id}/tracker/events", events)
        return app


@pytest.fixture()
async def rasa() -> AsyncIterator[ScriptedRasa]:
    scripted = ScriptedRasa()
    server = TestServer(scripted.app(), host="127.0.0.1")
    await server.start_server()
    scripted.port = server.port
    yield scripted
    await server.close()


@pytest.fixture()
def api() -> Iterator[FakeWechat]:
    fake = FakeWechat(enforce_quotas=True).start()
    yield fake
    fake.stop()


@dataclass
class Wechat:
    """One gateway with WeChat on, as WeChat's servers talk to it."""

    client: TestClient
    database_url: str
    api: FakeWechat
    openid: str = field(default_factory=new_openid)

    @property
    def app(self) -> web.Application:
        return self.client.server.app

    async def push(self, xml: str, mode: str = "safe") -> tuple[int, dict[str, Any] | None]:
        self.api.saw_push(xml)  # WeChat counts what the user did before the account hears of it
        signed = sign(xml, mode)
        response = await self.client.post("/wechat", params=signed.params, data=signed.body)
        body = await response.text()
        if response.status != 200:
            return response.status, {"error": body}
        return 200, open_reply(body, signed.params)

    async def say(self, content: str, msg_id: int | None = None, mode: str = "safe") -> str:
        """The passive reply's text ("" for "success")."""
        status, reply = await self.push(text_xml(self.openid, content, msg_id), mode)
        assert status == 200, reply
        return "" if reply is None else reply["Content"]


GatewayFactory = Callable[..., Awaitable[Wechat]]


@pytest.fixture()
async def make_gateway(
    tmp_path: Path, rasa: ScriptedRasa, api: FakeWechat, aiohttp_client, monkeypatch
) -> GatewayFactory:
    database_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(database_url)
    namespace = f"test-{uuid.uuid4().hex[:12]}"  # this test's Redis keys and channels

    async def make(**env: str) -> Wechat:
        """A gateway configured as a deployment is: from its environment (`env` on top)."""
        variables = {
            "BOT_VAR_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "RASA_PORT": str(rasa.port),
            "ACTION_PORT": "1",
            "RASA_AUTH_TOKEN": "t",
            "SESSION_SECRET": "s",
            "RASA_TIMEOUT": "2",
            "HANDOFF_HOURS": "always",
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APP_ID": APP_ID,
            "WECHAT_APP_SECRET": APP_SECRET,
            "WECHAT_AES_KEY": AES_KEY,
            "WECHAT_API_BASE": api.url,
            "REDIS_URL": "",
            "REDIS_NAMESPACE": namespace,
            **env,
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_env()
        return Wechat(await aiohttp_client(create_app(settings)), settings.database_url, api)

    return make


@pytest.fixture()
async def wechat(make_gateway: GatewayFactory) -> Wechat:
    return await make_gateway()


# ---- the endpoint -----------------------------------------------------------------------------


async def test_server_address_check(wechat: Wechat) -> None:
    params = {"signature": signature(TOKEN, "1700000000", "abc"), "timestamp": "1700000000"}
    params |= {"nonce": "abc", "echostr": "5927361828374"}
    response = await wechat.client.get("/wechat", params=params)
    assert (response.status, await response.text()) == (200, "5927361828374")
    forged = await wechat.client.get("/wechat", params={**params, "signature": "f" * 40})
    assert forged.status == 403


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
async def test_a_question_gets_a_passive_reply_in_every_mode(
    make_gateway: GatewayFactory, rasa: ScriptedRasa, mode: str
) -> None:
    # Plaintext mode only without an EncodingAESKey: with one, plaintext pushes are refused.
    wechat = await make_gateway(**({"WECHAT_AES_KEY": ""} if mode == "plaintext" else {}))
    rasa.script["商标受理窗口在哪"] = [
        {"text": "宁波市商标受理窗口由商标局委托设立。", "buttons": [
            {"title": "品牌指导站", "payload": "/find_brand_station"},
            {"title": "转人工", "payload": "/request_human"}]},
    ]  # fmt: skip
    status, reply = await wechat.push(text_xml(wechat.openid, "商标受理窗口在哪"), mode)
    assert status == 200 and reply is not None
    assert reply["ToUserName"] == wechat.openid and reply["MsgType"] == "text"
    assert reply["Content"] == (
        "宁波市商标受理窗口由商标局委托设立。\n\n回复数字：\n1. 品牌指导站\n2. 转人工"
    )
    assert rasa.received == [{"sender": "wx-" + wechat.openid, "message": "商标受理窗口在哪"}]
    with session_factory(wechat.database_url)() as session:
        stored = session.execute(select(Message).order_by(Message.id)).scalars().all()
    assert [(m.role, m.text) for m in stored] == [
        ("user", "商标受理窗口在哪"),
        ("bot", "宁波市商标受理窗口由商标局委托设立。"),
    ]


async def test_refused_requests_never_reach_the_bot(wechat: Wechat, rasa: ScriptedRasa) -> None:
    signed = sign(text_xml(wechat.openid, "你好"), "safe")
    cases = [
        ({**signed.params, "signature": "0" * 40}, signed.body, 403),
        ({**signed.params, "msg_signature": "0" * 40}, signed.body, 403),
        ({}, signed.body, 403),
        (signed.params, b"<xml><Encrypt>", 400),
    ]
    plain = sign("", "plaintext")  # plaintext with an AES key configured: refused first
    cases += [(plain.params, body, 403) for body in (b"<xml><MsgType>", b"", b"<a/>", b"\xff")]
    for params, body, status in cases:
        response = await wechat.client.post("/wechat", params=params, data=body)
        assert response.status == status, (params, body, await response.text())
    assert rasa.received == []


async def test_a_replayed_push_is_refused(wechat: Wechat, rasa: ScriptedRasa) -> None:
    """The same signed request again (same nonce), even with another MsgId inside: 403."""
    first = sign(text_xml(wechat.openid, "专利能贷款吗"), "safe")
    response = await wechat.client.post("/wechat", params=first.params, data=first.body)
    assert response.status == 200
    again = await wechat.client.post("/wechat", params=first.params, data=first.body)
    assert again.status == 403, "a replayed nonce was accepted"
    assert "nonce" in await again.text()
    assert rasa.messages() == ["专利能贷款吗"]


async def test_a_replayed_nonce_is_refused_by_every_gateway_sharing_redis(
    make_gateway: GatewayFactory, rasa: ScriptedRasa
) -> None:
    client = redis_or_skip()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    try:
        first = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
        second = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
        signed = sign(text_xml(first.openid, "地理标志有多少"), "safe")
        response = await first.client.post("/wechat", params=signed.params, data=signed.body)
        assert response.status == 200
        key = f"{namespace}:wechat:nonce:{APP_ID}:{signed.params['nonce']}"
        assert 0 < client.ttl(key) <= 900
        again = await second.client.post("/wechat", params=signed.params, data=signed.body)
        assert again.status == 403, "a nonce seen by another gateway was accepted"
        assert rasa.messages() == ["地理标志有多少"]
    finally:
        forget_namespace(client, namespace)
        client.close()


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_a_stale_or_future_timestamp_is_refused(
    make_gateway: GatewayFactory, rasa: ScriptedRasa, mode: str
) -> None:
    wechat = await make_gateway(**({"WECHAT_AES_KEY": ""} if mode == "plaintext" else {}))
    now = int(time.time())
    for timestamp in ("1500000000", str(now - 301), str(now + 301), "soon"):  # 1500000000: 2017
        signed = sign(text_xml(wechat.openid, "你好"), mode, timestamp=timestamp)
        response = await wechat.client.post("/wechat", params=signed.params, data=signed.body)
        assert response.status == 403, f"timestamp {timestamp} accepted ({mode})"
    assert rasa.received == []
    assert await wechat.say("你好", mode=mode) == "答：你好"  # a fresh one still passes


async def test_plaintext_is_refused_when_an_aes_key_is_configured(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    plain = sign(text_xml(wechat.openid, "你好"), "plaintext")
    response = await wechat.client.post("/wechat", params=plain.params, data=plain.body)
    assert response.status == 403, "a plaintext push was accepted with WECHAT_AES_KEY set"
    # encrypt_type=aes without msg_signature, over a plaintext body: refused too.
    no_msg_signature = {**plain.params, "encrypt_type": "aes"}
    response = await wechat.client.post("/wechat", params=no_msg_signature, data=plain.body)
    assert response.status == 403
    assert rasa.received == []


async def test_a_resent_message_is_answered_once(wechat: Wechat, rasa: ScriptedRasa) -> None:
    msg_id = new_msg_id()
    replies = [await wechat.say("专利能贷款吗", msg_id, mode="safe") for _ in range(3)]
    assert replies == ["答：专利能贷款吗", "", ""]
    assert rasa.messages() == ["专利能贷款吗"]


async def test_the_database_stops_a_copy_another_gateway_received(
    make_gateway: GatewayFactory, rasa: ScriptedRasa
) -> None:
    first, second = await make_gateway(), await make_gateway()  # two processes, no Redis
    second.openid = first.openid
    msg_id = new_msg_id()
    assert await first.say("有哪些知识产权保险", msg_id) == "答：有哪些知识产权保险"
    assert await second.say("有哪些知识产权保险", msg_id) == ""
    assert rasa.messages() == ["有哪些知识产权保险"]


def redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        require_service("Redis", exc)
    return client


def forget_namespace(client: redis.Redis, namespace: str) -> None:
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)


async def test_redis_dedupes_across_gateways(
    make_gateway: GatewayFactory, rasa: ScriptedRasa
) -> None:
    client = redis_or_skip()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    first = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    second = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    second.openid = first.openid
    msg_id = new_msg_id()
    key = f"{namespace}:wechat:msg:{APP_ID}:msg:{msg_id}"
    try:
        assert await first.say("地理标志有多少", msg_id) == "答：地理标志有多少"
        assert 0 < client.ttl(key) <= 600
        assert await second.say("地理标志有多少", msg_id) == ""
        # Redis decides before the database is asked: a MsgId already taken there is not stored.
        taken = new_msg_id()
        client.set(f"{namespace}:wechat:msg:{APP_ID}:msg:{taken}", "1", ex=60)
        assert await second.say("这条已被另一台服务器处理", taken) == ""
        assert rasa.messages() == ["地理标志有多少"]
        with session_factory(first.database_url)() as session:
            texts = session.execute(select(Message.text).where(Message.role == "user")).scalars()
            assert list(texts) == ["地理标志有多少"]
    finally:
        forget_namespace(client, namespace)
        client.close()


async def test_deployments_sharing_redis_each_answer_the_same_msg_id(
    make_gateway: GatewayFactory, rasa: ScriptedRasa, tmp_path: Path
) -> None:
    """Two deployments (each its own REDIS_NAMESPACE and database) on one Redis, one AppID: a
    MsgId one of them has seen is news to the other."""
    client = redis_or_skip()
    spaces = [f"test-a-{uuid.uuid4().hex[:8]}", f"test-b-{uuid.uuid4().hex[:8]}"]
    other_database = f"sqlite:///{tmp_path / 'other.sqlite'}"
    upgrade(other_database)
    try:
        first = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=spaces[0])
        second = await make_gateway(
            REDIS_URL=REDIS_URL, REDIS_NAMESPACE=spaces[1], DATABASE_URL=other_database
        )
        second.openid = first.openid
        msg_id = new_msg_id()
        assert await first.say("地理标志有多少", msg_id) == "答：地理标志有多少"
        assert await second.say("地理标志有多少", msg_id) == "答：地理标志有多少"
        assert rasa.messages() == ["地理标志有多少", "地理标志有多少"]
        for namespace in spaces:
            assert 0 < client.ttl(f"{namespace}:wechat:msg:{APP_ID}:msg:{msg_id}") <= 600
    finally:
        for namespace in spaces:
            forget_namespace(client, namespace)
        client.close()


async def test_deployments_sharing_redis_keep_their_own_access_token(
    make_gateway: GatewayFactory, api: FakeWechat
) -> None:
    """The same AppID in two deployments on one Redis: each fetches and keeps its own token."""
    client = redis_or_skip()
    spaces = [f"test-a-{uuid.uuid4().hex[:8]}", f"test-b-{uuid.uuid4().hex[:8]}"]
    try:
        first = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=spaces[0])
        second = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=spaces[1])
        tokens = [await g.app[WECHAT].channel.api.access_token() for g in (first, second)]
        assert api.token_requests == 2 and tokens[0] != tokens[1]
        for namespace, token in zip(spaces, tokens, strict=True):
            assert client.get(f"{namespace}:wechat-token:{APP_ID}") == token.encode()
    finally:
        for namespace in spaces:
            forget_namespace(client, namespace)
        client.close()


async def test_a_late_answer_comes_through_customer_service_only(
    make_gateway: GatewayFactory, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    wechat = await make_gateway(WECHAT_REPLY_TIMEOUT="0.2")
    rasa.delay = 0.6
    rasa.script["质押融资怎么办"] = [
        {"text": "可以质押融资。"},
        {"text": "需要人工吗？", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
    ]
    started = asyncio.get_running_loop().time()
    assert await wechat.say("质押融资怎么办") == ""  # "success", in time for WeChat
    assert asyncio.get_running_loop().time() - started < 0.5
    sent = await asyncio.to_thread(api.wait_for_sends, wechat.openid, 1)
    assert sent == ["可以质押融资。\n\n需要人工吗？\n\n回复数字：\n1. 转人工"]
    await asyncio.sleep(0.2)
    assert len(api.sent_to(wechat.openid)) == 1  # exactly one way, once


async def test_a_long_answer_continues_through_customer_service(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    long_text = "\n".join(f"第{i}条：" + "知识产权" * 40 for i in range(12))  # ~6 KB: 3 messages
    rasa.script["详细说说"] = [{"text": long_text}]
    passive = await wechat.say("详细说说")
    assert 0 < len(passive.encode()) <= 2048 and passive.startswith("第0条")
    rest = await asyncio.to_thread(api.wait_for_sends, wechat.openid, 2)
    assert "\n".join([passive, *rest]) == long_text
    assert all(len(m.encode()) <= 2048 for m in rest)


async def test_numbers_answer_the_options_last_shown(wechat: Wechat, rasa: ScriptedRasa) -> None:
    rasa.script["品牌指导站在哪"] = [
        {"text": "请问您在哪个区县？", "buttons": [
            {"title": "海曙区", "payload": '/inform{"district": "海曙区"}'},
            {"title": "江北区", "payload": '/inform{"district": "江北区"}'}]},
        {"text": "也可以：", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
    ]  # fmt: skip
    shown = await wechat.say("品牌指导站在哪")
    assert "1. 海曙区\n2. 江北区" in shown and "3. 转人工" in shown
    assert await wechat.say("２") == '答：/inform{"district": "江北区"}'
    assert rasa.received[-1]["message"] == '/inform{"district": "江北区"}'
    with session_factory(wechat.database_url)() as session:
        chosen = session.execute(select(Message).where(Message.payload.is_not(None))).scalar_one()
    assert (chosen.text, chosen.payload) == ("江北区", '/inform{"district": "江北区"}')
    # That answer had no options: a number is now just text for the bot.
    assert await wechat.say("2") == "答：2"
    rasa.script["品牌指导站"] = rasa.script["品牌指导站在哪"]
    await wechat.say("品牌指导站")
    assert await wechat.say("7") == "请回复 1 到 3 之间的数字，或直接输入您的问题。"
    assert rasa.messages()[-1] == "品牌指导站"


async def test_subscribe_welcomes_with_hot_questions_to_choose_by_number(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    subscribe = xml_of({"MsgType": "event", "Event": "subscribe", "EventKey": ""}, wechat.openid)
    status, reply = await wechat.push(subscribe, "safe")
    assert status == 200 and reply is not None
    assert reply["Content"].startswith(WELCOME_TEXT)
    assert f"1. {HOT_QUESTIONS[0]}" in reply["Content"]
    assert await wechat.say("1") == f"答：{HOT_QUESTIONS[0]}"
    assert rasa.messages() == [HOT_QUESTIONS[0]]  # sent as typed text
    status, again = await wechat.push(subscribe, "safe")  # WeChat resending the same event
    assert (status, again) == (200, None)


async def test_a_shared_location_asks_for_the_nearest_stations(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    location = {"MsgType": "location", "Location_X": 29.8683, "Location_Y": 121.5440,
                "Scale": 15, "Label": "宁波市鄞州区天童南路", "MsgId": new_msg_id()}  # fmt: skip
    assert await wechat.say("ignored") == "答：ignored"
    status, reply = await wechat.push(xml_of(location, wechat.openid))
    assert status == 200 and reply["Content"] == "答：/find_brand_station"
    assert rasa.received[-1]["metadata"] == {"latitude": 29.8683, "longitude": 121.544}
    # The LOCATION event (location reporting on) is answered once in a while, not every time.
    for created in (1_700_000_000, 1_700_000_100):
        event = {"MsgType": "event", "Event": "LOCATION", "Latitude": 29.9, "Longitude": 121.6,
                 "Precision": 30.0}  # fmt: skip
        await wechat.push(xml_of(event, wechat.openid, created=created))
    assert rasa.messages().count("/find_brand_station") == 2
    assert rasa.received[-1]["metadata"] == {"latitude": 29.9, "longitude": 121.6}


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "image", "PicUrl": "http://x/y.jpg", "MediaId": "m1"},
        {"MsgType": "voice", "MediaId": "m2", "Format": "amr"},
        {"MsgType": "video", "MediaId": "m3", "ThumbMediaId": "t3"},
        {"MsgType": "link", "Title": "t", "Description": "d", "Url": "http://x"},
        {"MsgType": "file", "Title": "a.pdf"},
    ],
)
async def test_other_message_types_get_a_polite_explanation(
    wechat: Wechat, rasa: ScriptedRasa, fields: dict[str, Any]
) -> None:
    status, reply = await wechat.push(xml_of({**fields, "MsgId": new_msg_id()}, wechat.openid))
    assert status == 200 and reply["Content"] == UNSUPPORTED_TEXT
    assert rasa.received == []


async def test_changbeiban_points_to_wechats_care_mode_without_the_bot(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    assert "关怀模式" in await wechat.say("长辈版")
    assert "关怀模式" in await wechat.say("大字")
    assert rasa.messages() == []


async def test_recognised_speech_is_a_question(wechat: Wechat, rasa: ScriptedRasa) -> None:
    voice = {"MsgType": "voice", "MediaId": "m", "Format": "amr", "Recognition": "专利预审怎么申请",
             "MsgId": new_msg_id()}  # fmt: skip
    _status, reply = await wechat.push(xml_of(voice, wechat.openid))
    assert reply["Content"] == "答：专利预审怎么申请"


async def test_unsubscribe_and_empty_text_need_no_answer(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    unsubscribe = xml_of({"MsgType": "event", "Event": "unsubscribe"}, wechat.openid)
    assert await wechat.push(unsubscribe) == (200, None)
    assert await wechat.say("   ") == ""
    assert await wechat.say("长" * 501) == "消息太长了（501字），请控制在500字以内。"
    assert rasa.received == []


async def test_rasa_down_apologises_and_offers_a_person(
    make_gateway: GatewayFactory, rasa: ScriptedRasa
) -> None:
    wechat = await make_gateway()
    rasa.script["你好"] = "not a list"  # type: ignore[assignment] - Rasa answering nonsense
    reply = await wechat.say("你好")
    assert reply == "系统繁忙，请稍后再试，或转人工咨询。\n\n如需人工服务，请回复“转人工”。"


async def test_a_message_the_database_cannot_store_is_to_be_resent(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    with session_factory(wechat.database_url)() as session:
        session.execute(text("DROP TABLE messages"))
        session.commit()
    msg_id = new_msg_id()
    expected = "抱歉，系统繁忙，您的消息没有收到，请稍后重新发送。"
    assert await wechat.say("你好", msg_id) == expected
    assert await wechat.say("你好", msg_id) == expected  # the resent copy is not taken as done
    assert rasa.received == []


# ---- handoff over the customer-service API ----------------------------------------------------


@dataclass(frozen=True)
class Agent:
    id: int
    display_name: str
    role: str = "agent"

    @property
    def is_admin(self) -> bool:
        return False


def add_agent(database_url: str, name: str) -> Agent:
    with session_factory(database_url)() as session:
        user = StaffUser(
            username=f"agent-{uuid.uuid4().hex[:8]}",
            display_name=name,
            password_hash="x",
            role="agent",
            active=True,
            failed_logins=0,
        )
        session.add(user)
        session.commit()
        return Agent(user.id, name)


HANDOFF_REPLY = [{"custom": {"handoff": {"reason": "user", "intents": []}}}]


async def test_nobody_online_offers_a_ticket_left_by_text(
    wechat: Wechat, rasa: ScriptedRasa
) -> None:
    rasa.script["/request_human"] = HANDOFF_REPLY
    reply = await wechat.say("转人工")
    assert rasa.messages() == ["/request_human"]
    assert reply.startswith(NOBODY_TEXT) and "留言 13800000000" in reply
    bad = await wechat.say("留言 1380000 请回电")
    assert bad.startswith("留言没有提交：手机号应为11位")
    saved = await wechat.say("留言 13800000000 想咨询商标续展")
    assert saved.startswith("留言已收到（编号 ")
    with session_factory(wechat.database_url)() as session:
        ticket = session.execute(select(handoffs.Ticket)).scalar_one()
    assert (ticket.conversation_id, ticket.phone, ticket.message) == (
        "wx-" + wechat.openid,
        "13800000000",
        "想咨询商标续展",
    )
    assert rasa.messages() == ["/request_human"]  # none of it went to the bot


async def test_staff_replies_reach_the_user_and_failures_reach_staff(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    conversation = "wx-" + wechat.openid
    assert await wechat.say("你好") == "答：你好"
    agent = add_agent(wechat.database_url, "王小明")
    with session_factory(wechat.database_url)() as session:
        handoff = handoffs.create_handoff(session, conversation, "user", [], handoffs.WAITING)
    desk = wechat.app[PIPELINE].desk
    await desk.accept(handoff.id, agent)
    assert await asyncio.to_thread(api.wait_for_sends, wechat.openid, 1) == [
        "人工客服 王小明 已接入"
    ]
    assert await wechat.say("我的商标被抢注了怎么办") == ""  # to staff, not the bot
    assert "我的商标被抢注了怎么办" not in " ".join(rasa.messages())
    await desk.staff_reply(conversation, agent, "c1", "您好，请提供商标注册号。")
    assert api.sent_to(wechat.openid)[-1] == "【人工客服 王小明】\n您好，请提供商标注册号。"
    api.expire_tokens()  # the cached token dies: fetched again, the reply still goes out
    await desk.staff_reply(conversation, agent, "c2", "收到。")
    assert api.sent_to(wechat.openid)[-1] == "【人工客服 王小明】\n收到。"
    assert api.token_requests == 2
    api.send_errcode = 45015  # the user has been silent for more than 48 hours
    with pytest.raises(HandoffError) as failed:
        await desk.staff_reply(conversation, agent, "c3", "还在吗？")
    assert failed.value.code == "delivery_failed"
    assert "48小时" in failed.value.text and "下次发消息时" in failed.value.text
    api.send_errcode = 0
    # Nothing more goes out until the user writes; then the kept reply is the passive reply.
    with pytest.raises(HandoffError, match="再次发消息"):
        await desk.staff_reply(conversation, agent, "c4", "请回复我")
    assert await wechat.say("在的") == "【人工客服 王小明】\n还在吗？"
    await desk.close(conversation, agent)
    closing = await asyncio.to_thread(api.wait_for_sends, wechat.openid, 5)
    assert closing[-2:][0].startswith("本次人工服务已结束") and "5. 非常满意" in closing[-1]
    assert await wechat.say("4") == "感谢您的评价！"
    with session_factory(wechat.database_url)() as session:
        assert session.get(handoffs.Handoff, handoff.id).rating == 4


def test_settings_without_a_token_serve_no_wechat_route(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    app = create_app(settings)
    assert WECHAT_CONFIG not in app and WECHAT not in app
    assert not any(r.resource.canonical == "/wechat" for r in app.router.routes() if r.resource)


# ---- WeChat's customer-service allowance ------------------------------------------------------


def whole(texts: list[str]) -> str:
    """Messages as the user reads them one after another, without the "more" notices."""
    return "\n".join(without_notice(t) for t in texts)


async def test_a_long_answer_arrives_whole_within_the_allowance(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    long_text = "\n".join(f"第{i}条：" + "知识产权" * 40 for i in range(40))  # ~20 KB: 10 messages
    rasa.script["全部说明"] = [{"text": long_text}]
    passive = await wechat.say("全部说明")
    sent = await asyncio.to_thread(api.wait_for_sends, wechat.openid, 5)
    await asyncio.sleep(0.3)
    sent = api.sent_to(wechat.openid)
    assert len(sent) == 5 and api.refused == []  # the whole allowance, nothing WeChat refused
    assert sent[-1].endswith(MORE_NOTICE) and all(len(m.encode()) <= 2048 for m in sent)
    assert api.allowance(wechat.openid) == 0
    # "回复任意内容查看后续": the next message brings the rest, first in the passive reply.
    rasa.script["好"] = [{"text": "还有什么可以帮您？"}]
    following = await wechat.say("好")
    assert following and not following.startswith("还有什么")
    await asyncio.sleep(0.3)
    rest = api.sent_to(wechat.openid)[5:]
    read = whole([passive, *sent, following, *rest])
    assert read.replace("\n\n", "\n").startswith(long_text)
    assert read.endswith("还有什么可以帮您？") and api.refused == []


async def test_a_staff_burst_past_the_allowance_is_refused_and_nothing_is_lost(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    conversation = "wx-" + wechat.openid
    assert await wechat.say("你好") == "答：你好"
    agent = add_agent(wechat.database_url, "王小明")
    with session_factory(wechat.database_url)() as session:
        handoff = handoffs.create_handoff(session, conversation, "user", [], handoffs.WAITING)
    pipeline = wechat.app[PIPELINE]
    desk = pipeline.desk
    await desk.accept(handoff.id, agent)  # "已接入": 1 of 5
    limit = await pipeline.delivery_limit(conversation)
    assert limit is not None and limit.remaining == 4 and limit.refusal == ""
    assert limit.closes_at is not None and 47 * 3600 < limit.closes_at - time.time() <= 48 * 3600
    for n in range(4):
        await desk.staff_reply(conversation, agent, f"r{n}", f"第{n}条回复")
    with pytest.raises(HandoffError) as refused:
        await desk.staff_reply(conversation, agent, "r4", "第4条回复")
    assert refused.value.code == "quota" and "5条" in refused.value.text
    assert "再次发消息" in refused.value.text
    assert (await pipeline.delivery_limit(conversation)).remaining == 0
    assert len(api.sent_to(wechat.openid)) == 5 and api.refused == []
    with session_factory(wechat.database_url)() as session:  # refused before it was stored
        stored = session.execute(select(Message.text).where(Message.role == "staff")).scalars()
        assert list(stored) == [f"第{n}条回复" for n in range(4)]
    # The user writes again: five more.
    assert await wechat.say("收到") == ""
    assert (await pipeline.delivery_limit(conversation)).remaining == 5
    await desk.staff_reply(conversation, agent, "r5", "好的")
    assert api.sent_to(wechat.openid)[-1] == "【人工客服 王小明】\n好的"


async def test_wechat_refusing_a_send_keeps_the_rest_for_the_next_message(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    """WeChat counts stricter than the gateway (here 2): 45047, and the text waits."""
    api.message_quota = (2, 48 * 3600)
    long_text = "\n".join(f"第{i}段：" + "商标注册" * 40 for i in range(16))  # 4 messages
    rasa.script["详细"] = [{"text": long_text}]
    passive = await wechat.say("详细")
    await asyncio.to_thread(api.wait_for_refusals, 1)
    await asyncio.sleep(0.3)
    sent = api.sent_to(wechat.openid)
    assert len(sent) == 2 and api.refused[0][0] == 45047
    following = await wechat.say("继续")
    await asyncio.sleep(0.3)
    rest = api.sent_to(wechat.openid)[2:]
    assert whole([passive, *sent, following, *rest]).replace("\n\n", "\n").startswith(long_text)


async def test_a_follow_allows_three_messages_and_a_message_five(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    conversation = "wx-" + wechat.openid
    channel = wechat.app[WECHAT].channel  # a follow stores nothing: asked of the channel itself
    status, _ = await wechat.push(xml_of({"MsgType": "event", "Event": "subscribe"}, wechat.openid))
    assert status == 200
    limit = await channel.delivery_limit(conversation)
    assert limit.remaining == 3 and 0 < limit.closes_at - time.time() <= 60
    assert await wechat.say("你好") == "答：你好"
    limit = await channel.delivery_limit(conversation)
    assert limit.remaining == 5 and limit.closes_at - time.time() > 47 * 3600


async def test_gateways_sharing_redis_share_the_allowance(
    make_gateway: GatewayFactory, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    client = redis_or_skip()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    first = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    second = await make_gateway(REDIS_URL=REDIS_URL, REDIS_NAMESPACE=namespace)
    second.openid = first.openid
    conversation = "wx-" + first.openid
    try:
        assert await first.say("你好") == "答：你好"  # heard by the first gateway
        limit = await second.app[PIPELINE].delivery_limit(conversation)  # counted by the second
        assert limit is not None and limit.remaining == 5
        for n in range(5):
            await second.app[WECHAT].channel.send(conversation, [f"通知{n}"])
        await first.app[WECHAT].channel.send(conversation, ["第六条"])  # kept, not refused
        assert api.refused == [] and len(api.sent_to(first.openid)) == 5
        assert (await first.app[PIPELINE].delivery_limit(conversation)).waiting == 1
        assert await second.say("在吗") == "第六条\n\n答：在吗"
    finally:
        forget_namespace(client, namespace)
        client.close()


async def test_the_console_shows_the_allowance_and_refuses_past_it(
    wechat: Wechat, rasa: ScriptedRasa, api: FakeWechat
) -> None:
    """Staff in the live console (/staff/ws): the count with the conversation, the refusal with
    the reason, the count again once the citizen writes."""
    conversation = "wx-" + wechat.openid
    assert await wechat.say("你好") == "答：你好"
    username = f"agent{uuid.uuid4().hex[:6]}"
    add_account(wechat.database_url, username, name="王小明")
    with session_factory(wechat.database_url)() as session:
        handoff = handoffs.create_handoff(session, conversation, "user", [], handoffs.WAITING)
    await logged_in(wechat.client, username)
    origin = str(wechat.client.make_url("/")).rstrip("/")
    async with wechat.client.ws_connect("/staff/ws", origin=origin) as ws:

        async def next_of(kind: str) -> dict[str, Any]:
            while True:
                frame = await ws.receive_json(timeout=5)
                if frame["type"] == kind and frame.get("conversation_id") in (None, conversation):
                    return frame

        await next_of("hello")
        await ws.send_json({"type": "accept", "handoff_id": handoff.id})
        limit = (await next_of("delivery"))["limit"]  # with the conversation it opened
        assert limit["remaining"] == 4 and limit["refusal"] == ""  # "已接入" used one
        assert 47 * 3600 < limit["closes_at"] - time.time() <= 48 * 3600
        for n in range(4):
            text = f"第{n}条"
            await ws.send_json({"type": "reply", "id": f"c{n}", "conversation_id": conversation,
                                "text": text})  # fmt: skip
            await next_of("ack")
            assert (await next_of("delivery"))["limit"]["remaining"] == 3 - n
        await ws.send_json({"type": "reply", "id": "c4", "conversation_id": conversation,
                            "text": "第4条"})  # fmt: skip
        refused = await next_of("error")
        assert refused["code"] == "quota" and "5条" in refused["text"]
        assert refused["client_id"] == "c4"  # which reply was refused
        assert await wechat.say("好的") == ""  # to staff; the allowance is back
        await ws.send_json({"type": "delivery", "conversation_id": conversation})
        assert (await next_of("delivery"))["limit"]["remaining"] == 5
    assert len(api.sent_to(wechat.openid)) == 5 and api.refused == []
