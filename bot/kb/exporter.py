"""`python -m bot kb export`: write the knowledge base in the format `kb import` reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.db.rows import rows_by_key
from bot.kb.formats import write_csv, write_yaml
from bot.kb.schema import INSURANCE_PRODUCTS, KINDS, SERVICE_POINTS, Kind


def records(session: Session, kind: Kind) -> list[dict[str, Any]]:
    return rows_by_key(session, kind.model, kind.natural_key, kind.fields)


def export_yaml(
    session: Session, kinds: tuple[Kind, ...] = (SERVICE_POINTS, INSURANCE_PRODUCTS)
) -> str:
    return write_yaml({kind: records(session, kind) for kind in kinds})


def export_csv(session: Session, kind_key: str = "service_points") -> str:
    """CSV holds one table per file (its header says which)."""
    kind = KINDS[kind_key]
    return write_csv(kind, records(session, kind))
