"""Frames every channel shares: a stored message, a bot reply, an error, the welcome.

The web chat sends them as JSON over its websocket; WeChat renders them as text; the console
shows them. The core builds them, so they live here and not with any one channel.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from bot.domain.vocabulary import HUMAN_BUTTON

MAX_MESSAGE_CHARS = 500
# Client message ids: what crypto.randomUUID() and similar generators produce.
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# NUL and lone UTF-16 surrogates (a JSON "\\ud800" escape): neither database can store them.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

WELCOME_TEXT = (
    "您好，我是宁波知识产权公共服务助手。可以问我商标受理窗口、商标品牌指导站、"
    "知识产权保险、专利预审、质押融资等问题，也可以随时转人工。"
)
# "猜你想问": sent as typed text (no payload) so that they go through the NLU like a real question.
HOT_QUESTIONS = (
    "商标受理窗口在哪",
    "鄞州有品牌指导站吗",
    "有哪些知识产权保险",
    "专利预审怎么申请",
    "专利能拿来贷款吗",
)


QUEUED_TEXT = "正在排队，请稍候"


def queued_notice() -> dict[str, Any]:
    """Rasa is saturated and the answer waits its turn: the web chat shows the text in place of
    the typing dots; WeChat shows no typing frame (and spends none of its message allowance)."""
    return {"type": "typing", "on": True, "text": QUEUED_TEXT}


def storable(value: str) -> str:
    """Text both databases store: no NUL (PostgreSQL refuses it) and no lone surrogates (a JSON
    "\\ud800" escape; not UTF-8), each replaced by U+FFFD."""
    return UNSTORABLE.sub("\ufffd", value)


def iso_time(moment: datetime) -> str:
    """A stored (naive UTC) time as ISO 8601 with its zone, for the browser's Date()."""
    return moment.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


def bot_reply(message: dict[str, Any]) -> dict[str, Any] | None:
    """The parts of one Rasa REST channel message the page shows (None when nothing)."""
    reply: dict[str, Any] = {}
    if isinstance(message.get("text"), str) and message["text"]:
        reply["text"] = message["text"]
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in message.get("buttons") or []
        if isinstance(b, dict)
    ]
    if buttons:
        reply["buttons"] = buttons
    if isinstance(message.get("custom"), dict):
        reply["custom"] = message["custom"]
    return reply or None


def message_frame(
    role: str,
    message_id: int,
    moment: datetime,
    text: str,
    data: dict[str, Any] | None = None,
    client_id: str | None = None,
) -> dict[str, Any]:
    """A stored message as a frame: `user`, `bot` (or later `staff`)."""
    frame: dict[str, Any] = {"type": role, "id": message_id, "time": iso_time(moment)}
    if client_id is not None:
        frame["client_id"] = client_id
    if text:
        frame["text"] = text
    frame.update(data or {})
    return frame


def welcome_frame() -> dict[str, Any]:
    return {
        "text": WELCOME_TEXT,
        "title": "猜你想问",
        "buttons": [{"title": q, "payload": ""} for q in HOT_QUESTIONS],
    }


def error_frame(
    code: str,
    text: str,
    offer_human: bool = False,
    client_id: str | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "text": text}
    if client_id is not None:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = retry_after
    if offer_human:
        frame["buttons"] = [HUMAN_BUTTON]
    return frame
