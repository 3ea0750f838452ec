"""The web chat's websocket protocol: typed JSON frames (documented in README.md).

Client → server:  message, typing, ticket, rating, feedback (see README "Websocket protocol"); a
                  rating with "scope": "conversation" rates a conversation the bot handled alone.
Server → client:  history, ack, user, bot, staff, system, handoff, typing, ticket_saved,
                  rating_saved, rating_request (the bot-only rating card), feedback_saved, error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.conversation.frames import (
    CLIENT_ID_PATTERN,
    MAX_MESSAGE_CHARS,
    iso_time,
    storable,
)

MAX_NESTING = 32


class ProtocolError(ValueError):
    """A frame the server cannot accept; `code` and `text` go back to the client."""

    def __init__(self, code: str, text: str, client_id: str | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.client_id = client_id


@dataclass(frozen=True)
class UserMessage:
    client_id: str  # the client's id of this message: a resent copy has the same one
    text: str  # what the user typed or the button title they chose
    payload: str | None  # a button's payload ("/intent{…}"), sent to Rasa instead of the text

    @property
    def for_rasa(self) -> str:
        return self.payload or self.text


@dataclass(frozen=True)
class Typing:
    on: bool


@dataclass(frozen=True)
class TicketRequest:
    """Leave a message for staff (out of hours or nobody online)."""

    client_id: str
    phone: str
    text: str


@dataclass(frozen=True)
class RatingRequest:
    handoff_id: int
    score: int  # 1 非常不满意 … 5 非常满意
    comment: str


@dataclass(frozen=True)
class ConversationRating:
    """The rating of a conversation the bot handled alone (its card: "rating_request")."""

    score: int
    comment: str


@dataclass(frozen=True)
class FeedbackRequest:
    """👍/👎 on one bot message, with an optional reason (bot.db.review.FEEDBACK_REASONS)."""

    message_id: int
    value: str  # up | down
    reason: str | None


ClientFrame = (
    UserMessage | Typing | TicketRequest | RatingRequest | ConversationRating | FeedbackRequest
)


def parse_client_frame(raw: str) -> ClientFrame | None:
    """Parse one frame; None for frames to ignore silently (an empty message)."""
    if nested_too_deep(raw):  # refused the same way whatever the interpreter's stack depth
        raise ProtocolError("bad_json", "消息格式不正确。")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", "消息格式不正确。") from exc
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "不支持的消息类型。")
    kind = frame.get("type")
    if kind == "typing":
        return Typing(on=frame.get("on") is True)
    if kind == "ticket":
        return _ticket(frame)
    if kind == "rating":
        return _rating(frame)
    if kind == "feedback":
        return _feedback(frame)
    if kind != "message":
        raise ProtocolError("bad_frame", "不支持的消息类型。")
    client_id = _client_id(frame)
    text = frame.get("text")
    payload = frame.get("payload")
    if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)):
        raise ProtocolError("bad_frame", "消息格式不正确。", client_id)
    text = storable(text).strip()
    payload = storable(payload) if payload is not None else None
    payload = payload or None
    if not text and not payload:
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(
            "too_long",
            f"消息太长了（{len(text)}字），请控制在{MAX_MESSAGE_CHARS}字以内。",
            client_id,
        )
    if payload is not None and (not payload.startswith("/") or len(payload) > MAX_MESSAGE_CHARS):
        raise ProtocolError("bad_frame", "按钮数据不正确。", client_id)
    return UserMessage(client_id=client_id, text=text or payload or "", payload=payload)


def nested_too_deep(raw: str, limit: int = MAX_NESTING) -> bool:
    """More than `limit` open brackets at once (outside strings). A client frame is one flat
    object; deep nesting only serves to exhaust json's recursion."""
    if raw.count("[") + raw.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _client_id(frame: dict[str, Any]) -> str:
    client_id = frame.get("id")
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.match(client_id):
        raise ProtocolError("bad_frame", "消息缺少编号。")
    return client_id


def _ticket(frame: dict[str, Any]) -> TicketRequest:
    client_id = _client_id(frame)
    phone, text = frame.get("phone"), frame.get("text")
    if not isinstance(phone, str) or not isinstance(text, str) or len(phone) > 40:
        raise ProtocolError("bad_frame", "留言格式不正确。", client_id)
    return TicketRequest(client_id, storable(phone), storable(text))


def _rating(frame: dict[str, Any]) -> RatingRequest | ConversationRating:
    handoff_id, score = frame.get("handoff_id"), frame.get("score")
    comment = frame.get("comment") or ""
    if frame.get("scope") == "conversation":
        if not isinstance(score, int) or isinstance(score, bool) or not isinstance(comment, str):
            raise ProtocolError("bad_rating", "评价格式不正确。")
        return ConversationRating(score, storable(comment))
    valid = (
        isinstance(handoff_id, int)
        and not isinstance(handoff_id, bool)
        and isinstance(score, int)
        and not isinstance(score, bool)
        and isinstance(comment, str)
        and 0 < handoff_id < 2**31  # the handoffs.id column (int4)
    )
    if not valid:
        raise ProtocolError("bad_rating", "评价格式不正确。")
    assert isinstance(handoff_id, int) and isinstance(score, int)  # checked above
    return RatingRequest(handoff_id, score, storable(comment))


def _feedback(frame: dict[str, Any]) -> FeedbackRequest:
    message_id, value, reason = frame.get("message_id"), frame.get("value"), frame.get("reason")
    valid = (
        isinstance(message_id, int)
        and not isinstance(message_id, bool)
        and 0 < message_id < 2**31
        and value in ("up", "down")
        and (reason is None or (isinstance(reason, str) and len(reason) <= 20))
    )
    if not valid:
        raise ProtocolError("bad_feedback", "评价格式不正确。")
    assert isinstance(message_id, int) and isinstance(value, str)  # checked above
    return FeedbackRequest(message_id, value, reason)


def ack_frame(client_id: str, message_id: int, moment: datetime, duplicate: bool) -> dict:
    return {
        "type": "ack",
        "client_id": client_id,
        "id": message_id,
        "time": iso_time(moment),
        "duplicate": duplicate,
    }
