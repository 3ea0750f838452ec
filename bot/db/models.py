"""Tables of the knowledge base. Unknown facts stay NULL: the bot says so, it never fills gaps.

SQLAlchemy 1.4 (pinned by Rasa) has no `mapped_column`, so columns are declared the classic way;
every query elsewhere is written in 2.0 style (`select()`, `Session`).
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import declarative_base

Base = declarative_base()


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
