"""The questions the bot did not answer well, and what staff decided about them (issue 17).

A citizen question gets a `review_signals` row for each reason: the NLU fallback, "都不是", a
knowledge answer below the threshold (suggested or not found), out of scope, a 👎 on the answer,
or a handoff that followed it. Staff decide per group of similar questions (bot.knowledge
.grouping): a knowledge item, training examples, or dismissed with a reason; the decision is a
`review_decisions` row and the signals point to it. Nothing is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import rollup
from bot.db.conversations import Conversation, Message, utcnow
from bot.db.handoffs import Handoff, Ticket
from bot.db.models import Base, ConsultationRequest
from bot.db.staff import StaffUser

# What the bot did with a user message (messages.outcome), from the action server's `meta`.
ANSWERED, SUGGESTED, NOT_FOUND, FALLBACK, OUT_OF_SCOPE = (
    "answered",
    "suggested",
    "not_found",
    "fallback",
    "out_of_scope",
)
OUTCOMES = (ANSWERED, SUGGESTED, NOT_FOUND, FALLBACK, OUT_OF_SCOPE)
# Why a question is in the inbox (review_signals.reason), with the words staff read.
REASONS: dict[str, str] = {
    "fallback": "没听懂",
    "none_of_these": "点了“都不是”",
    "low_score": "知识库得分低",
    "out_of_scope": "超出服务范围",
    "thumbs_down": "市民点了“没有帮助”",
    "handoff": "之后转人工",
}
REASON_OF_OUTCOME = {
    SUGGESTED: "low_score",
    NOT_FOUND: "low_score",
    FALLBACK: "fallback",
    OUT_OF_SCOPE: "out_of_scope",
}
FEEDBACK_VALUES = ("up", "down")
# The reasons a citizen may give with a 👎 (stored as the key).
FEEDBACK_REASONS: dict[str, str] = {
    "not_answered": "没回答我的问题",
    "wrong": "信息有误",
    "unclear": "看不懂",
}
ACTIONS: dict[str, str] = {
    "knowledge": "新建知识条目",
    "training": "加入训练数据",
    "dismiss": "忽略",
}
DETAIL_MAX = 500


class ReviewDecision(Base):
    __tablename__ = "review_decisions"

    id = Column(Integer, primary_key=True)
    action = Column(String(12), nullable=False)
    detail = Column(Text, nullable=False)
    staff_id = Column(Integer, ForeignKey("staff_users.id"), nullable=False)
    message_count = Column(Integer, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)


class ReviewSignal(Base):
    __tablename__ = "review_signals"
    __table_args__ = (
        UniqueConstraint("message_id", "reason", name="uq_review_signal"),
        Index("ix_review_signals_open", "decision_id", "created_at"),
        Index("ix_review_signals_message_id", "message_id"),
    )

    id = Column(Integer, primary_key=True)
    message_id = Column(Integer, ForeignKey("messages.id"), nullable=False)
    conversation_id = Column(String(64), nullable=False)
    channel = Column(String(20), nullable=False)
    reason = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    decision_id = Column(Integer, ForeignKey("review_decisions.id"))


# Migration 0008's indexes on other modules' tables, for the dashboard's date ranges (declared
# here so those models stay as they were; bench/review_dashboard.py measures them).
DASHBOARD_INDEXES = (
    Index("ix_messages_created_at", Message.created_at, Message.role),
    Index(
        "ix_messages_feedback_at",
        Message.feedback_at,
        postgresql_where=Message.feedback.is_not(None),
        sqlite_where=Message.feedback.is_not(None),
    ),
    Index("ix_conversations_created_at", Conversation.created_at, Conversation.channel),
    Index("ix_handoffs_requested_at", Handoff.requested_at),
    Index("ix_tickets_created_at", Ticket.created_at),
    Index("ix_consultation_requests_created_at", ConsultationRequest.created_at),
)


class FeedbackRefused(ValueError):
    """A feedback frame about no bot message of this conversation, or with a bad value."""


# --- recording ---------------------------------------------------------------------------------


def _add_signal(session: Session, message: Message, reason: str) -> bool:
    """One signal per (message, reason); False when it was there already. Not committed."""
    exists = session.execute(
        select(ReviewSignal.id).where(
            ReviewSignal.message_id == message.id, ReviewSignal.reason == reason
        )
    ).first()
    if exists:
        return False
    first = not session.execute(
        select(ReviewSignal.id).where(ReviewSignal.message_id == message.id)
    ).first()
    channel = _channel(session, message)
    now = utcnow()
    session.add(
        ReviewSignal(
            message_id=message.id,
            conversation_id=message.conversation_id,
            channel=channel,
            reason=reason,
            created_at=now,
        )
    )
    if first:
        rollup.bump(session, now, channel, "flagged")
    return True


def _channel(session: Session, message: Message) -> str:
    conversation = session.get(Conversation, message.conversation_id)
    return str(conversation.channel) if conversation else "webchat"


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:  # the same signal recorded at the same moment elsewhere
        session.rollback()


def record_outcome(session: Session, message_id: int, meta: Mapping[str, Any]) -> None:
    """Store what the bot did with a user message (the action server's `meta`) and flag it when
    the bot did not answer it outright. Unknown values are ignored, never stored."""
    message = session.get(Message, message_id)
    if message is None or message.role != "user":
        return
    outcome = meta.get("outcome")
    if outcome in OUTCOMES:
        message.outcome = outcome
    for name, column, metric, limit in (
        ("topic", "topic", "topic", 64),
        ("key", "knowledge_key", "item", 80),
    ):
        value = meta.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            continue
        if getattr(message, column) is None:  # counted once, as first noted
            rollup.bump(session, message.created_at, _channel(session, message), metric, value)
            setattr(message, column, value)
    score = meta.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        message.score = float(score)
    reason = REASON_OF_OUTCOME.get(str(outcome))
    if reason is not None:
        _add_signal(session, message, reason)
    _commit(session)


# "转人工", "我要人工服务", "有人工吗" ask for a person; 人工智能 is a subject of questions.
PERSON_REQUEST = re.compile(r"人工(?!智能)")
QUESTIONS_LOOKED_BACK = 5


def question_before(
    session: Session, conversation_id: str, message_id: int, inclusive: bool
) -> Message | None:
    """The citizen's latest typed question up to a message: a user message without a button
    payload (button clicks and "转人工" are not questions; "人工智能专利…" is one)."""
    bound = Message.id <= message_id if inclusive else Message.id < message_id
    latest = session.execute(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.role == "user",
            Message.payload.is_(None),
            bound,
        )
        .order_by(Message.id.desc())
        .limit(QUESTIONS_LOOKED_BACK)
    ).scalars()
    return next((m for m in latest if not PERSON_REQUEST.search(m.text)), None)


def flag_question(
    session: Session, conversation_id: str, message_id: int, reason: str, inclusive: bool
) -> int | None:
    """Flag the question asked up to `message_id` (see question_before) with `reason`; its id."""
    if reason not in REASONS:
        raise ValueError(f"unknown review reason {reason!r}")
    question = question_before(session, conversation_id, message_id, inclusive)
    if question is None:
        return None
    _add_signal(session, question, reason)
    _commit(session)
    return question.id


def set_feedback(
    session: Session, conversation_id: str, message_id: int, value: str, reason: str | None
) -> None:
    """The citizen's 👍/👎 on one bot message of their own conversation (the last click wins);
    a 👎 flags the question it answered."""
    if value not in FEEDBACK_VALUES or (reason is not None and reason not in FEEDBACK_REASONS):
        raise FeedbackRefused("评价内容不正确。")
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id or message.role != "bot":
        raise FeedbackRefused("没有找到这条回答。")
    message.feedback = value
    message.feedback_reason = reason if value == "down" else None
    message.feedback_at = utcnow()
    if value == "down":
        question = question_before(session, conversation_id, message_id, inclusive=False)
        if question is not None:
            _add_signal(session, question, "thumbs_down")
    _commit(session)


# --- the inbox ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenQuestion:
    """A flagged question no decision covers yet, with every reason it was flagged for."""

    message_id: int
    text: str
    channel: str
    created_at: datetime
    reasons: tuple[str, ...]


def open_questions(
    session: Session,
    since: datetime,
    until: datetime,
    channel: str | None = None,
    limit: int = 5000,
) -> list[OpenQuestion]:
    """Undecided flagged questions asked in [since, until), newest first (at most `limit`)."""
    query = (
        select(
            ReviewSignal.message_id,
            ReviewSignal.reason,
            ReviewSignal.channel,
            Message.text,
            Message.created_at,
        )
        .join(Message, Message.id == ReviewSignal.message_id)
        .where(
            ReviewSignal.decision_id.is_(None),
            ReviewSignal.created_at >= since,
            ReviewSignal.created_at < until,
        )
        .order_by(ReviewSignal.message_id.desc())
    )
    if channel:
        query = query.where(ReviewSignal.channel == channel)
    found: dict[int, OpenQuestion] = {}
    for message_id, reason, chan, text, created_at in session.execute(query):
        known = found.get(message_id)
        if known is None:
            if len(found) >= limit:
                break
            found[message_id] = OpenQuestion(message_id, text, chan, created_at, (reason,))
        elif reason not in known.reasons:
            found[message_id] = OpenQuestion(
                message_id, text, chan, created_at, (*known.reasons, reason)
            )
    return list(found.values())


def question_texts(session: Session, message_ids: Iterable[int]) -> list[str]:
    """The texts of these flagged questions, most asked first (for prefilled forms)."""
    ids = list(message_ids)[:MAX_DECISION_MESSAGES]
    if not ids:
        return []
    rows = session.execute(
        select(Message.text, func.count())
        .where(Message.id.in_(ids), Message.role == "user")
        .group_by(Message.text)
        .order_by(func.count().desc(), Message.text)
    )
    return [text for text, _ in rows]


MAX_DECISION_MESSAGES = 500


@dataclass(frozen=True)
class Decided:
    decision_id: int
    messages: int  # questions this decision took out of the inbox (others had been decided)


def decide(
    session: Session, message_ids: Sequence[int], action: str, detail: str, staff_id: int
) -> Decided:
    """Record a decision on these questions: every undecided signal of them points to it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown review action {action!r}")
    ids = list(dict.fromkeys(message_ids))[:MAX_DECISION_MESSAGES]
    decision = ReviewDecision(
        action=action,
        detail=detail[:DETAIL_MAX],
        staff_id=staff_id,
        message_count=0,
        created_at=utcnow(),
    )
    session.add(decision)
    session.flush()
    session.execute(
        update(ReviewSignal)
        .where(ReviewSignal.message_id.in_(ids), ReviewSignal.decision_id.is_(None))
        .values(decision_id=decision.id)
        .execution_options(synchronize_session=False)
    )
    covered = session.execute(
        select(func.count(func.distinct(ReviewSignal.message_id))).where(
            ReviewSignal.decision_id == decision.id
        )
    ).scalar_one()
    decision.message_count = covered
    session.commit()
    return Decided(decision.id, covered)


@dataclass(frozen=True)
class DecisionView:
    id: int
    action: str
    detail: str
    staff: str
    message_count: int
    created_at: datetime
    examples: tuple[str, ...]


def recent_decisions(session: Session, limit: int = 50, examples: int = 3) -> list[DecisionView]:
    rows = session.execute(
        select(ReviewDecision, StaffUser.display_name)
        .join(StaffUser, StaffUser.id == ReviewDecision.staff_id)
        .order_by(ReviewDecision.id.desc())
        .limit(limit)
    ).all()
    views = []
    for decision, staff in rows:
        texts = session.execute(
            select(Message.text)
            .join(ReviewSignal, ReviewSignal.message_id == Message.id)
            .where(ReviewSignal.decision_id == decision.id)
            .distinct()
            .limit(examples)
        ).scalars()
        views.append(
            DecisionView(
                decision.id,
                decision.action,
                decision.detail,
                staff,
                decision.message_count,
                decision.created_at,
                tuple(texts),
            )
        )
    return views
