"""Load the seed knowledge in data/kb/ into a new database, upserting by natural key.

The seed files use the same YAML format as `python -m bot kb import` and pass the same checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from bot.db import knowledge
from bot.db.rows import count_rows
from bot.kb.formats import read_rows
from bot.kb.importer import ImportRejected, upsert, validate_rows
from bot.kb.knowledge_file import import_items
from bot.kb.schema import INSURANCE_PRODUCTS, SERVICE_POINTS, Kind
from bot.settings import PROJECT_ROOT

SEED_DIR = PROJECT_ROOT / "data" / "kb"
KNOWLEDGE_FILE = "knowledge.yml"
SEED_AUTHOR = "seed"
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
        if count_rows(session, kind.model):
            continue
        changed += upsert_records(session, kind, read_records(seed_dir / file_name, kind))
    session.commit()
    return changed + seed_knowledge_if_empty(session, seed_dir)


def seed_knowledge_if_empty(session: Session, seed_dir: Path = SEED_DIR) -> int:
    """Publish the seed knowledge items into an empty knowledge base (staff own it after)."""
    if knowledge.count_items(session):
        return 0
    path = seed_dir / KNOWLEDGE_FILE
    document = yaml.safe_load(path.read_text("utf-8")) or []
    for item in document:
        item.setdefault("status", knowledge.PUBLISHED)
    data = yaml.safe_dump(document, allow_unicode=True).encode("utf-8")
    try:
        report = import_items(session, path.name, data, SEED_AUTHOR)
    except ImportRejected as exc:
        raise SeedError(f"{path}:\n{exc}") from exc
    return report.inserted
