"""Consultation requests (leads) from enterprises: storing them with a short reference number."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db.models import ConsultationRequest

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
