"""Tickets: a call-back request (phone and question) left when no agent could take the handoff.

The Ticket table is declared in bot/db/handoffs.py; these are its queries for the handoff desk
and the staff console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from bot.db.conversations import ensure_conversation, utcnow
from bot.db.handoffs import (
    OFFLINE,
    TICKET_CALLED_BACK,
    TICKET_CLOSED,
    TICKET_OPEN,
    TICKET_STATES,
    Ticket,
    latest_handoff,
)
from bot.db.staff import StaffUser

# Tickets only move forward; open → closed directly is allowed (e.g. a test or spam message).
TICKET_MOVES: dict[str, tuple[str, ...]] = {
    TICKET_OPEN: (TICKET_CALLED_BACK, TICKET_CLOSED),
    TICKET_CALLED_BACK: (TICKET_CLOSED,),
    TICKET_CLOSED: (),
}


class NoOfflineHandoff(Exception):
    """A ticket that must follow an offline handoff (the web chat's card) found none."""


def create_ticket(
    session: Session,
    conversation_id: str,
    phone: str,
    message: str,
    *,
    channel: str = "webchat",
    client_id: str | None = None,
    require_offline: bool = False,
) -> int:
    """Store a ticket for the conversation's latest handoff; its id.

    The conversation's row is created first when it has none yet (a WeChat follower whose first
    message is "留言 …"). With `client_id`, a ticket already stored under it is returned instead
    of a second one. `require_offline`: NoOfflineHandoff unless the latest handoff is offline.
    """
    if client_id is not None:
        existing = _ticket_of_client(session, conversation_id, client_id)
        if existing is not None:
            return existing
    handoff = latest_handoff(session, conversation_id)
    if require_offline and (handoff is None or handoff.status != OFFLINE):
        raise NoOfflineHandoff(conversation_id)
    ensure_conversation(session, conversation_id, channel)
    ticket = Ticket(
        conversation_id=conversation_id,
        handoff_id=handoff.id if handoff else None,
        phone=phone,
        message=message,
        client_id=client_id,
    )
    session.add(ticket)
    try:
        session.commit()
    except IntegrityError:  # the same client id at the same time on another socket
        session.rollback()
        existing = _ticket_of_client(session, conversation_id, client_id or "")
        if existing is None:
            raise
        return existing
    return ticket.id


def _ticket_of_client(session: Session, conversation_id: str, client_id: str) -> int | None:
    found = session.execute(
        select(Ticket.id).where(
            Ticket.conversation_id == conversation_id, Ticket.client_id == client_id
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


@dataclass(frozen=True)
class TicketRow:
    id: int
    conversation_id: str
    phone: str
    message: str
    status: str
    created_at: datetime
    updated_at: datetime
    handled_by: str | None  # the display name of who moved it last


def list_tickets(
    session: Session, status: str | None, limit: int
) -> tuple[list[TicketRow], dict[str, int]]:
    """The newest `limit` tickets (of `status`, or all), and how many there are in each state."""
    handler = aliased(StaffUser)
    query = select(Ticket, handler.display_name).outerjoin(handler, handler.id == Ticket.handled_by)
    if status is not None:
        query = query.where(Ticket.status == status)
    rows = session.execute(query.order_by(Ticket.id.desc()).limit(limit)).all()
    counts = dict(
        session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all()
    )
    tickets = [
        TicketRow(
            t.id, t.conversation_id, t.phone, t.message, t.status, t.created_at, t.updated_at, name
        )
        for t, name in rows
    ]
    return tickets, {s: counts.get(s, 0) for s in TICKET_STATES}


class MoveOutcome(Enum):
    MOVED = "moved"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"  # not a forward move from its current status
    CONFLICT = "conflict"  # someone else moved it meanwhile


@dataclass(frozen=True)
class TicketMove:
    outcome: MoveOutcome
    status_before: str | None = None  # None when not found


def move_ticket(session: Session, ticket_id: int, target: str, staff_id: int) -> TicketMove:
    """Move a ticket forward to `target` (see TICKET_MOVES), recording who did it."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return TicketMove(MoveOutcome.NOT_FOUND)
    before = ticket.status
    if target not in TICKET_MOVES.get(before, ()):
        return TicketMove(MoveOutcome.NOT_ALLOWED, before)
    # Compare-and-set: two staff clicking at once cannot both move it from the same state.
    moved = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == before)
        .values(status=target, handled_by=staff_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return TicketMove(MoveOutcome.MOVED if moved == 1 else MoveOutcome.CONFLICT, before)
