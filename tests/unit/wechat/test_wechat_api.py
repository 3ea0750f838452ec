"""The access-token cache and customer-service sends, against the local fake of WeChat's API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.conversation.channel import DeliveryFailed
from bot.settings import WechatConfig
from bot.wechat.api import SharedToken, WechatApi, WechatApiError
from bot.wechat.channel import WechatChannel
from tests.conftest import require_service
from tests.support.fake_wechat import APP_ID, APP_SECRET, FakeWechat, new_openid


@pytest.fixture()
def fake() -> Iterator[FakeWechat]:
    server = FakeWechat().start()
    yield server
    server.stop()


@pytest.fixture()
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def config_for(fake: FakeWechat, **changes: str) -> WechatConfig:
    options = {"token": "t", "app_id": APP_ID, "app_secret": APP_SECRET, "api_base": fake.url}
    return WechatConfig(**{**options, **changes})


async def test_token_is_fetched_once_and_reused(fake: FakeWechat, http) -> None:
    api = WechatApi(http, config_for(fake))
    openid = new_openid()
    await asyncio.gather(*(api.send_text(openid, f"第{i}条") for i in range(5)))
    assert fake.token_requests == 1  # five concurrent sends, one fetch
    assert sorted(fake.sent_to(openid)) == sorted(f"第{i}条" for i in range(5))
    assert {s.token for s in fake.sends} == {"token-1"}


async def test_token_is_refreshed_before_it_expires(fake: FakeWechat, http) -> None:
    fake.expires_in = 2  # refreshed halfway through a short life (5 minutes early for 2 hours)
    api = WechatApi(http, config_for(fake))
    openid = new_openid()
    await api.send_text(openid, "一")
    await asyncio.sleep(1.1)
    await api.send_text(openid, "二")
    assert fake.token_requests == 2
    assert [s.token for s in fake.sends] == ["token-1", "token-2"]
    assert fake.refused == []  # never sent with a stale token


async def test_expired_token_is_replaced_and_the_send_retried_once(fake: FakeWechat, http) -> None:
    api = WechatApi(http, config_for(fake))
    openid = new_openid()
    await api.send_text(openid, "第一条")
    fake.expire_tokens()  # e.g. another server fetched a new token
    await api.send_text(openid, "第二条")
    assert fake.refused == [(42001, "token-1")]
    assert fake.sent_to(openid) == ["第一条", "第二条"]
    assert [s.token for s in fake.sends] == ["token-1", "token-2"]


async def test_48_hour_window_error_reaches_the_caller_in_chinese(fake: FakeWechat, http) -> None:
    fake.send_errcode = 45015
    api = WechatApi(http, config_for(fake))
    with pytest.raises(WechatApiError) as failed:
        await api.send_text(new_openid(), "您好")
    assert failed.value.errcode == 45015
    assert "48小时" in failed.value.text
    assert isinstance(failed.value, DeliveryFailed)
    assert fake.token_requests == 1  # not mistaken for a token problem


async def test_unknown_errors_name_the_code(fake: FakeWechat, http) -> None:
    fake.send_errcode = 45009
    with pytest.raises(DeliveryFailed, match="45009"):
        await WechatApi(http, config_for(fake)).send_text(new_openid(), "您好")


async def test_wrong_app_secret_is_explained(fake: FakeWechat, http) -> None:
    api = WechatApi(http, config_for(fake, app_secret="wrong"))
    with pytest.raises(DeliveryFailed, match="WECHAT_APP_SECRET"):
        await api.send_text(new_openid(), "您好")
    assert fake.sends == []


async def test_unreachable_api_and_missing_credentials(http) -> None:
    down = WechatConfig(token="t", app_id=APP_ID, app_secret="s", api_base="http://127.0.0.1:1")
    with pytest.raises(DeliveryFailed, match="无法连接微信服务器"):
        await WechatApi(http, down).send_text(new_openid(), "您好")
    with pytest.raises(DeliveryFailed, match="AppID"):
        await WechatApi(http, WechatConfig(token="t")).send_text(new_openid(), "您好")


async def test_channel_sends_in_order_and_splits_long_text(fake: FakeWechat, http) -> None:
    channel = WechatChannel(WechatApi(http, config_for(fake)))
    openid = new_openid()
    conversation = "wx-" + openid
    long_text = "长" * 1000  # 3000 bytes: two messages
    await asyncio.gather(
        channel.deliver(conversation, {"type": "staff", "text": "第一条", "agent": "王小明"}),
        channel.deliver(conversation, {"type": "typing", "on": True, "who": "staff"}),
        channel.deliver(conversation, {"type": "system", "text": long_text}),
        channel.deliver(conversation, {"type": "staff", "text": "第三条", "agent": "王小明"}),
    )
    sent = fake.sent_to(openid)
    assert sent[0] == "【人工客服 王小明】\n第一条"
    assert "".join(sent[1:3]) == long_text and all(len(s.encode()) <= 2048 for s in sent)
    assert sent[3:] == ["【人工客服 王小明】\n第三条"]


async def test_channel_holds_an_answer_until_it_is_complete(fake: FakeWechat, http) -> None:
    channel = WechatChannel(WechatApi(http, config_for(fake)))
    openid = new_openid()
    conversation = "wx-" + openid
    districts = [{"title": "海曙区", "payload": "/a"}, {"title": "江北区", "payload": "/b"}]
    human = [{"title": "转人工", "payload": "/request_human"}]
    channel.hold(7)
    await channel.deliver(conversation, {"type": "bot", "text": "请选择", "buttons": districts,
                                         "reply_to": 7})  # fmt: skip
    await channel.deliver(conversation, {"type": "typing", "on": False, "reply_to": 7})
    await channel.deliver(conversation, {"type": "bot", "text": "或者", "buttons": human,
                                         "reply_to": 7})  # fmt: skip
    assert fake.sends == []  # may still go in the passive reply
    # A staff message meanwhile is not part of that answer: it goes out at once.
    await channel.deliver(conversation, {"type": "system", "text": "通知"})
    channel.send_held(conversation, 7)  # late and complete: one message, options numbered on
    await channel.close()
    assert fake.sent_to(openid) == [
        "通知",
        "请选择\n\n回复数字：\n1. 海曙区\n2. 江北区\n\n或者\n\n回复数字：\n3. 转人工",
    ]
    channel.hold(8)
    await channel.deliver(conversation, {"type": "bot", "text": "准时", "reply_to": 8})
    channel.drop_held(8)  # answered in the passive reply: never sent again
    channel.send_held(conversation, 8)
    await channel.close()
    assert len(fake.sent_to(openid)) == 2


async def test_staff_message_to_a_silent_user_fails_with_the_reason(fake: FakeWechat, http) -> None:
    channel = WechatChannel(WechatApi(http, config_for(fake)))
    fake.send_errcode = 45015
    with pytest.raises(DeliveryFailed) as failed:
        await channel.deliver(
            "wx-" + new_openid(), {"type": "staff", "text": "您好", "agent": "王"}
        )
    assert "48小时" in failed.value.text
    with pytest.raises(DeliveryFailed, match="不是微信"):
        await channel.deliver("0123abcd", {"type": "staff", "text": "您好"})


async def test_gateways_share_one_token_through_redis(fake: FakeWechat, http) -> None:
    """Every fetch invalidates the previous token, so two gateways must not each fetch one."""
    client = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        await client.ping()
    except RedisError as exc:
        require_service("Redis", exc)
    key = f"test:wechat-token:{uuid.uuid4().hex[:8]}"
    try:
        first = WechatApi(http, config_for(fake), SharedToken(client, key))
        second = WechatApi(http, config_for(fake), SharedToken(client, key))
        openid = new_openid()
        await asyncio.gather(first.send_text(openid, "甲"), second.send_text(openid, "乙"))
        assert fake.token_requests == 1
        fake.expire_tokens()  # WeChat says the token expired: one gateway fetches, both use it
        await first.send_text(openid, "丙")
        await second.send_text(openid, "丁")
        assert fake.token_requests == 2
        assert sorted(fake.sent_to(openid)) == sorted(["甲", "乙", "丙", "丁"])
    finally:
        await client.delete(key)
        await client.close()
