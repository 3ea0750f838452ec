"""Consultation requests (leads) from enterprises: storing them with a short reference number, and
the back office's queries (list, claim, assign, status changes with their history)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

from bot.db.conversations import utcnow
from bot.db.models import LEAD_STATUSES, Base, ConsultationRequest
from bot.db.staff import StaffUser

# No 0/O/1/I/L: the user may read the number out over the phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 6
PREFIX = "ZX-"


def new_reference() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(REFERENCE_LENGTH))


def store_lead(
    session: Session,
    *,
    company: str,
    contact_name: str,
    phone: str,
    products: str | None = None,
    message: str | None = None,
    conversation_id: str | None = None,
) -> ConsultationRequest:
    """Insert a new lead (status "new") and commit; retries on the rare reference collision."""
    for _ in range(5):
        lead = ConsultationRequest(
            reference=new_reference(),
            company=company,
            contact_name=contact_name,
            phone=phone,
            products=products,
            message=message,
            conversation_id=conversation_id,
            status="new",
            created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        )
        session.add(lead)
        try:
            session.commit()
            return lead
        except IntegrityError:
            session.rollback()
    raise RuntimeError("could not allocate a unique reference number")


def lead_by_reference(session: Session, reference: str) -> ConsultationRequest | None:
    query = select(ConsultationRequest).where(ConsultationRequest.reference == reference)
    return session.execute(query).scalar_one_or_none()


# ---- the back office: the leads page -------------------------------------------------------------

NEW, CONTACTED, CLOSED = LEAD_STATUSES
# Leads only move forward; new → closed directly is allowed (a duplicate, a wrong number).
LEAD_MOVES: dict[str, tuple[str, ...]] = {
    NEW: (CONTACTED, CLOSED),
    CONTACTED: (CLOSED,),
    CLOSED: (),
}


class LeadEvent(Base):
    """One change of a lead: claimed, assigned, or moved to a status, with who and when."""

    __tablename__ = "lead_events"

    id = Column(Integer, primary_key=True)
    lead_id = Column(
        Integer, ForeignKey("consultation_requests.id", ondelete="CASCADE"), nullable=False,
        index=True,
    )  # fmt: skip
    staff_id = Column(Integer, ForeignKey("staff_users.id"))
    action = Column(String(20), nullable=False)  # claim | assign | status
    status = Column(String(20))  # the status after the change
    owner_id = Column(Integer, ForeignKey("staff_users.id"))  # the owner after the change
    note = Column(Text)
    created_at = Column(DateTime, nullable=False, default=utcnow)


@dataclass(frozen=True)
class LeadFilter:
    status: str | None = None
    product: str = ""
    created_from: dt.datetime | None = None  # naive UTC, inclusive
    created_before: dt.datetime | None = None  # naive UTC, exclusive
    owner_id: int | None = None  # 0: nobody owns it


@dataclass(frozen=True)
class LeadRow:
    lead: ConsultationRequest
    owner_name: str | None


def _owner_named() -> tuple[Any, Select]:
    owner = aliased(StaffUser)
    query = select(ConsultationRequest, owner.display_name).outerjoin(
        owner, owner.id == ConsultationRequest.owner_id
    )
    return owner, query


def list_leads(session: Session, flt: LeadFilter, limit: int) -> list[LeadRow]:
    """The newest `limit` leads the filter finds, with their owner's name."""
    _, query = _owner_named()
    lead = ConsultationRequest
    if flt.status:
        query = query.where(lead.status == flt.status)
    if flt.product:
        query = query.where(lead.products.contains(flt.product, autoescape=True))
    if flt.created_from is not None:
        query = query.where(lead.created_at >= flt.created_from)
    if flt.created_before is not None:
        query = query.where(lead.created_at < flt.created_before)
    if flt.owner_id == 0:
        query = query.where(lead.owner_id.is_(None))
    elif flt.owner_id is not None:
        query = query.where(lead.owner_id == flt.owner_id)
    rows = session.execute(query.order_by(lead.id.desc()).limit(limit)).all()
    return [LeadRow(row[0], row[1]) for row in rows]


def lead_counts(session: Session) -> dict[str, int]:
    counts = dict(
        session.execute(
            select(ConsultationRequest.status, func.count()).group_by(ConsultationRequest.status)
        ).all()
    )
    return {status: int(counts.get(status, 0)) for status in LEAD_STATUSES}


