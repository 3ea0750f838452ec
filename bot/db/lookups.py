"""A citizen's status look-up by reference number, checked against the last four digits of the
phone number they left: the attempts (to limit wrong tries) and what a reference finds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer, String, func, select
from sqlalchemy.orm import Session

from bot.db.conversations import utcnow
from bot.db.handoffs import Ticket
from bot.db.models import Base, ConsultationRequest

PENDING, FOUND, WRONG = "pending", "found", "wrong"


class StatusLookup(Base):
    """One look-up: asked for (pending), then answered (found) or refused (wrong)."""

    __tablename__ = "status_lookups"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(64), nullable=False, index=True)
    reference = Column(String(20), nullable=False, index=True)  # "ZX-7K3M9Q" or "#12"
    outcome = Column(String(10), nullable=False, default=PENDING)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)


@dataclass(frozen=True)
class Found:
    kind: str  # "lead" | "ticket"
    status: str
    phone: str
    updated_at: datetime


def find_reference(session: Session, reference: str) -> Found | None:
    """The lead ("ZX-…") or ticket ("#12") a reference names."""
    if reference.startswith("#"):
        ticket = session.get(Ticket, int(reference[1:]))
        if ticket is None:
            return None
        return Found("ticket", ticket.status, ticket.phone, ticket.updated_at)
    lead = session.execute(
        select(ConsultationRequest).where(ConsultationRequest.reference == reference)
    ).scalar_one_or_none()
    if lead is None:
        return None
    return Found("lead", lead.status, lead.phone, lead.updated_at or lead.created_at)


def start_lookup(session: Session, conversation_id: str, reference: str) -> None:
    session.add(StatusLookup(conversation_id=conversation_id, reference=reference))
    session.commit()


def pending_lookup(session: Session, conversation_id: str, since: datetime) -> StatusLookup | None:
    """The conversation's latest look-up if it still waits for the digits (asked after `since`)."""
    latest = session.execute(
        select(StatusLookup)
        .where(StatusLookup.conversation_id == conversation_id)
        .order_by(StatusLookup.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None or latest.outcome != PENDING or latest.created_at < since:
        return None
    return latest


def wrong_tries(session: Session, conversation_id: str, reference: str, since: datetime) -> int:
    """Wrong answers since `since` in this conversation or for this reference (whichever is
    more): neither many numbers from one chat nor one number from many chats can be guessed."""

    def count(*where: object) -> int:
        return int(
            session.execute(
                select(func.count()).where(
                    StatusLookup.outcome == WRONG, StatusLookup.created_at >= since, *where
                )
            ).scalar_one()
        )

    return max(
        count(StatusLookup.conversation_id == conversation_id),
        count(StatusLookup.reference == reference),
    )


def finish_lookup(session: Session, lookup_id: int, outcome: str) -> None:
    lookup = session.get(StatusLookup, lookup_id)
    if lookup is not None:
        lookup.outcome = outcome
        session.commit()
