"""Tables of the knowledge base. Unknown facts stay NULL: the bot says so, it never fills gaps.

SQLAlchemy 1.4 (pinned by Rasa) has no `mapped_column`, so columns are declared the classic way;
every query elsewhere is written in 2.0 style (`select()`, `Session`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base

# Any: SQLAlchemy 1.4 ships no typing for the declarative base (2.0 has DeclarativeBase).
Base: Any = declarative_base()


class ServicePoint(Base):
    """A place citizens can go to: a filing window, a brand guidance station, a centre."""

    __tablename__ = "service_points"
    __table_args__ = (UniqueConstraint("service_type", "name", name="uq_service_point_key"),)

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    service_type = Column(String(50), nullable=False, index=True)
    # Canonical district (see bot.districts); NULL for a citywide service of unknown location.
    district = Column(String(20), index=True)
    address = Column(String(300))
    latitude = Column(Float)
    longitude = Column(Float)
    opening_hours = Column(String(200))
    phone = Column(String(50))
    services = Column(Text)  # what it offers, "；"-separated
    note = Column(Text)
    source = Column(Text, nullable=False)
    last_verified = Column(Date)

    def __repr__(self) -> str:
        return f"ServicePoint({self.service_type!r}, {self.name!r}, {self.district!r})"


class InsuranceProduct(Base):
    """An IP insurance line offered to enterprises; premium and limits stay NULL when unknown."""

    __tablename__ = "insurance_products"
    __table_args__ = (UniqueConstraint("insurance_type", "name", name="uq_insurance_product_key"),)

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    # One of the contract's insurance_type values (bot.domain.vocabulary.INSURANCE_TYPES).
    insurance_type = Column(String(50), nullable=False, index=True)
    coverage = Column(Text)  # what it pays for
    audience = Column(Text)  # who it is for
    limits = Column(Text)  # sums insured / maximum payout, with the year and source wording
    premium = Column(Text)
    insurer = Column(String(200))
    note = Column(Text)
    source = Column(Text, nullable=False)
    last_verified = Column(Date)

    def __repr__(self) -> str:
        return f"InsuranceProduct({self.insurance_type!r}, {self.name!r})"


LEAD_STATUSES: tuple[str, ...] = ("new", "contacted", "closed")


class ConsultationRequest(Base):
    """A lead: an enterprise asked to be contacted about insurance. Text is stored as typed."""

    __tablename__ = "consultation_requests"

    id = Column(Integer, primary_key=True)
    # Short code the user is shown ("ZX-7K3M9Q"); unique so staff can find the lead by it.
    reference = Column(String(20), nullable=False, unique=True)
    company = Column(Text, nullable=False)
    contact_name = Column(Text, nullable=False)
    phone = Column(String(50), nullable=False)
    products = Column(Text)  # products of interest, "；"-separated
    message = Column(Text)
    conversation_id = Column(String(200))
    status = Column(String(20), nullable=False, default="new", index=True)
    created_at = Column(DateTime, nullable=False)
    # The back office (migration 0007): who owns the lead, when it last moved, how it ended.
    owner_id = Column(Integer, ForeignKey("staff_users.id"), index=True)
    updated_at = Column(DateTime)
    contacted_at = Column(DateTime)
    closed_at = Column(DateTime)
    outcome = Column(Text)  # the closing note

    def __repr__(self) -> str:
        return f"ConsultationRequest({self.reference!r}, {self.status!r})"