@dataclass(frozen=True)
class LeadHistoryLine:
    event: LeadEvent
    staff_name: str | None
    owner_name: str | None


def get_lead(session: Session, lead_id: int) -> LeadRow | None:
    _, query = _owner_named()
    row = session.execute(query.where(ConsultationRequest.id == lead_id)).first()
    return None if row is None else LeadRow(row[0], row[1])


def lead_history(session: Session, lead_id: int) -> list[LeadHistoryLine]:
    actor, owner = aliased(StaffUser), aliased(StaffUser)
    rows = session.execute(
        select(LeadEvent, actor.display_name, owner.display_name)
        .outerjoin(actor, actor.id == LeadEvent.staff_id)
        .outerjoin(owner, owner.id == LeadEvent.owner_id)
        .where(LeadEvent.lead_id == lead_id)
        .order_by(LeadEvent.id)
    ).all()
    return [LeadHistoryLine(e, a, o) for e, a, o in rows]


class LeadChange(Enum):
    DONE = "done"
    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"  # not a forward move, or not the owner
    CONFLICT = "conflict"  # someone else changed it meanwhile


def claim_lead(session: Session, lead_id: int, staff_id: int) -> LeadChange:
    """Take an unowned lead. One UPDATE, so of two agents at once exactly one wins."""
    if session.get(ConsultationRequest, lead_id) is None:
        return LeadChange.NOT_FOUND
    now = utcnow()
    won = session.execute(
        update(ConsultationRequest)
        .where(ConsultationRequest.id == lead_id, ConsultationRequest.owner_id.is_(None))
        .values(owner_id=staff_id, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.rollback()
        return LeadChange.CONFLICT
    session.add(
        LeadEvent(lead_id=lead_id, staff_id=staff_id, action="claim", owner_id=staff_id,
                  created_at=now)
    )  # fmt: skip
    session.commit()
    return LeadChange.DONE


def assign_lead(session: Session, lead_id: int, owner_id: int, staff_id: int) -> LeadChange:
    """Give an open lead to `owner_id`, an active account (an admin's decision)."""
    lead = session.get(ConsultationRequest, lead_id)
    if lead is None:
        return LeadChange.NOT_FOUND
    owner = session.get(StaffUser, owner_id)
    if lead.status == CLOSED or owner is None or not owner.active:
        return LeadChange.NOT_ALLOWED
    now = utcnow()
    lead.owner_id = owner_id
    lead.updated_at = now
    session.add(
        LeadEvent(lead_id=lead_id, staff_id=staff_id, action="assign", owner_id=owner_id,
                  created_at=now)
    )  # fmt: skip
    session.commit()
    return LeadChange.DONE


def move_lead(
    session: Session, lead_id: int, target: str, staff_id: int, note: str | None
) -> LeadChange:
    """Move a lead forward (LEAD_MOVES), recording who, when and the note (the outcome when
    closing)."""
    lead = session.get(ConsultationRequest, lead_id)
    if lead is None:
        return LeadChange.NOT_FOUND
    before = lead.status
    if target not in LEAD_MOVES.get(before, ()):
        return LeadChange.NOT_ALLOWED
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if target == CONTACTED:
        values["contacted_at"] = now
    if target == CLOSED:
        values["closed_at"] = now
        values["outcome"] = note
    if lead.owner_id is None:  # whoever acts on an unowned lead takes it
        values["owner_id"] = staff_id
    moved = session.execute(
        update(ConsultationRequest)
        .where(ConsultationRequest.id == lead_id, ConsultationRequest.status == before)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        session.rollback()
        return LeadChange.CONFLICT
    session.add(
        LeadEvent(lead_id=lead_id, staff_id=staff_id, action="status", status=target,
                  owner_id=values.get("owner_id", lead.owner_id), note=note, created_at=now)
    )  # fmt: skip
    session.commit()
    return LeadChange.DONE


def leads_after(session: Session, last_id: int, limit: int = 50) -> list[ConsultationRequest]:
    """Leads stored after `last_id`, oldest first (the live page's new rows)."""
    return list(
        session.execute(
            select(ConsultationRequest)
            .where(ConsultationRequest.id > last_id)
            .order_by(ConsultationRequest.id)
            .limit(limit)
        ).scalars()
    )


def latest_lead_id(session: Session) -> int:
    return int(session.execute(select(func.max(ConsultationRequest.id))).scalar_one() or 0)
