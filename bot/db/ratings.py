"""Every rating a citizen gives (of a handoff, or of a conversation the bot handled alone) and
the follow-up (回访) a bad one opens: 不满意 and 非常不满意 are called back within a number of
working days.

A conversation is offered the bot-only rating at most once (unique per conversation and subject);
a handoff is rated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.db.conversations import Conversation, utcnow
from bot.db.handoffs import CLOSED as HANDOFF_CLOSED
from bot.db.handoffs import Handoff, RatingRefused, Ticket
from bot.db.models import Base, ConsultationRequest
from bot.db.staff import StaffUser
from bot.domain.workdays import WorkCalendar

BOT_SUBJECT = "bot"
# What made the bot-only card appear.
TRIGGERS = ("thank", "goodbye", "idle")
BAD_SCORES = (1, 2)  # 不满意, 非常不满意
SATISFIED_SCORES = (3, 4, 5)  # 满意率 = (非常满意 + 满意 + 基本满意) / all
FOLLOW_OPEN, FOLLOW_CLOSED = "open", "closed"
# How the citizen was reached; "no_phone": they left no number, recorded as such.
CONTACT_OUTCOMES = {
    "reached": "已电话回访",
    "unreachable": "多次联系未接通",
    "no_phone": "未留联系电话",
}


def handoff_subject(handoff_id: int) -> str:
    return f"handoff-{handoff_id}"


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("conversation_id", "subject", name="uq_rating_subject"),)

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    subject = Column(String(30), nullable=False)  # "bot" or "handoff-<id>"
    channel = Column(String(20), nullable=False)
    trigger = Column(String(10), nullable=False)  # handoff | thank | goodbye | idle
    handoff_id = Column(Integer, ForeignKey("handoffs.id"))
    agent_id = Column(Integer, ForeignKey("staff_users.id"), index=True)
    topic = Column(String(50))  # the intent the conversation was about, when known
    offered_at = Column(DateTime, nullable=False, default=utcnow)
    score = Column(Integer)  # 1..5 (bot.db.handoffs.RATINGS); NULL while only offered
    comment = Column(Text)
    rated_at = Column(DateTime, index=True)


class FollowUp(Base):
    """The 回访 of a bad rating: due on a working day, assigned, contacted, fixed, closed."""

    __tablename__ = "follow_ups"

    id = Column(Integer, primary_key=True)
    rating_id = Column(
        Integer, ForeignKey("ratings.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    status = Column(String(10), nullable=False, default=FOLLOW_OPEN, index=True)
    due_on = Column(Date, nullable=False)
    assignee_id = Column(Integer, ForeignKey("staff_users.id"), index=True)
    phone = Column(String(20))  # the number the citizen left (lead or ticket), if any
    contact_outcome = Column(String(20))  # CONTACT_OUTCOMES
    contact_note = Column(Text)
    fix_note = Column(Text)  # what was put right
    created_at = Column(DateTime, nullable=False, default=utcnow)
    closed_at = Column(DateTime)
    closed_by = Column(Integer, ForeignKey("staff_users.id"))


# ---- offering and saving ------------------------------------------------------------------------


def _channel(session: Session, conversation_id: str) -> str:
    conversation = session.get(Conversation, conversation_id)
    return conversation.channel if conversation is not None else "webchat"


def bot_rating(session: Session, conversation_id: str) -> Rating | None:
    """The conversation's bot-only rating (offered, maybe given)."""
    return session.execute(
        select(Rating).where(
            Rating.conversation_id == conversation_id, Rating.subject == BOT_SUBJECT
        )
    ).scalar_one_or_none()


def offer_bot_rating(session: Session, conversation_id: str, trigger: str) -> Rating | None:
    """Record that the card is shown now; None when it was offered before (at most once)."""
    if bot_rating(session, conversation_id) is not None:
        return None
    rating = Rating(
        conversation_id=conversation_id,
        subject=BOT_SUBJECT,
        channel=_channel(session, conversation_id),
        trigger=trigger,
        offered_at=utcnow(),
    )
    session.add(rating)
    try:
        session.commit()
    except IntegrityError:  # offered at the same moment by another gateway
        session.rollback()
        return None
    return rating


