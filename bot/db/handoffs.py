"""Human handoff: a conversation taken over by staff, the tickets left out of hours, staff notes.

A handoff moves waiting → active → (returned | closed); a request that finds nobody (out of
hours, nobody online) is stored as `offline` and the user may leave a ticket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from bot.db.conversations import Conversation, Message, history, utcnow
from bot.db.models import Base
from bot.db.staff import StaffUser, display_name_of

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
    __table_args__ = (
        Index("ix_tickets_conversation_client", "conversation_id", "client_id", unique=True),
    )

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
    # The web page's id for the ticket frame: a resent frame finds this ticket (NULL: WeChat).
    client_id = Column(String(64))


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


def end(session: Session, handoff_id: int, status: str, agent_id: int | None) -> bool:
    """End an active handoff now (returned or closed) if it is still `agent_id`'s: one
    conditional UPDATE, so a close racing a transfer or another close has one winner. False
    when it had already ended or moved to another agent."""
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == ACTIVE, _agent_is(agent_id))
        .values(status=status, ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def _agent_is(agent_id: int | None) -> ColumnElement[bool]:
    return Handoff.agent_id.is_(None) if agent_id is None else Handoff.agent_id == agent_id


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


def get_handoff(session: Session, handoff_id: int) -> Handoff | None:
    return session.get(Handoff, handoff_id)


def open_or_create(
    session: Session, conversation_id: str, reason: str, intents: list[str], status: str
) -> tuple[Handoff, int]:
    """The conversation's open handoff, else a new one with `status` (waiting or offline); with
    its queue position."""
    handoff = open_handoff(session, conversation_id)
    if handoff is None:
        handoff = create_handoff(session, conversation_id, reason, intents, status)
    return handoff, queue_position(session, handoff)


def assign(
    session: Session, handoff_id: int, agent_id: int, from_agent_id: int | None
) -> Handoff | None:
    """Give an active handoff of `from_agent_id` to another agent (a transfer): one conditional
    UPDATE. None when it no longer is active and `from_agent_id`'s (closed, or moved meanwhile)."""
    result = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == ACTIVE, _agent_is(from_agent_id))
        .values(agent_id=agent_id)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != 1:
        return None
    handoff = session.get(Handoff, handoff_id)
    if handoff is not None:
        session.refresh(handoff)
    return handoff


def mark_resumed(session: Session, handoff_ids: Iterable[int]) -> None:
    """Rasa has been told to resume the conversation after these ended handoffs."""
    session.execute(
        update(Handoff)
        .where(Handoff.id.in_(list(handoff_ids)))
        .values(rasa_resumed=True)
        .execution_options(synchronize_session=False)
    )
    session.commit()


class RatingRefused(Enum):
    """Why a rating was not saved."""

    NOT_FOUND = "not_found"  # no such handoff in this conversation
    NOT_CLOSED = "not_closed"  # not closed (yet): only a closed handoff is rated
    ALREADY_RATED = "already_rated"


def has_ticket(session: Session, handoff_id: int) -> bool:
    """Whether the user left a ticket after this (offline) handoff."""
    found = session.execute(select(Ticket.id).where(Ticket.handoff_id == handoff_id).limit(1))
    return found.first() is not None


@dataclass(frozen=True)
class CitizenHandoff:
    """What the citizen's handoff frame needs about the conversation's latest handoff."""

    handoff: Handoff | None
    position: int | None = None  # in the queue, while waiting
    agent_name: str | None = None  # the assigned agent's display name
    has_ticket: bool = False  # offline handoffs: the user has left a ticket


def citizen_handoff(session: Session, conversation_id: str) -> CitizenHandoff:
    """The latest handoff of the conversation, with only what its state needs read."""
    handoff = latest_handoff(session, conversation_id)
    if handoff is None or handoff.status == RETURNED:
        return CitizenHandoff(handoff)
    if handoff.status == OFFLINE:
        return CitizenHandoff(handoff, has_ticket=has_ticket(session, handoff.id))
    position = queue_position(session, handoff) if handoff.status == WAITING else None
    agent_name = display_name_of(session, handoff.agent_id) if handoff.agent_id else None
    return CitizenHandoff(handoff, position, agent_name)


def history_with_latest_handoff(
    session: Session, conversation_id: str, limit: int
) -> tuple[list[Message], Handoff | None]:
    """The conversation's latest `limit` messages (oldest first) and its latest handoff."""
    return history(session, conversation_id, limit=limit), latest_handoff(session, conversation_id)


def add_note(session: Session, conversation_id: str, author_id: int, text: str) -> StaffNote:
    note = StaffNote(conversation_id=conversation_id, author_id=author_id, text=text)
    session.add(note)
    session.commit()
    return note


# ---- what the staff console lists -----------------------------------------------------------


