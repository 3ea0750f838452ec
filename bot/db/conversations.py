"""Web chat conversations and every message in them (user, bot, later staff), with their queries.

A user message is stored before the gateway acknowledges it, keyed by the client's own message id
so that a message resent after a reconnect is stored (and answered) only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import rollup
from bot.db.models import Base

HISTORY_LIMIT = 200

# User-message status: staff look for "failed" ones (the bot could not answer them);
# "staff" marks a message routed to a person during a handoff.
RECEIVED, ANSWERED, FAILED, TO_STAFF = "received", "answered", "failed", "staff"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # stored naive, always UTC


class Conversation(Base):
    __tablename__ = "conversations"

    id = Column(String(64), primary_key=True)  # assigned by the gateway, never by a client
    channel = Column(String(20), nullable=False, default="webchat")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_message_at = Column(DateTime, nullable=False, default=utcnow, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_message_id", name="uq_message_client_id"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role = Column(String(10), nullable=False)  # user | bot | staff
    text = Column(Text, nullable=False, default="")
    payload = Column(Text)  # a button's payload the user chose
    data = Column(JSON)  # a bot message's buttons and custom card payload
    client_message_id = Column(String(64))  # user messages only
    status = Column(String(10))  # user messages only: received | answered | failed
    created_at = Column(DateTime, nullable=False, default=utcnow)
    # Review and dashboard (bot/db/review.py): the citizen's 👍/👎 on a bot message, and what
    # the bot did with a user message (the action server's `meta` message).
    feedback = Column(String(4))  # up | down
    feedback_reason = Column(String(20))
    feedback_at = Column(DateTime)
    outcome = Column(String(16))  # see bot.db.review.OUTCOMES
    topic = Column(String(64))
    knowledge_key = Column(String(80))
    score = Column(Float)


@dataclass(frozen=True)
class Stored:
    """A stored user message; `duplicate` when this client id had been stored before."""

    id: int
    created_at: datetime
    duplicate: bool
    status: str = RECEIVED  # of the copy stored first, for a duplicate
    # When the conversation had its previous message (None: this one started it).
    previous_at: datetime | None = None


def ensure_conversation(session: Session, conversation_id: str, channel: str = "webchat") -> None:
    """Create the conversation's row unless it exists (flushed, not committed)."""
    if session.get(Conversation, conversation_id) is None:
        _touch_conversation(session, conversation_id, utcnow(), channel)


def _touch_conversation(
    session: Session, conversation_id: str, now: datetime, channel: str = "webchat"
) -> tuple[datetime | None, str]:
    """Create or touch the conversation: when it was active before (None: new), its channel."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        session.add(
            Conversation(id=conversation_id, channel=channel, created_at=now, last_message_at=now)
        )
        rollup.bump(session, now, channel, "conversations")
        session.flush()
        return None, channel
    previous: datetime | None = conversation.last_message_at
    conversation.last_message_at = now
    return previous, str(conversation.channel)


def store_user_message(
    session: Session,
    conversation_id: str,
    client_message_id: str,
    text: str,
    payload: str | None,
    channel: str = "webchat",
) -> Stored:
    """Store a user message once per (conversation, client id) and commit."""
    existing = _find_by_client_id(session, conversation_id, client_message_id)
    if existing is not None:
        return Stored(existing.id, existing.created_at, duplicate=True, status=existing.status)
    now = utcnow()
    previous_at, channel = _touch_conversation(session, conversation_id, now, channel)
    rollup.bump(session, now, channel, "questions")
    message = Message(
        conversation_id=conversation_id,
        role="user",
        text=text,
        payload=payload,
        client_message_id=client_message_id,
        status=RECEIVED,
        created_at=now,
    )
    session.add(message)
    try:
        session.commit()
    except IntegrityError:  # the same id arrived at the same time on another socket
        session.rollback()
        existing = _find_by_client_id(session, conversation_id, client_message_id)
        if existing is None:
            raise
        return Stored(existing.id, existing.created_at, duplicate=True)
    return Stored(message.id, message.created_at, duplicate=False, previous_at=previous_at)


def _find_by_client_id(
    session: Session, conversation_id: str, client_message_id: str
) -> Message | None:
    return session.execute(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.client_message_id == client_message_id,
        )
    ).scalar_one_or_none()


def store_replies(
    session: Session,
    conversation_id: str,
    user_message_id: int,
    replies: list[dict[str, Any]],
    answered: bool = False,
) -> list[Message]:
    """Store the bot's answer to a user message and set that message's status: failed when
    there is no reply, unless it was `answered` another way (handed to a person)."""
    now = utcnow()
    _touch_conversation(session, conversation_id, now)
    stored = []
    for reply in replies:
        data = {k: reply[k] for k in ("buttons", "custom") if k in reply}
        message = Message(
            conversation_id=conversation_id,
            role="bot",
            text=reply.get("text", ""),
            data=data or None,
            created_at=now,
        )
        session.add(message)
        stored.append(message)
    user_message = session.get(Message, user_message_id)
    if user_message is not None:
        user_message.status = ANSWERED if replies or answered else FAILED
    session.commit()
    return stored


def add_message(
    session: Session,
    conversation_id: str,
    role: str,
    text: str,
    data: dict[str, Any] | None = None,
    client_message_id: str | None = None,
) -> Message:
    """Store one staff or system message (or a notice) and commit."""
    now = utcnow()
    _touch_conversation(session, conversation_id, now)
    message = Message(
        conversation_id=conversation_id,
        role=role,
        text=text,
        data=data or None,
        client_message_id=client_message_id,
        created_at=now,
    )
    session.add(message)
    session.commit()
    return message


def set_status(session: Session, message_id: int, status: str) -> None:
    message = session.get(Message, message_id)
    if message is not None:
        message.status = status
        session.commit()


def channel_of(session: Session, conversation_id: str) -> str | None:
    conversation = session.get(Conversation, conversation_id)
    return None if conversation is None else conversation.channel


def history(session: Session, conversation_id: str, limit: int = HISTORY_LIMIT) -> list[Message]:
    """The conversation's latest `limit` messages, oldest first."""
    newest_first = session.execute(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(limit)
    ).scalars()
    return list(reversed(list(newest_first)))


def unanswered(session: Session, conversation_id: str | None = None) -> list[Message]:
    """User messages the bot could not answer (for staff), oldest first."""
    query = select(Message).where(Message.role == "user", Message.status == FAILED)
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    return list(session.execute(query.order_by(Message.id)).scalars())
