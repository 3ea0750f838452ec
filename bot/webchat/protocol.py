"""The web chat's websocket protocol: typed JSON frames (documented in README.md).

Client → server:  {"type": "message", "text": "…", "payload": "/intent{…}" (optional)}
Server → client:  {"type": "bot", "text": "…", "buttons": [...], "custom": {...}}
                  {"type": "error", "code": "…", "text": "…", "buttons": [...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_CHARS = 500
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


class ProtocolError(ValueError):
    """A frame the server cannot accept; `code` and `text` go back to the client."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class UserMessage:
    text: str  # what the user typed or the button title they chose
    payload: str | None  # a button's payload ("/intent{…}"), sent to Rasa instead of the text

    @property
    def for_rasa(self) -> str:
        return self.payload or self.text


def parse_client_frame(raw: str) -> UserMessage | None:
    """Parse one frame; None for frames to ignore silently (an empty message)."""
    try:
        frame = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError("bad_json", "消息格式不正确。") from exc
    if not isinstance(frame, dict) or frame.get("type") != "message":
        raise ProtocolError("bad_frame", "不支持的消息类型。")
    text = frame.get("text")
    payload = frame.get("payload")
    if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)):
        raise ProtocolError("bad_frame", "消息格式不正确。")
    text = text.strip()
    if not text and not payload:
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(
            "too_long", f"消息太长了（{len(text)}字），请控制在{MAX_MESSAGE_CHARS}字以内。"
        )
    if payload is not None and (not payload.startswith("/") or len(payload) > MAX_MESSAGE_CHARS):
        raise ProtocolError("bad_frame", "按钮数据不正确。")
    return UserMessage(text=text or payload or "", payload=payload)


def bot_frame(message: dict[str, Any]) -> dict[str, Any] | None:
    """One Rasa REST channel message as a `bot` frame (None when it has nothing to show)."""
    frame: dict[str, Any] = {"type": "bot"}
    if isinstance(message.get("text"), str):
        frame["text"] = message["text"]
    buttons = [
        {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
        for b in message.get("buttons") or []
        if isinstance(b, dict)
    ]
    if buttons:
        frame["buttons"] = buttons
    if isinstance(message.get("custom"), dict):
        frame["custom"] = message["custom"]
    return frame if len(frame) > 1 else None


def error_frame(code: str, text: str, offer_human: bool = False) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "text": text}
    if offer_human:
        frame["buttons"] = [HUMAN_BUTTON]
    return frame
