"""Searching stored messages across conversations, for the admins' transcript pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.conversations import Conversation, Message


@dataclass(frozen=True)
class TranscriptLine:
    id: int
    conversation_id: str
    channel: str
    role: str
    text: str
    created_at: datetime


def search_messages(
    session: Session,
    *,
    text: str = "",
    conversation_id: str = "",
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    limit: int,
    chronological: bool,
) -> list[TranscriptLine]:
    """Messages containing `text` (case-insensitive, taken literally), optionally of one
    conversation and within [created_from, created_before) UTC; by conversation then in order
    when `chronological`, else newest first."""
    query = select(Message, Conversation.channel).join(
        Conversation, Conversation.id == Message.conversation_id
    )
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Message.text.ilike(f"%{escaped}%", escape="\\"))
    if conversation_id:
        query = query.where(Message.conversation_id == conversation_id)
    if created_from is not None:
        query = query.where(Message.created_at >= created_from)
    if created_before is not None:
        query = query.where(Message.created_at < created_before)
    if chronological:
        query = query.order_by(Message.conversation_id, Message.id)
    else:
        query = query.order_by(Message.id.desc())
    rows = session.execute(query.limit(limit)).all()
    return [
        TranscriptLine(m.id, m.conversation_id, channel, m.role, m.text or "", m.created_at)
        for m, channel in rows
    ]
