"""What a valid knowledge-base row is: fields per kind, and the checks each row must pass.

Rows come from CSV (all strings) or YAML (typed); `validate_row` returns the cleaned values that
go into the database, or the list of reasons (Chinese-free, for staff logs) the row is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.db.models import InsuranceProduct, ServicePoint
from bot.domain.phone import is_listed_phone
from bot.domain.vocabulary import (
    DISTRICTS,
    FUNCTIONAL_AREAS,
    INSURANCE_TYPES,
    SERVICE_TYPES,
    canonical_district,
)

# Ningbo's bounding box, a little generous: a point outside it is a typo (swapped lat/lon…).
LATITUDE_RANGE = (28.85, 30.45)
LONGITUDE_RANGE = (120.85, 122.45)
MAX_TEXT = 2000


@dataclass(frozen=True)
class Kind:
    """One table that can be imported: its YAML key, columns in file order, natural key."""

    key: str
    model: type
    fields: tuple[str, ...]
    required: tuple[str, ...]
    natural_key: tuple[str, str]


SERVICE_POINTS = Kind(
    key="service_points",
    model=ServicePoint,
    fields=(
        "service_type",
        "name",
        "district",
        "address",
        "latitude",
        "longitude",
        "opening_hours",
        "phone",
        "services",
        "note",
        "source",
        "last_verified",
    ),
    required=("service_type", "name", "source"),
    natural_key=("service_type", "name"),
)
INSURANCE_PRODUCTS = Kind(
    key="insurance_products",
    model=InsuranceProduct,
    fields=(
        "insurance_type",
        "name",
        "coverage",
        "audience",
        "limits",
        "premium",
        "insurer",
        "note",
        "source",
        "last_verified",
    ),
    required=("insurance_type", "name", "source"),
    natural_key=("insurance_type", "name"),
)
KINDS: dict[str, Kind] = {k.key: k for k in (SERVICE_POINTS, INSURANCE_PRODUCTS)}


def kind_of_columns(columns: list[str]) -> Kind | None:
    """The kind a CSV header describes (by its key column)."""
    if "service_type" in columns:
        return SERVICE_POINTS
    if "insurance_type" in columns:
        return INSURANCE_PRODUCTS
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    return float(value)


def validate_row(kind: Kind, row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Cleaned values (every field of the kind, None when blank) and the problems found."""
    problems: list[str] = []
    unknown = sorted(set(row) - set(kind.fields))
    if unknown:
        problems.append(f"unknown fields {unknown}")
    clean: dict[str, Any] = {}
    for name in kind.fields:
        value = row.get(name)
        if _blank(value):
            clean[name] = None
        elif isinstance(value, str):
            clean[name] = value.strip()
        else:
            clean[name] = value
    for name in kind.required:
        if clean[name] is None:
            problems.append(f"{name} is required")
    for name, value in clean.items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            problems.append(f"{name} is longer than {MAX_TEXT} characters")

    if kind is SERVICE_POINTS:
        problems += _check_service_point(clean)
    else:
        value = clean["insurance_type"]
        if value is not None and value not in INSURANCE_TYPES:
            problems.append(f"unknown insurance_type {value!r}")
    problems += _check_date(clean)
    return clean, problems


def _check_service_point(clean: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if clean["service_type"] is not None and clean["service_type"] not in SERVICE_TYPES:
        problems.append(f"unknown service_type {clean['service_type']!r}")
    if clean["district"] is not None:
        canonical = canonical_district(str(clean["district"]))
        if canonical is None:
            allowed = "、".join(DISTRICTS + FUNCTIONAL_AREAS)
            problems.append(f"district {clean['district']!r} is not one of {allowed}")
        clean["district"] = canonical
    if (clean["latitude"] is None) != (clean["longitude"] is None):
        problems.append("latitude and longitude must be given together")
    for name, (low, high) in (("latitude", LATITUDE_RANGE), ("longitude", LONGITUDE_RANGE)):
        if clean[name] is None:
            continue
        try:
            clean[name] = _float(clean[name])
        except (TypeError, ValueError):
            problems.append(f"{name} {clean[name]!r} is not a number")
            continue
        if not low <= clean[name] <= high:
            problems.append(f"{name} {clean[name]} is outside Ningbo ({low}–{high})")
    if clean["phone"] is not None:
        clean["phone"] = str(clean["phone"])
        if not is_listed_phone(clean["phone"]):
            problems.append(f"phone {clean['phone']!r} is not a mainland phone number")
    return problems


def _check_date(clean: dict[str, Any]) -> list[str]:
    value = clean.get("last_verified")
    if value is None or isinstance(value, dt.date):
        return []
    try:
        clean["last_verified"] = dt.date.fromisoformat(str(value))
    except ValueError:
        return [f"last_verified {value!r} is not a date (YYYY-MM-DD)"]
    return []
