"""Daily counts for the dashboard, kept as the events happen (issue 17).

Counting a year of messages by day took 0.5–1 s on a million messages (bench/review_dashboard.py),
so the counts the dashboard needs per day are kept in `daily_counts`, one row per (Beijing day,
channel, metric, key), bumped in the same transaction as the row they count:

    conversations   a conversation started                     (key "")
    questions       a citizen message stored                   (key "")
    flagged         a question first put in the review inbox    (key "")
    topic           a question's topic noted by the bot         (key: the topic)
    item            a question answered with a knowledge item   (key: the item key)

`rebuild` recomputes every row from the tables (migration 0008 runs it on existing data).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Date, Integer, String, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.db.models import Base

BEIJING = dt.timezone(dt.timedelta(hours=8))
METRICS = ("conversations", "questions", "flagged", "topic", "item")


class DailyCount(Base):
    __tablename__ = "daily_counts"

    day = Column(Date, primary_key=True)  # Beijing date
    channel = Column(String(20), primary_key=True)
    metric = Column(String(16), primary_key=True)
    key = Column(String(80), primary_key=True, default="")
    n = Column(Integer, nullable=False, default=0)


def beijing_date(moment: dt.datetime) -> dt.date:
    """The Beijing date of a stored (naive UTC) time."""
    return moment.replace(tzinfo=dt.timezone.utc).astimezone(BEIJING).date()


def bump(
    session: Session, moment: dt.datetime, channel: str, metric: str, key: str = "", by: int = 1
) -> None:
    """Add `by` to one count, in the caller's transaction (not committed)."""
    values = {"day": beijing_date(moment), "channel": channel, "metric": metric, "key": key}
    dialect = session.get_bind().dialect.name
    insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(DailyCount).values(**values, n=by)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel", "metric", "key"],
        set_={"n": DailyCount.n + statement.excluded.n},
    )
    session.execute(statement)


def counts(
    session: Session,
    metric: str,
    first_day: dt.date,
    end_day: dt.date,
    channel: str | None,
    by: str = "day",
) -> list[tuple[Any, int]]:
    """Sums of one metric over days [first_day, end_day), per day (`by="day"`) or per key."""
    group = DailyCount.day if by == "day" else DailyCount.key
    query = (
        select(group, func.sum(DailyCount.n))
        .where(
            DailyCount.metric == metric,
            DailyCount.day >= first_day,
            DailyCount.day < end_day,
        )
        .group_by(group)
    )
    if channel:
        query = query.where(DailyCount.channel == channel)
    return [(g, int(n)) for g, n in session.execute(query)]


def rebuild(session: Session) -> None:
    """Recompute every count from the tables (committed). Reads rows in Python: for a migration
    or a repair, not for a request."""
    from bot.db.conversations import Conversation, Message
    from bot.db.review import ReviewSignal

    session.execute(delete(DailyCount))
    totals: dict[tuple[dt.date, str, str, str], int] = {}

    def add(moment: dt.datetime, channel: str, metric: str, key: str = "") -> None:
        index = (beijing_date(moment), channel, metric, key)
        totals[index] = totals.get(index, 0) + 1

    for created_at, channel in session.execute(
        select(Conversation.created_at, Conversation.channel)
    ):
        add(created_at, channel, "conversations")
    rows = session.execute(
        select(Message.created_at, Conversation.channel, Message.topic, Message.knowledge_key)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.role == "user")
    )
    for created_at, channel, topic, key in rows:
        add(created_at, channel, "questions")
        if topic:
            add(created_at, channel, "topic", topic)
        if key:
            add(created_at, channel, "item", key)
    first_signals = select(
        func.min(ReviewSignal.created_at), func.min(ReviewSignal.channel)
    ).group_by(ReviewSignal.message_id)
    for created_at, channel in session.execute(first_signals):
        add(created_at, channel, "flagged")
    session.add_all(
        DailyCount(day=day, channel=channel, metric=metric, key=key, n=n)
        for (day, channel, metric, key), n in totals.items()
    )
    session.commit()
