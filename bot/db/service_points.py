"""Queries over service points, used by the action server (2.0-style SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import ServicePoint
from bot.vocabulary import canonical_district


class LookupStatus(str, Enum):
    FOUND = "found"  # points of this type in the asked district
    NONE_IN_DISTRICT = "none_in_district"  # a real district, but no recorded point there
    UNKNOWN_DISTRICT = "unknown_district"  # not one of Ningbo's districts
    CITYWIDE = "citywide"  # no district asked: every point of the type


@dataclass(frozen=True)
class Lookup:
    status: LookupStatus
    district: str | None  # canonical name when known
    points: list[ServicePoint] = field(default_factory=list)  # in the district
    elsewhere: list[ServicePoint] = field(default_factory=list)  # the rest of the city


def points_of_type(session: Session, service_type: str) -> list[ServicePoint]:
    query = (
        select(ServicePoint)
        .where(ServicePoint.service_type == service_type)
        .order_by(ServicePoint.district.is_(None), ServicePoint.district, ServicePoint.name)
    )
    return list(session.execute(query).scalars())


def lookup_service_points(session: Session, service_type: str, district: str | None) -> Lookup:
    """Points of `service_type` in `district` (as written by the user), with the alternatives."""
    all_points = points_of_type(session, service_type)
    if not district:
        return Lookup(LookupStatus.CITYWIDE, None, all_points)
    canonical = canonical_district(district)
    if canonical is None:
        return Lookup(LookupStatus.UNKNOWN_DISTRICT, None, [], all_points)
    here = [p for p in all_points if p.district == canonical]
    elsewhere = [p for p in all_points if p.district != canonical]
    status = LookupStatus.FOUND if here else LookupStatus.NONE_IN_DISTRICT
    return Lookup(status, canonical, here, elsewhere)