def contact_phone(session: Session, conversation_id: str) -> str | None:
    """The latest number the citizen left in this conversation: a lead's or a ticket's."""
    lead_phone = session.execute(
        select(ConsultationRequest.phone, ConsultationRequest.created_at)
        .where(ConsultationRequest.conversation_id == conversation_id)
        .order_by(ConsultationRequest.id.desc())
        .limit(1)
    ).first()
    ticket_phone = session.execute(
        select(Ticket.phone, Ticket.created_at)
        .where(Ticket.conversation_id == conversation_id)
        .order_by(Ticket.id.desc())
        .limit(1)
    ).first()
    found = [row for row in (lead_phone, ticket_phone) if row is not None]
    return max(found, key=lambda row: row[1])[0] if found else None


def _rate(
    session: Session,
    rating: Rating,
    score: int,
    comment: str,
    rated_on: date,
    calendar: WorkCalendar,
    due_days: int,
) -> None:
    """Fill in the score; a bad one opens its follow-up. Not committed."""
    rating.score = score
    rating.comment = comment or None
    rating.rated_at = utcnow()
    if score in BAD_SCORES:
        session.flush()  # the rating's id
        session.add(
            FollowUp(
                rating_id=rating.id,
                status=FOLLOW_OPEN,
                due_on=calendar.add_workdays(rated_on, due_days),
                phone=contact_phone(session, rating.conversation_id),
                created_at=rating.rated_at,
            )
        )


def save_bot_rating(
    session: Session,
    conversation_id: str,
    score: int,
    comment: str,
    topic: str | None,
    rated_on: date,
    calendar: WorkCalendar,
    due_days: int,
) -> RatingRefused | None:
    """Rate the conversation the bot handled (once, after the card was offered)."""
    rating = bot_rating(session, conversation_id)
    if rating is None:
        return RatingRefused.NOT_FOUND
    if rating.score is not None:
        return RatingRefused.ALREADY_RATED
    rating.topic = topic
    _rate(session, rating, score, comment, rated_on, calendar, due_days)
    session.commit()
    return None


def save_handoff_rating(
    session: Session,
    conversation_id: str,
    handoff_id: int,
    score: int,
    comment: str,
    rated_on: date,
    calendar: WorkCalendar,
    due_days: int,
) -> RatingRefused | None:
    """Rate a closed handoff of the conversation once (on the handoff and as a Rating)."""
    handoff = session.get(Handoff, handoff_id)
    if handoff is None or handoff.conversation_id != conversation_id:
        return RatingRefused.NOT_FOUND
    if handoff.status != HANDOFF_CLOSED:
        return RatingRefused.NOT_CLOSED
    if handoff.rating is not None:
        return RatingRefused.ALREADY_RATED
    handoff.rating = score
    handoff.rating_comment = comment or None
    handoff.rated_at = utcnow()
    intents = [i for i in handoff.intents or [] if isinstance(i, str)]
    rating = Rating(
        conversation_id=conversation_id,
        subject=handoff_subject(handoff_id),
        channel=_channel(session, conversation_id),
        trigger="handoff",
        handoff_id=handoff_id,
        agent_id=handoff.agent_id,
        topic=intents[-1] if intents else None,
        offered_at=handoff.ended_at or handoff.rated_at,
    )
    session.add(rating)
    _rate(session, rating, score, comment, rated_on, calendar, due_days)
    session.commit()
    return None


