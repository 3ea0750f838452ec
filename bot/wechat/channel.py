"""The WeChat channel of the conversation pipeline: passive replies and customer-service sends.

Customer-service messages are counted against WeChat's allowance (quota.py): what does not fit is
kept, announced at the end of the last message that fits, and sent with the next passive reply.

The pipeline's frames answering a user message are held here until the answer is complete. In
time for WeChat's 5 seconds, they become the passive reply (the HTTP response); otherwise the
request is answered "success" and, once complete, the answer goes out through the customer-service
API instead: each answer reaches the user exactly one way. Frames that answer no message (staff
replies, notices during a handoff) always use the API.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.conversation.channel import DeliveryFailed, DeliveryLimit
from bot.wechat.api import WechatApi, WechatApiError
from bot.wechat.quota import QuotaStore, fit, without_notice
from bot.wechat.render import TEXT_LIMIT_BYTES, render_frames, split_messages

logger = logging.getLogger(__name__)
T = TypeVar("T")
CHANNEL_NAME = "wechat"
CONVERSATION_PREFIX = "wx-"
# OpenIDs are 28 characters of [A-Za-z0-9_-]; allow some room, within the 64 of a conversation id.
OPENID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{6,61}$")
# 45047: the allowance is spent; 45015: the window has closed. Either way: wait for the user.
QUOTA_ERRORS = frozenset({45047, 45015})
KEPT_FOR_LATER = "消息已保存，将在市民下次发消息时一并送达。"


def conversation_id_for(openid: str) -> str:
    """The conversation of an OpenID. Derived only from the verified FromUserName, and reversible,
    so that staff replies reach the user after a restart without a lookup table. An OpenID is
    already a per-account pseudonym."""
    if not OPENID_PATTERN.match(openid):
        raise ValueError("not an OpenID")
    return CONVERSATION_PREFIX + openid


def openid_of(conversation_id: str) -> str:
    if not conversation_id.startswith(CONVERSATION_PREFIX):
        raise DeliveryFailed("这不是微信公众号的会话，无法通过微信发送。")
    return conversation_id[len(CONVERSATION_PREFIX) :]


class Sequencer:
    """Runs jobs per key in the order they were submitted. Submitting is synchronous, so the
    order is fixed at the moment of the call, not when the job gets to run."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future] = {}

    def submit(self, key: str, job: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        previous = self._tails.get(key)

        async def run() -> T:
            if previous is not None:
                await asyncio.wait({previous})  # after it, whether it failed or not
            return await job()

        task = asyncio.ensure_future(run())
        self._tails[key] = task
        task.add_done_callback(lambda t: self._forget(key, t))
        return task

    def _forget(self, key: str, task: asyncio.Future) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]


class WechatChannel:
    name = CHANNEL_NAME

    def __init__(self, api: WechatApi, quota: QuotaStore | None = None) -> None:
        self.api = api
        self.quota = quota  # None: not counted (WeChat's own refusals still reach the caller)
        # Frames answering a message whose answer is not complete yet (message id → frames).
        self._held: dict[int, list[dict[str, Any]]] = {}
        self._sequencer = Sequencer()
        self._background: set[asyncio.Task] = set()

    # ---- the answer to one message ------------------------------------------------------------

    def hold(self, message_id: int) -> None:
        """Keep the frames answering `message_id` until the answer is complete: they go out
        together, in the passive reply or else in as few messages as possible."""
        self._held[message_id] = []

    def drop_held(self, message_id: int) -> None:
        """The answer went into the passive reply: nothing held is sent again."""
        self._held.pop(message_id, None)

    def send_held(self, conversation_id: str, message_id: int) -> None:
        """Too late for a passive reply, and now complete: send the answer through the API."""
        held = self._held.pop(message_id, [])
        messages = split_messages(render_frames(held))
        if messages:
            self.send_later(conversation_id, messages)

    # ---- Channel ------------------------------------------------------------------------------

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        reply_to = frame.get("reply_to")
        if frame.get("type") in ("typing", "user"):
            return
        if reply_to in self._held:
            self._held[reply_to].append(frame)
            return
        if frame.get("type") == "handoff" and frame.get("state") == "waiting" and reply_to is None:
            return  # queue moves: each would cost a message of the user's 48-hour allowance
        messages = split_messages(render_frames([frame]))
        if messages:
            await self.send(conversation_id, messages, strict=frame.get("type") == "staff")

    async def delivery_limit(self, conversation_id: str) -> DeliveryLimit | None:
        """How many customer-service messages the user may still be sent, and until when."""
        if self.quota is None:
            return None
        allowance = await self.quota.allowance(openid_of(conversation_id))
        return DeliveryLimit(
            remaining=allowance.remaining,
            closes_at=allowance.closes_at or None,
            waiting=allowance.waiting,
            refusal="" if allowance.remaining > 0 else allowance.refusal(),
        )

    # ---- customer-service messages ------------------------------------------------------------

    async def send(self, conversation_id: str, messages: list[str], strict: bool = False) -> None:
        """Send text messages in order after anything already queued for this user; what the
        allowance does not cover waits for the user's next message. Raises DeliveryFailed (e.g.
        45015, the 48-hour window has passed), and when `strict` also when text had to wait."""
        kept, reason = await self._submit(conversation_id, messages)
        if kept and strict:
            raise DeliveryFailed(reason + KEPT_FOR_LATER)

    def send_later(self, conversation_id: str, messages: list[str]) -> None:
        """Queue messages without waiting for them (their place in the order is taken now);
        a failure is logged, as nobody is waiting to be told."""
        task = self._submit(conversation_id, messages)
        self._background.add(task)
        task.add_done_callback(self._log_failure)

    def _submit(
        self, conversation_id: str, messages: list[str]
    ) -> asyncio.Task[tuple[list[str], str]]:
        """The job's result: the texts kept for the user's next message, and why."""
        openid = openid_of(conversation_id)

        async def job() -> tuple[list[str], str]:
            if self.quota is None:
                for text in messages:
                    await self.api.send_text(openid, text)
                return [], ""
            return await self._send_within_allowance(openid, messages)

        return self._sequencer.submit(conversation_id, job)

    async def _send_within_allowance(
        self, openid: str, messages: list[str]
    ) -> tuple[list[str], str]:
        assert self.quota is not None
        allowance = await self.quota.allowance(openid)
        send, keep = fit(messages, allowance.remaining, TEXT_LIMIT_BYTES)
        reason = allowance.refusal() if keep else ""
        failure: DeliveryFailed | None = None
        for index, text in enumerate(send):
            try:
                if not await self.quota.take(openid):  # another gateway used it meanwhile
                    keep = [without_notice(t) for t in send[index:]] + keep
                    reason = (await self.quota.allowance(openid)).refusal()
                    break
                await self.api.send_text(openid, text)
            except DeliveryFailed as exc:  # nothing is lost: the rest waits for the user
                if isinstance(exc, WechatApiError) and exc.errcode in QUOTA_ERRORS:
                    await self.quota.spend_all(openid)
                    reason = exc.text
                else:
                    failure = exc
                keep = [without_notice(t) for t in send[index:]] + keep
                break
        if keep:
            await self.quota.keep(openid, keep)
            logger.info("%d WeChat message(s) wait for the user's next message", len(keep))
        if failure is not None:
            raise failure
        return keep, reason

    def _log_failure(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, DeliveryFailed):
            logger.warning("a late WeChat answer was not delivered: %s", exc.text)
        elif exc is not None:
            logger.error("a late WeChat answer failed", exc_info=exc)

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(set(self._background), timeout=10)
