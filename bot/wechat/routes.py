"""GET /wechat (server-address check) and POST /wechat (every message and event WeChat pushes).

A message is checked (403 on a bad signature, a timestamp more than 300 s off, a nonce seen
before or plaintext while WECHAT_AES_KEY is set; 400 on a malformed body), answered once per MsgId,
and sent through the conversation pipeline like a web chat message. Its answer goes back in the
HTTP response when ready within the reply timeout (WeChat waits 5 s), else "success" now and the
answer through the customer-service API (see channel.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiohttp import web
from wechatpy import events
from wechatpy.messages import BaseMessage

from bot.conversation.channel import StoreFailed
from bot.conversation.frames import MAX_MESSAGE_CHARS
from bot.conversation.handoff import TICKET_TEXT
from bot.conversation.pipeline import Pipeline
from bot.db import conversations, handoffs, ratings
from bot.settings import WechatConfig
from bot.web.keys import HTTP_CLIENT, PIPELINE, SETTINGS
from bot.wechat.api import SharedToken, WechatApi
from bot.wechat.channel import CHANNEL_NAME, WechatChannel, conversation_id_for
from bot.wechat.crypto import (
    MAX_CLOCK_SKEW_SECONDS,
    RequestRefused,
    open_request,
    seal_reply,
    verify_server,
)
from bot.wechat.dedupe import Deduper, MemoryDeduper, RedisDeduper
from bot.wechat.inbound import (
    ELDER_MODE_TEXT,
    ELDER_WORDS,
    Ask,
    Intent,
    Say,
    Typed,
    allowance_opened,
    dedupe_key,
    human_payload,
    interpret,
    ticket_request,
)
from bot.wechat.quota import MemoryQuota, QuotaStore, RedisQuota
from bot.wechat.render import (
    options_last_shown,
    parse_choice,
    render_frames,
    split_messages,
    text_reply_xml,
)

logger = logging.getLogger(__name__)
# WeChat resends within ~15 s; a MsgId is remembered well beyond that.
DEDUPE_SECONDS = 600
# A LOCATION event comes each time the user opens the chat (when location reporting is on):
# answer it at most this often per user.
LOCATION_EVENT_INTERVAL_SECONDS = 1800
HISTORY_FOR_CHOICES = 50
# A nonce outlives the accepted timestamp window (±300 s): a replay is refused either way.
NONCE_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS + 60

NOT_STORED_TEXT = "抱歉，系统繁忙，您的消息没有收到，请稍后重新发送。"
BUSY_TEXT = "抱歉，系统繁忙，请稍后再试。"
TICKET_NOT_STORED_TEXT = "留言暂时没有保存成功，请稍后重新发送。"
RATING_THANKS = "感谢您的评价！"
BAD_RATING_THANKS = (
    "感谢您的评价！我们会尽快核查并改进，工作人员可能会与您联系回访。"
    "如愿意，请回复“意见 + 您的意见”，告诉我们哪里没做好。"
)
COMMENT_THANKS = "已收到您的意见，谢谢！"
# "意见 等了很久" after a score: the rating's comment.
COMMENT_PATTERN = re.compile(r"^意见[\s:：,，]*(.+)$", re.S)


@dataclass
class WechatEndpoint:
    config: WechatConfig
    pipeline: Pipeline
    channel: WechatChannel
    messages_seen: Deduper
    location_events: Deduper
    nonces: Deduper = field(default_factory=lambda: MemoryDeduper(NONCE_SECONDS))
    redis: aioredis.Redis | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Answer:
    """The passive reply (None: "success") and what follows it through the API."""

    passive: str | None = None
    after: list[str] = field(default_factory=list)


WECHAT_CONFIG = web.AppKey("wechat_config", WechatConfig)
WECHAT = web.AppKey("wechat", WechatEndpoint)


# ---- HTTP -------------------------------------------------------------------------------------


async def verify(request: web.Request) -> web.Response:
    try:
        echostr = verify_server(request.app[WECHAT_CONFIG], request.query)
    except RequestRefused as exc:
        logger.warning("WeChat server check refused (%s) from %s", exc.reason, request.remote)
        return web.Response(status=exc.status, text=exc.reason)
    return web.Response(text=echostr)


async def receive(request: web.Request) -> web.StreamResponse:
    deadline = asyncio.get_running_loop().time() + request.app[WECHAT_CONFIG].reply_timeout
    endpoint = request.app[WECHAT]
    body = await request.read()
    try:
        inbound = open_request(endpoint.config, request.query, body)
        if not await endpoint.nonces.first(inbound.nonce):  # after the signature: only WeChat's
            raise RequestRefused(403, "nonce already used (a replayed request)")
    except RequestRefused as exc:
        logger.warning("WeChat message refused (%s) from %s", exc.reason, request.remote)
        return web.Response(status=exc.status, text=exc.reason)
    try:
        answer = await answer_message(endpoint, inbound.message, deadline)
    except Exception:  # answer something WeChat shows rather than make it retry a failure
        logger.exception("answering a WeChat message failed")
        answer = Answer(BUSY_TEXT)
    if answer.passive is None:
        return web.Response(text="success")
    xml = seal_reply(endpoint.config, inbound, text_reply_xml(inbound.message, answer.passive))
    response = web.Response(text=xml, content_type="application/xml")
    if not answer.after:
        return response
    # The rest of a long answer goes out once the passive reply is on its way, to keep the order.
    await response.prepare(request)
    await response.write_eof()
    endpoint.channel.send_later(conversation_id_for(inbound.message.source), answer.after)
    return response


# ---- answering --------------------------------------------------------------------------------


async def answer_message(endpoint: WechatEndpoint, message: BaseMessage, deadline: float) -> Answer:
    try:
        conversation = conversation_id_for(message.source)
    except ValueError:
        logger.warning("WeChat message from an unusable OpenID %r", message.source)
        return Answer()
    key = dedupe_key(message)
    if not await endpoint.messages_seen.first(key):
        return Answer()  # a resent copy: the first one is (being) answered
    if isinstance(message, events.LocationEvent) and not await endpoint.location_events.first(
        message.source
    ):
        return Answer()
    kept = await allowance_renewed(endpoint, message)
    try:
        answer = await answer_intent(endpoint, message, conversation, key, deadline)
    except Exception:  # what waited still goes out
        logger.exception("answering a WeChat message failed")
        answer = Answer(BUSY_TEXT)
    return with_kept(kept, answer)


async def allowance_renewed(endpoint: WechatEndpoint, message: BaseMessage) -> list[str]:
    """Count the customer-service messages this push allows; the texts that waited for it."""
    opened = allowance_opened(message)
    quota = endpoint.channel.quota
    if opened is None or quota is None:
        return []
    try:
        await quota.opened(message.source, *opened)
        return await quota.take_kept(message.source)
    except Exception:  # the answer still goes out; what waits stays for the next message
        logger.exception("could not read the WeChat allowance of %s", message.source)
        return []


def with_kept(kept: list[str], answer: Answer) -> Answer:
    """What waited goes first, in the passive reply, merged with the new answer."""
    if not kept:
        return answer
    parts = kept + ([answer.passive] if answer.passive else []) + answer.after
    messages = split_messages(parts)
    return Answer(messages[0], messages[1:])


async def answer_intent(
    endpoint: WechatEndpoint, message: BaseMessage, conversation: str, key: str, deadline: float
) -> Answer:
    intent: Intent = interpret(message)
    if isinstance(intent, Typed):
        intent = await understand_typed(endpoint, conversation, intent)
    if isinstance(intent, Say):
        return Answer(intent.text)
    if isinstance(intent, Ask):
        answer = await ask(endpoint, conversation, intent, deadline)
        if answer is None:  # not stored: let a resent copy through
            await endpoint.messages_seen.release(key)
            return Answer(NOT_STORED_TEXT)
        return answer
    return Answer()


async def understand_typed(endpoint: WechatEndpoint, conversation: str, typed: Typed) -> Intent:
    """Typed text in context: "留言 …", a number answering the options shown, "转人工"."""
    text = typed.text.strip()
    if not text:
        return None
    if text in ELDER_WORDS:  # handled here, not by the bot's understanding
        return Say(ELDER_MODE_TEXT)
    ticket = ticket_request(text)
    if ticket is not None:
        return await leave_ticket(endpoint.pipeline, conversation, typed.client_id, *ticket)
    comment = COMMENT_PATTERN.match(text)
    if comment is not None and await add_comment(endpoint.pipeline, conversation, comment.group(1)):
        return Say(COMMENT_THANKS)
    choice = parse_choice(text)
    if choice is not None:
        chosen = await resolve_choice(endpoint.pipeline, conversation, typed.client_id, choice)
        if chosen is not None:
            return chosen
    if len(text) > MAX_MESSAGE_CHARS:
        return Say(f"消息太长了（{len(text)}字），请控制在{MAX_MESSAGE_CHARS}字以内。")
    return Ask(typed.client_id, text, human_payload(text))


async def leave_ticket(
    pipeline: Pipeline, conversation: str, client_id: str, phone: str, text: str
) -> Say:
    try:
        ticket_id = await pipeline.leave_ticket(
            conversation, phone, text, channel=CHANNEL_NAME, client_id=client_id
        )
    except ValueError as exc:
        return Say(f"留言没有提交：{exc}")
    except Exception:
        logger.exception("could not store a ticket of %s", conversation)
        return Say(TICKET_NOT_STORED_TEXT)
    return Say(TICKET_TEXT.format(id=ticket_id))


async def add_comment(pipeline: Pipeline, conversation: str, comment: str) -> bool:
    try:
        return await pipeline.ratings.add_comment(conversation, comment)
    except Exception:
        logger.exception("could not store a rating comment of %s", conversation)
        return False


async def resolve_choice(
    pipeline: Pipeline, conversation: str, client_id: str, number: int
) -> Intent:
    """A bare number: a rating after a closed handoff, or the option of the latest answer
    with that number. None when no options are pending (then it is just text)."""
    try:
        history, handoff = await pipeline.store.run(
            lambda s: handoffs.history_with_latest_handoff(s, conversation, HISTORY_FOR_CHOICES)
        )
        bot_rating = await pipeline.store.run(lambda s: ratings.bot_rating(s, conversation))
    except Exception:
        logger.exception("could not read the history of %s", conversation)
        return None
    if bot_rating_pending(history, bot_rating):
        if number not in handoffs.RATINGS:
            return Say("请回复 1 到 5 之间的数字为本次服务评分。")
        try:
            await pipeline.rate_conversation(conversation, number, "")
        except ValueError as exc:
            return Say(str(exc))
        return Say(BAD_RATING_THANKS if number in ratings.BAD_SCORES else RATING_THANKS)
    if rating_pending(history, handoff):
        assert handoff is not None
        if number not in handoffs.RATINGS:
            return Say("请回复 1 到 5 之间的数字为本次服务评分。")
        try:
            await pipeline.rate(conversation, handoff.id, number, "")
        except ValueError as exc:
            return Say(str(exc))
        return Say(BAD_RATING_THANKS if number in ratings.BAD_SCORES else RATING_THANKS)
    options = options_last_shown(history)
    if not options:
        return None
    if not 1 <= number <= len(options):
        return Say(f"请回复 1 到 {len(options)} 之间的数字，或直接输入您的问题。")
    option = options[number - 1]
    return Ask(client_id, option.title, option.payload or None)


def rating_pending(history: list[conversations.Message], handoff: handoffs.Handoff | None) -> bool:
    """A closed, unrated handoff whose rating prompt is the last thing shown (no bot answer
    since it ended)."""
    if handoff is None or handoff.status != handoffs.CLOSED or handoff.rating is not None:
        return False
    ended = handoff.ended_at
    return ended is not None and not any(m.role == "bot" and m.created_at >= ended for m in history)


def bot_rating_pending(history: list[conversations.Message], rating: ratings.Rating | None) -> bool:
    """The bot-only rating prompt is the last thing shown: offered, unanswered, no bot answer
    since."""
    if rating is None or rating.score is not None:
        return False
    offered = rating.offered_at
    return not any(m.role == "bot" and m.created_at > offered for m in history)


async def ask(
    endpoint: WechatEndpoint, conversation: str, intent: Ask, deadline: float
) -> Answer | None:
    """Through the pipeline; the passive reply if the answer is ready in time. None: not stored."""
    channel = endpoint.channel
    try:
        received = await endpoint.pipeline.receive(
            conversation, CHANNEL_NAME, intent.client_id, intent.text, intent.payload,
            intent.metadata,
        )  # fmt: skip
    except StoreFailed:
        return None
    if received.duplicate:
        return Answer()
    message_id = received.message_id
    channel.hold(message_id)  # no await since receive(): no frame of the answer has gone yet
    remaining = deadline - asyncio.get_running_loop().time()
    finished, _ = await asyncio.wait({received.done}, timeout=max(remaining, 0))
    if not finished:
        received.done.add_done_callback(lambda _: channel.send_held(conversation, message_id))
        return Answer()
    channel.drop_held(message_id)
    messages = split_messages(render_frames(received.done.result()))
    if not messages:
        return Answer()
    return Answer(messages[0], messages[1:])


# ---- set-up -----------------------------------------------------------------------------------


async def _wechat_context(app: web.Application) -> AsyncIterator[None]:
    config = app[WECHAT_CONFIG]
    pipeline = app[PIPELINE]
    redis = None
    shared_token = None
    messages_seen: Deduper = MemoryDeduper(DEDUPE_SECONDS)
    location_events: Deduper = MemoryDeduper(LOCATION_EVENT_INTERVAL_SECONDS)
    nonces: Deduper = MemoryDeduper(NONCE_SECONDS)
    quota: QuotaStore = MemoryQuota()
    settings = app[SETTINGS]
    if settings.redis_url:  # every key under the deployment's REDIS_NAMESPACE
        redis = aioredis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
        namespace = settings.redis_namespace
        shared_token = SharedToken.for_app(redis, namespace, config.app_id)
        messages_seen = RedisDeduper(redis, namespace, f"msg:{config.app_id}", DEDUPE_SECONDS)
        location_events = RedisDeduper(
            redis, namespace, f"location:{config.app_id}", LOCATION_EVENT_INTERVAL_SECONDS
        )
        # Shared by every gateway; while Redis is down, this process's memory still refuses.
        nonces = RedisDeduper(
            redis, namespace, f"nonce:{config.app_id}", NONCE_SECONDS, fallback=nonces
        )
        quota = RedisQuota(redis, namespace, config.app_id)
    channel = WechatChannel(WechatApi(app[HTTP_CLIENT], config, shared_token), quota)
    pipeline.register_channel(channel)
    app[WECHAT] = WechatEndpoint(
        config, pipeline, channel, messages_seen, location_events, nonces, redis
    )
    yield
    await channel.close()
    if redis is not None:
        await redis.close()


def setup_wechat(app: web.Application, config: WechatConfig | None = None) -> None:
    """Serve /wechat when WeChat is configured (WECHAT_TOKEN set). Call after the cleanup
    context that creates the HTTP client and the pipeline."""
    config = config or app[SETTINGS].wechat
    if config is None:
        return
    app[WECHAT_CONFIG] = config
    app.router.add_get("/wechat", verify)
    app.router.add_post("/wechat", receive)
    app.cleanup_ctx.append(_wechat_context)
    logger.info("WeChat Official Account channel on /wechat (AppID %s)", config.app_id or "-")
