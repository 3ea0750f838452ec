"""Load the seed knowledge in data/kb/ into a new database, upserting by natural key.

The seed files use the same YAML format as `python -m bot kb import` and pass the same checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.kb.formats import read_rows
from bot.kb.importer import ImportRejected, upsert, validate_rows
from bot.kb.schema import INSURANCE_PRODUCTS, SERVICE_POINTS, Kind
from bot.settings import PROJECT_ROOT

SEED_DIR = PROJECT_ROOT / "data" / "kb"
SEED_FILES: tuple[tuple[str, Kind], ...] = (
    ("service_points.yml", SERVICE_POINTS),
    ("insurance_products.yml", INSURANCE_PRODUCTS),
)


class SeedError(ValueError):
    """The seed file is not what the loader expects."""


def read_records(path: Path, kind: Kind) -> list[dict[str, Any]]:
    try:
        cleaned = validate_rows(r for r in read_rows(path) if r.kind is kind)
    except ImportRejected as exc:
        raise SeedError(f"{path}:\n{exc}") from exc
    return [values for _, values in cleaned]


def read_service_points(path: Path) -> list[dict[str, Any]]:
    return read_records(path, SERVICE_POINTS)


def upsert_records(session: Session, kind: Kind, records: Iterable[dict[str, Any]]) -> int:
    """Insert or update by natural key; returns how many rows changed."""
    return sum(upsert(session, kind, record) != "unchanged" for record in records)


def upsert_service_points(session: Session, records: Iterable[dict[str, Any]]) -> int:
    return upsert_records(session, SERVICE_POINTS, records)


def seed_if_empty(session: Session, seed_dir: Path = SEED_DIR) -> int:
    """Seed each empty table; a table that already has rows is left alone (staff own it)."""
    changed = 0
    for file_name, kind in SEED_FILES:
        if session.execute(select(func.count()).select_from(kind.model)).scalar_one():
            continue
        changed += upsert_records(session, kind, read_records(seed_dir / file_name, kind))
    session.commit()
    return changed
