"""Load the seed knowledge in data/kb/ into the database, upserting by natural key."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.models import ServicePoint
from bot.settings import PROJECT_ROOT
from bot.vocabulary import DISTRICTS, FUNCTIONAL_AREAS, SERVICE_TYPES

SEED_DIR = PROJECT_ROOT / "data" / "kb"
SERVICE_POINT_FIELDS = {c.name for c in ServicePoint.__table__.columns} - {"id"}


class SeedError(ValueError):
    """The seed file is not what the loader expects."""


def read_service_points(path: Path) -> list[dict[str, Any]]:
    records = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("service_points", [])
    for number, record in enumerate(records, start=1):
        unknown = set(record) - SERVICE_POINT_FIELDS
        if unknown:
            raise SeedError(f"{path}: record {number}: unknown fields {sorted(unknown)}")
        if record.get("service_type") not in SERVICE_TYPES:
            raise SeedError(f"{path}: record {number}: unknown service_type")
        district = record.get("district")
        if district is not None and district not in DISTRICTS + FUNCTIONAL_AREAS:
            raise SeedError(f"{path}: record {number}: {district!r} is not a canonical district")
        if not record.get("name") or not record.get("source"):
            raise SeedError(f"{path}: record {number}: name and source are required")
    return records


def upsert_service_points(session: Session, records: Iterable[dict[str, Any]]) -> int:
    """Insert or update by (service_type, name); returns how many rows changed."""
    changed = 0
    for record in records:
        existing = session.execute(
            select(ServicePoint).where(
                ServicePoint.service_type == record["service_type"],
                ServicePoint.name == record["name"],
            )
        ).scalar_one_or_none()
        values = {name: record.get(name) for name in SERVICE_POINT_FIELDS}
        if existing is None:
            session.add(ServicePoint(**values))
            changed += 1
        elif any(getattr(existing, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(existing, key, value)
            changed += 1
    return changed


def seed_if_empty(session: Session, seed_dir: Path = SEED_DIR) -> int:
    """Seed a new database; a database that already has service points is left alone."""
    if session.execute(select(func.count()).select_from(ServicePoint)).scalar_one():
        return 0
    changed = upsert_service_points(session, read_service_points(seed_dir / "service_points.yml"))
    session.commit()
    return changed