def add_comment(session: Session, conversation_id: str, comment: str, since: datetime) -> bool:
    """A comment sent after the score (WeChat: "意见 …"): on the conversation's latest rating,
    given after `since` and still without one."""
    rating = session.execute(
        select(Rating)
        .where(Rating.conversation_id == conversation_id, Rating.rated_at >= since)
        .order_by(Rating.rated_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if rating is None or rating.comment:
        return False
    rating.comment = comment
    if rating.handoff_id is not None:
        handoff = session.get(Handoff, rating.handoff_id)
        if handoff is not None:
            handoff.rating_comment = comment
    session.commit()
    return True


# ---- the admin's ratings page -------------------------------------------------------------------


@dataclass(frozen=True)
class RatingFilter:
    rated_from: datetime | None = None  # naive UTC, inclusive
    rated_before: datetime | None = None  # naive UTC, exclusive
    channel: str = ""
    topic: str = ""
    agent_id: int | None = None  # 0: the bot alone
    bad_only: bool = False


@dataclass(frozen=True)
class RatingRow:
    rating: Rating
    agent_name: str | None
    follow_up: FollowUp | None
    assignee_name: str | None


def list_ratings(session: Session, flt: RatingFilter, limit: int) -> list[RatingRow]:
    """Given ratings the filter finds, newest first, with their follow-up."""
    agent, assignee = aliased(StaffUser), aliased(StaffUser)
    query = (
        select(Rating, agent.display_name, FollowUp, assignee.display_name)
        .outerjoin(agent, agent.id == Rating.agent_id)
        .outerjoin(FollowUp, FollowUp.rating_id == Rating.id)
        .outerjoin(assignee, assignee.id == FollowUp.assignee_id)
        .where(Rating.score.is_not(None))
    )
    if flt.rated_from is not None:
        query = query.where(Rating.rated_at >= flt.rated_from)
    if flt.rated_before is not None:
        query = query.where(Rating.rated_at < flt.rated_before)
    if flt.channel:
        query = query.where(Rating.channel == flt.channel)
    if flt.topic:
        query = query.where(Rating.topic == flt.topic)
    if flt.agent_id == 0:
        query = query.where(Rating.agent_id.is_(None))
    elif flt.agent_id is not None:
        query = query.where(Rating.agent_id == flt.agent_id)
    if flt.bad_only:
        query = query.where(Rating.score.in_(BAD_SCORES))
    rows = session.execute(query.order_by(Rating.rated_at.desc()).limit(limit)).all()
    return [RatingRow(r, a, f, n) for r, a, f, n in rows]


# ---- follow-ups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpRow:
    follow_up: FollowUp
    rating: Rating
    assignee_name: str | None
    agent_name: str | None  # who handled the rated handoff


def list_follow_ups(
    session: Session, status: str | None, assignee_id: int | None, limit: int
) -> list[FollowUpRow]:
    """Follow-ups (of `status`, or all), the earliest due first; only `assignee_id`'s if given."""
    assignee, agent = aliased(StaffUser), aliased(StaffUser)
    query = (
        select(FollowUp, Rating, assignee.display_name, agent.display_name)
        .join(Rating, Rating.id == FollowUp.rating_id)
        .outerjoin(assignee, assignee.id == FollowUp.assignee_id)
        .outerjoin(agent, agent.id == Rating.agent_id)
    )
    if status is not None:
        query = query.where(FollowUp.status == status)
    if assignee_id is not None:
        query = query.where(FollowUp.assignee_id == assignee_id)
    rows = session.execute(query.order_by(FollowUp.due_on, FollowUp.id).limit(limit)).all()
    return [FollowUpRow(f, r, a, g) for f, r, a, g in rows]


def follow_up_counts(session: Session, assignee_id: int | None = None) -> dict[str, int]:
    query = select(FollowUp.status, func.count()).group_by(FollowUp.status)
    if assignee_id is not None:
        query = query.where(FollowUp.assignee_id == assignee_id)
    counts = dict(session.execute(query).all())
    return {s: int(counts.get(s, 0)) for s in (FOLLOW_OPEN, FOLLOW_CLOSED)}


def get_follow_up(session: Session, follow_up_id: int) -> FollowUp | None:
    return session.get(FollowUp, follow_up_id)


def assign_follow_up(session: Session, follow_up_id: int, assignee_id: int | None) -> bool:
    done = session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up_id, FollowUp.status == FOLLOW_OPEN)
        .values(assignee_id=assignee_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return done == 1


def close_follow_up(
    session: Session,
    follow_up_id: int,
    staff_id: int,
    contact_outcome: str,
    contact_note: str,
    fix_note: str,
) -> bool:
    """Close an open follow-up with how the citizen was reached and what was fixed."""
    done = session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up_id, FollowUp.status == FOLLOW_OPEN)
        .values(
            status=FOLLOW_CLOSED,
            contact_outcome=contact_outcome,
            contact_note=contact_note or None,
            fix_note=fix_note or None,
            closed_at=utcnow(),
            closed_by=staff_id,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return done == 1