@dataclass(frozen=True)
class HandoffSummary:
    """A handoff with what the console shows beside it."""

    handoff: Handoff
    channel: str
    agent_name: str | None  # the assigned agent's display name (None: unassigned or unknown)
    last_user_text: str | None  # the user's latest message in the conversation


# The console gets one page of the waiting queue (the next to take) and at most ACTIVE_CAP
# conversations in service: a flood of waiting handoffs must not make every change a huge frame.
QUEUE_PAGE = 50
ACTIVE_CAP = 200


@dataclass(frozen=True)
class QueueSnapshot:
    waiting: list[HandoffSummary]  # first come first served: one page from waiting_offset
    active: list[HandoffSummary]
    agents: list[tuple[int, str]]  # active staff accounts (id, display name), by name
    waiting_total: int = 0
    active_total: int = 0
    waiting_offset: int = 0


@dataclass(frozen=True)
class ConversationDetail:
    summary: HandoffSummary | None  # of the latest handoff
    messages: list[Message]  # the latest HISTORY_LIMIT, oldest first
    notes: list[tuple[StaffNote, str | None]]  # with the author's display name


def _summary_query() -> Select:
    """Handoffs with their conversation's channel, agent name and the user's latest message:
    one query however many handoffs it returns."""
    agent = aliased(StaffUser)
    last_user_text = (
        select(Message.text)
        .where(Message.conversation_id == Handoff.conversation_id, Message.role == "user")
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(Handoff)
        .scalar_subquery()
    )
    return (
        select(Handoff, Conversation.channel, agent.display_name, last_user_text)
        .outerjoin(Conversation, Conversation.id == Handoff.conversation_id)
        .outerjoin(agent, agent.id == Handoff.agent_id)
    )


def _summary(row: Row | tuple) -> HandoffSummary:
    handoff, channel, agent_name, last_user_text = row
    return HandoffSummary(handoff, channel or "webchat", agent_name, last_user_text)


def queue_snapshot(
    session: Session, waiting_offset: int = 0, page: int = QUEUE_PAGE
) -> QueueSnapshot:
    """One page of the waiting handoffs and the active ones (capped), with their summaries and
    totals, in one query (window functions number each state's handoffs); the active staff in
    a second."""
    numbered = (
        select(
            Handoff.id.label("id"),
            func.row_number().over(partition_by=Handoff.status, order_by=Handoff.id).label("n"),
            func.count().over(partition_by=Handoff.status).label("total"),
        )
        .where(Handoff.status.in_(OPEN_STATES))
        .subquery()
    )
    waiting_offset = max(0, waiting_offset)
    in_page = or_(
        and_(
            Handoff.status == WAITING,
            numbered.c.n > waiting_offset,
            numbered.c.n <= waiting_offset + page,
        ),
        and_(Handoff.status == ACTIVE, numbered.c.n <= ACTIVE_CAP),
    )
    rows = session.execute(
        _summary_query()
        .add_columns(numbered.c.total)
        .join(numbered, numbered.c.id == Handoff.id)
        .where(in_page)
        .order_by(Handoff.id)
    ).all()
    summaries = [_summary(row[:4]) for row in rows]
    totals = {row[0].status: int(row[4]) for row in rows}
    agents = session.execute(
        select(StaffUser.id, StaffUser.display_name)
        .where(StaffUser.active.is_(True))
        .order_by(StaffUser.display_name)
    ).all()
    return QueueSnapshot(
        waiting=[s for s in summaries if s.handoff.status == WAITING],
        active=[s for s in summaries if s.handoff.status == ACTIVE],
        agents=[(agent_id, name) for agent_id, name in agents],
        waiting_total=totals.get(WAITING, 0),
        active_total=totals.get(ACTIVE, 0),
        waiting_offset=waiting_offset,
    )


def waiting_summary(session: Session, handoff_id: int) -> tuple[HandoffSummary, int] | None:
    """A waiting handoff's summary and queue position (None when it no longer waits)."""
    row = session.execute(
        _summary_query().where(Handoff.id == handoff_id, Handoff.status == WAITING)
    ).first()
    if row is None:
        return None
    found = _summary(row)
    return found, queue_position(session, found.handoff)


def conversation_detail(session: Session, conversation_id: str) -> ConversationDetail:
    """What the console shows of one conversation: its latest handoff, messages and notes."""
    latest = session.execute(
        _summary_query()
        .where(Handoff.conversation_id == conversation_id)
        .order_by(Handoff.id.desc())
        .limit(1)
    ).first()
    notes = session.execute(
        select(StaffNote, StaffUser.display_name)
        .outerjoin(StaffUser, StaffUser.id == StaffNote.author_id)
        .where(StaffNote.conversation_id == conversation_id)
        .order_by(StaffNote.id)
    ).all()
    return ConversationDetail(
        summary=_summary(latest) if latest is not None else None,
        messages=history(session, conversation_id),
        notes=[(note, author) for note, author in notes],
    )
