"""What a pushed WeChat message or event asks for, before any conversation state is read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wechatpy import events, messages
from wechatpy.messages import BaseMessage

from bot.domain.vocabulary import REQUEST_HUMAN
from bot.wechat.quota import (
    EVENT_QUOTA,
    EVENT_WINDOW_SECONDS,
    MESSAGE_QUOTA,
    MESSAGE_WINDOW_SECONDS,
)
from bot.wechat.render import UNSUPPORTED_TEXT, welcome_text

# What a shared location asks the bot: the nearest brand guidance stations (the action reads the
# coordinates from the message metadata, see actions/location.py).
LOCATION_PAYLOAD = "/find_brand_station"
HUMAN_WORDS = frozenset({"转人工", "人工", "人工客服", "转人工客服"})
# "长辈版" typed in WeChat: the web chat switches itself (elder.js); WeChat has its own care mode.
ELDER_WORDS = frozenset({"长辈版", "大字", "大字版", "老年版"})
ELDER_MODE_TEXT = (
    "想在微信里看大字：点“我”→“设置”→“关怀模式”，开启后字更大、颜色更清楚，"
    "还可以点文字消息听读；也可以在“设置”→“通用”→“字体大小”里把字调大。"
)
# "留言 13800000000 想咨询商标续展": leave a call-back request (out of hours, nobody online).
TICKET_PATTERN = re.compile(r"^留言[\s:：,，]*([0-9][0-9\-－ ]{4,19}[0-9])[\s:：,，]*(.*)$", re.S)


@dataclass(frozen=True)
class Typed:
    """Text the user typed (or spoke, with WeChat's speech recognition): numbers and "留言 …"
    depend on what was shown before, the rest goes to the bot."""

    client_id: str
    text: str


@dataclass(frozen=True)
class Ask:
    """A message for the conversation pipeline as it is."""

    client_id: str
    text: str
    payload: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Say:
    """Answered at once with this text; nothing stored."""

    text: str


Intent = Typed | Ask | Say | None  # None: nothing to answer ("success")


def dedupe_key(message: BaseMessage) -> str:
    """MsgId for messages; events have none, so the sender and the second they were created."""
    if message.id:
        return f"msg:{message.id}"
    event = getattr(message, "event", "") or message.type
    return f"event:{message.source}:{message.time}:{event}"


def _location(client_id: str, latitude: float, longitude: float, label: str = "") -> Ask:
    text = f"[位置] {label}".strip() if label else "[位置]"
    metadata = {"latitude": latitude, "longitude": longitude}
    return Ask(client_id, text[:200], LOCATION_PAYLOAD, metadata)


def interpret(message: BaseMessage) -> Intent:
    if isinstance(message, messages.TextMessage):
        return Typed(str(message.id), message.content or "")
    if isinstance(message, messages.VoiceMessage) and (message.recognition or "").strip():
        return Typed(str(message.id), message.recognition)
    if isinstance(message, messages.LocationMessage):
        try:
            latitude, longitude = float(message.location_x), float(message.location_y)
        except (TypeError, ValueError):
            return Say(UNSUPPORTED_TEXT)
        return _location(str(message.id), latitude, longitude, message.label or "")
    if isinstance(message, events.LocationEvent):
        return _location(f"location-{message.time}", message.latitude, message.longitude)
    if isinstance(message, (events.SubscribeEvent, events.SubscribeScanEvent)):
        return Say(welcome_text())
    if isinstance(message, events.ClickEvent):
        # A menu item: its key is a button payload ("/request_human") or a question to ask.
        key = (message.key or "").strip()
        if not key:
            return None
        return Ask(f"click-{message.time}", key, key if key.startswith("/") else None)
    if isinstance(message, events.BaseEvent):
        return None  # unsubscribe, menu links, template results …: nothing to say
    return Say(UNSUPPORTED_TEXT)  # image, voice without recognition, video, link, file …


# The events after which WeChat lets the account send a few customer-service messages.
ALLOWANCE_EVENTS = (
    events.SubscribeEvent,
    events.SubscribeScanEvent,
    events.ScanEvent,
    events.ClickEvent,
    events.ScanCodePushEvent,
    events.ScanCodeWaitMsgEvent,
)


def allowance_opened(message: BaseMessage) -> tuple[int, int] | None:
    """(messages, seconds) the account may send after this push, None when it opens nothing
    (a location report, an unsubscribe, a menu link …)."""
    if isinstance(message, ALLOWANCE_EVENTS):
        return EVENT_QUOTA, EVENT_WINDOW_SECONDS
    if isinstance(message, events.BaseEvent):
        return None
    return MESSAGE_QUOTA, MESSAGE_WINDOW_SECONDS  # a message of any type the user sent


def human_payload(text: str) -> str | None:
    return REQUEST_HUMAN if text.strip() in HUMAN_WORDS else None


def ticket_request(text: str) -> tuple[str, str] | None:
    """(phone, message) of a "留言 手机号 内容" text, else None."""
    match = TICKET_PATTERN.match(text.strip())
    return (match.group(1), match.group(2).strip()) if match else None
