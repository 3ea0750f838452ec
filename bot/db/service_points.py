"""Queries over service points, used by the action server (2.0-style SQLAlchemy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import ServicePoint
from bot.domain.vocabulary import canonical_district


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


EARTH_RADIUS_KM = 6371.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def by_distance(
    points: list[ServicePoint], latitude: float, longitude: float
) -> list[tuple[ServicePoint, float]]:
    """The points that have coordinates, nearest first, with their distance in km."""
    located = [
        (p, distance_km(latitude, longitude, p.latitude, p.longitude))
        for p in points
        if p.latitude is not None and p.longitude is not None
    ]
    return sorted(located, key=lambda pair: (pair[1], pair[0].name))


def nearest_points(
    session: Session, service_type: str, latitude: float, longitude: float, limit: int = 3
) -> list[tuple[ServicePoint, float]]:
    return by_distance(points_of_type(session, service_type), latitude, longitude)[:limit]


def district_centre(session: Session, district: str) -> tuple[float, float] | None:
    """Mean position of the recorded points (of any type) in a district, if any have one.

    Used to rank other districts' points when the asked district has none of the wanted type;
    no invented district coordinates are needed.
    """
    rows = session.execute(
        select(ServicePoint.latitude, ServicePoint.longitude).where(
            ServicePoint.district == district,
            ServicePoint.latitude.is_not(None),
            ServicePoint.longitude.is_not(None),
        )
    ).all()
    if not rows:
        return None
    return (sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows))
