"""The operations dashboard's numbers, for a date range [since, until) and optionally one channel.

Days are Beijing days (times are stored naive UTC). Per-day counts of conversations and
questions, topics and knowledge items come from the daily rollup (bot/db/rollup.py); the
rest reads the tables through the indexes of migration 0008 (bench/review_dashboard.py times
each query on a million messages). Satisfaction reads the `ratings` table through `rating_rows`:
every rating, of a handoff or of a conversation the bot handled alone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from bot.db import rollup
from bot.db.conversations import Conversation, Message
from bot.db.handoffs import Handoff, Ticket
from bot.db.knowledge import KnowledgeItem
from bot.db.models import ConsultationRequest
from bot.db.ratings import Rating
from bot.db.staff import StaffUser

BEIJING_OFFSET_HOURS = 8
TOP = 10


@dataclass(frozen=True)
class Range:
    since: datetime
    until: datetime
    channel: str | None = None


def beijing_day(session: Session, column: Any) -> ColumnElement[Any]:
    """The Beijing date (YYYY-MM-DD text) of a naive-UTC timestamp column, per dialect."""
    if session.get_bind().dialect.name == "postgresql":
        shifted = column + func.make_interval(0, 0, 0, 0, BEIJING_OFFSET_HOURS)
        return func.to_char(shifted, "YYYY-MM-DD")
    return func.date(column, f"+{BEIJING_OFFSET_HOURS} hours")


def _in_range(column: Any, span: Range) -> ColumnElement[bool]:
    return and_(column >= span.since, column < span.until)


def _channel_of(query: Select, conversation_id: Any, span: Range) -> Select:
    """Only rows of conversations on the chosen channel (no filter when none is chosen)."""
    if not span.channel:
        return query
    return query.where(
        conversation_id.in_(select(Conversation.id).where(Conversation.channel == span.channel))
    )


def _days(span: Range) -> tuple[dt.date, dt.date]:
    return rollup.beijing_date(span.since), rollup.beijing_date(span.until)


def conversations_per_day(session: Session, span: Range) -> list[tuple[str, int, int]]:
    """(day, conversations started, of them handed to a person at some point)."""
    first, end = _days(span)
    started = dict(rollup.counts(session, "conversations", first, end, span.channel))
    day = beijing_day(session, Conversation.created_at).label("day")
    handed_query = (
        select(day, func.count(distinct(Handoff.conversation_id)))
        .join(Conversation, Conversation.id == Handoff.conversation_id)
        .where(_in_range(Conversation.created_at, span))
        .group_by(day)
    )
    if span.channel:
        handed_query = handed_query.where(Conversation.channel == span.channel)
    handed = dict(session.execute(handed_query).all())
    return [
        (d.isoformat(), n, int(handed.get(d.isoformat(), 0))) for d, n in sorted(started.items())
    ]


def questions_per_day(session: Session, span: Range) -> list[tuple[str, int, int]]:
    """(day, citizen messages, of them flagged for review: not answered well)."""
    first, end = _days(span)
    asked = dict(rollup.counts(session, "questions", first, end, span.channel))
    flagged = dict(rollup.counts(session, "flagged", first, end, span.channel))
    return [(d.isoformat(), n, flagged.get(d, 0)) for d, n in sorted(asked.items())]


def top_topics(session: Session, span: Range, limit: int = TOP) -> list[tuple[str, int]]:
    first, end = _days(span)
    found = rollup.counts(session, "topic", first, end, span.channel, by="key")
    return sorted(found, key=lambda pair: (-pair[1], pair[0]))[:limit]


def top_items(session: Session, span: Range, limit: int = TOP) -> list[tuple[str, str, int]]:
    """(item key, its question, times answered with it)."""
    first, end = _days(span)
    found = rollup.counts(session, "item", first, end, span.channel, by="key")
    top = sorted(found, key=lambda pair: (-pair[1], pair[0]))[:limit]
    questions = dict(
        session.execute(
            select(KnowledgeItem.key, KnowledgeItem.question).where(
                KnowledgeItem.key.in_([k for k, _ in top])
            )
        ).all()
    )
    return [(k, questions.get(k) or k, n) for k, n in top]


def handoffs_per_day(session: Session, span: Range) -> list[tuple[str, int, int]]:
    """(day, handoffs requested, of them taken by a person)."""
    day = beijing_day(session, Handoff.requested_at).label("day")
    query = _channel_of(
        select(day, func.count(), func.count(Handoff.accepted_at))
        .where(_in_range(Handoff.requested_at, span))
        .group_by(day)
        .order_by(day),
        Handoff.conversation_id,
        span,
    )
    return [(d, int(n), int(a)) for d, n, a in session.execute(query)]


def wait_seconds(session: Session, span: Range) -> list[float]:
    """How long each handoff taken in the range waited for a person, in seconds."""
    query = _channel_of(
        select(Handoff.requested_at, Handoff.accepted_at).where(
            _in_range(Handoff.requested_at, span), Handoff.accepted_at.is_not(None)
        ),
        Handoff.conversation_id,
        span,
    )
    return [(a - r).total_seconds() for r, a in session.execute(query)]


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (p50, p95), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(share * 100) * len(ordered) // 100))  # ceil(share * n)
    return ordered[min(rank, len(ordered)) - 1]


def per_agent(session: Session, span: Range) -> list[tuple[str, int]]:
    """(agent, conversations they took) for handoffs requested in the range."""
    query = _channel_of(
        select(StaffUser.display_name, func.count())
        .select_from(Handoff)
        .join(StaffUser, StaffUser.id == Handoff.agent_id)
        .where(_in_range(Handoff.requested_at, span))
        .group_by(StaffUser.id, StaffUser.display_name)
        .order_by(func.count().desc(), StaffUser.display_name),
        Handoff.conversation_id,
        span,
    )
    return [(name, int(n)) for name, n in session.execute(query)]


def rating_rows(span: Range) -> Select:
    """Every rating given in the range: (score 1–5, conversation id), handoffs' and the bot's
    (offered but unanswered ratings have no score and do not count)."""
    return select(
        Rating.score.label("score"), Rating.conversation_id.label("conversation_id")
    ).where(Rating.score.is_not(None), _in_range(Rating.rated_at, span))


def rating_distribution(session: Session, span: Range) -> dict[int, int]:
    """{score: ratings} for scores 5…1 (zeros included)."""
    rows = rating_rows(span).subquery()
    query = _channel_of(
        select(rows.c.score, func.count()).group_by(rows.c.score), rows.c.conversation_id, span
    )
    found = Counter({int(s): int(n) for s, n in session.execute(query)})
    return {score: found.get(score, 0) for score in (5, 4, 3, 2, 1)}


def by_status(session: Session, span: Range, kind: str) -> list[tuple[str, int]]:
    """Leads (`leads`) or tickets (`tickets`) created in the range, by status."""
    model: Any = ConsultationRequest if kind == "leads" else Ticket
    query = _channel_of(
        select(model.status, func.count())
        .where(_in_range(model.created_at, span))
        .group_by(model.status)
        .order_by(model.status),
        model.conversation_id,
        span,
    )
    return [(status, int(n)) for status, n in session.execute(query)]


def feedback_counts(session: Session, span: Range) -> dict[str, int]:
    """👍 and 👎 given in the range (by when they were given)."""
    query = _channel_of(
        select(Message.feedback, func.count())
        .where(_in_range(Message.feedback_at, span), Message.feedback.is_not(None))
        .group_by(Message.feedback),
        Message.conversation_id,
        span,
    )
    found = dict(session.execute(query).all())
    return {"up": int(found.get("up", 0)), "down": int(found.get("down", 0))}
