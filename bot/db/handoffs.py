"""Human handoff: a conversation taken over by staff, the tickets left out of hours, staff notes.

A handoff moves waiting → active → (returned | closed); a request that finds nobody (out of
hours, nobody online) is stored as `offline` and the user may leave a ticket.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from bot.db.conversations import utcnow
from bot.db.models import Base

WAITING, ACTIVE, RETURNED, CLOSED, OFFLINE = "waiting", "active", "returned", "closed", "offline"
OPEN_STATES = (WAITING, ACTIVE)
# Why the user reached staff.
REASON_USER, REASON_FALLBACK, REASON_BUSY = "user", "fallback", "busy"
# The five levels government services use; stored as 5 (非常满意) … 1 (非常不满意).
RATINGS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
TICKET_OPEN, TICKET_CALLED_BACK, TICKET_CLOSED = "open", "called_back", "closed"
TICKET_STATES = (TICKET_OPEN, TICKET_CALLED_BACK, TICKET_CLOSED)


class Handoff(Base):
    __tablename__ = "handoffs"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status = Column(String(10), nullable=False, default=WAITING, index=True)
    reason = Column(String(10), nullable=False, default=REASON_USER)
    intents = Column(JSON)  # what the user asked the bot about, oldest first
    requested_at = Column(DateTime, nullable=False, default=utcnow)
    accepted_at = Column(DateTime)
    ended_at = Column(DateTime)
    agent_id = Column(Integer, ForeignKey("staff_users.id"), index=True)
    rating = Column(Integer)  # 1..5, see RATINGS
    rating_comment = Column(Text)
    rated_at = Column(DateTime)
    # False until Rasa has been told to resume the conversation after this handoff ended.
    rasa_resumed = Column(Boolean, nullable=False, default=False)


class Ticket(Base):
    __tablename__ = "tickets"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    handoff_id = Column(Integer, ForeignKey("handoffs.id"))
    phone = Column(String(20), nullable=False)
    message = Column(Text, nullable=False)
    status = Column(String(12), nullable=False, default=TICKET_OPEN, index=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    handled_by = Column(Integer, ForeignKey("staff_users.id"))


class StaffNote(Base):
    """A private note on a conversation: staff see it, the citizen never does."""

    __tablename__ = "staff_notes"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    author_id = Column(Integer, ForeignKey("staff_users.id"), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


def open_handoff(session: Session, conversation_id: str) -> Handoff | None:
    """The conversation's waiting or active handoff, if any."""
    return session.execute(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(OPEN_STATES))
        .order_by(Handoff.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def latest_handoff(session: Session, conversation_id: str) -> Handoff | None:
    return session.execute(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id)
        .order_by(Handoff.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def waiting_queue(session: Session) -> list[Handoff]:
    """Waiting handoffs, first come first served."""
    return list(
        session.execute(
            select(Handoff).where(Handoff.status == WAITING).order_by(Handoff.id)
        ).scalars()
    )


def active_handoffs(session: Session) -> list[Handoff]:
    return list(
        session.execute(
            select(Handoff).where(Handoff.status == ACTIVE).order_by(Handoff.id)
        ).scalars()
    )


def queue_position(session: Session, handoff: Handoff) -> int:
    """1 for the next in line."""
    ahead = session.execute(
        select(func.count(Handoff.id)).where(Handoff.status == WAITING, Handoff.id < handoff.id)
    ).scalar_one()
    return int(ahead) + 1


def create_handoff(
    session: Session, conversation_id: str, reason: str, intents: list[str], status: str
) -> Handoff:
    handoff = Handoff(
        conversation_id=conversation_id,
        status=status,
        reason=reason,
        intents=intents,
        requested_at=utcnow(),
        rasa_resumed=False,  # Rasa paused the conversation even when nobody could take it
    )
    if status == OFFLINE:
        handoff.ended_at = handoff.requested_at
    session.add(handoff)
    session.commit()
    return handoff


def claim(session: Session, handoff_id: int, agent_id: int) -> bool:
    """Give a waiting handoff to an agent. One UPDATE, so of two agents at once exactly one wins."""
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == WAITING)
        .values(status=ACTIVE, agent_id=agent_id, accepted_at=utcnow())
    )
    session.commit()
    return result.rowcount == 1


def release(session: Session, handoff_id: int) -> bool:
    """A waiting handoff nobody can take becomes offline (False if it was accepted meanwhile)."""
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == WAITING)
        .values(status=OFFLINE, ended_at=utcnow())
    )
    session.commit()
    return result.rowcount == 1


def end(session: Session, handoff: Handoff, status: str) -> None:
    handoff.status = status
    handoff.ended_at = utcnow()
    session.commit()


def routing_state(session: Session, conversation_id: str) -> tuple[Handoff | None, list[Handoff]]:
    """In one query, what a new user message needs: the open handoff (the message goes to staff)
    and the ended handoffs Rasa has not been told to resume after (before it goes to the bot)."""
    rows = session.execute(
        select(Handoff)
        .where(
            Handoff.conversation_id == conversation_id,
            Handoff.status.in_(OPEN_STATES) | Handoff.rasa_resumed.is_(False),
        )
        .order_by(Handoff.id.desc())
    ).scalars()
    found = list(rows)
    open_one = next((h for h in found if h.status in OPEN_STATES), None)
    return open_one, [h for h in found if h.status not in OPEN_STATES]


def unresumed(session: Session, conversation_id: str) -> list[Handoff]:
    """Ended handoffs whose pause Rasa has not yet been told to lift."""
    return list(
        session.execute(
            select(Handoff).where(
                Handoff.conversation_id == conversation_id,
                Handoff.status.in_((RETURNED, CLOSED, OFFLINE)),
                Handoff.rasa_resumed.is_(False),
            )
        ).scalars()
    )


def notes(session: Session, conversation_id: str) -> list[StaffNote]:
    return list(
        session.execute(
            select(StaffNote)
            .where(StaffNote.conversation_id == conversation_id)
            .order_by(StaffNote.id)
        ).scalars()
    )
