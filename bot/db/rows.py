"""Rows of the tables `kb import` fills (service points, insurance products), by natural key.

The table and its natural key come from the caller (bot/kb/schema.py's `Kind`), so one upsert, one
read-back and one count serve every import kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

Outcome = Literal["inserted", "updated", "unchanged"]


def upsert_by_key(
    session: Session, model: type, key: Iterable[str], values: dict[str, Any]
) -> Outcome:
    """Insert or update one row found by its natural key `key` (column names, all in `values`).

    Not committed: an import writes a whole file in one transaction.
    """
    existing = session.execute(
        select(model).where(*(getattr(model, column) == values[column] for column in key))
    ).scalar_one_or_none()
    if existing is None:
        session.add(model(**values))
        return "inserted"
    if all(getattr(existing, k) == v for k, v in values.items()):
        return "unchanged"
    for name, value in values.items():
        setattr(existing, name, value)
    return "updated"


def rows_by_key(
    session: Session, model: type, key: Iterable[str], fields: Iterable[str]
) -> list[dict[str, Any]]:
    """Every row as {field: value} for `fields`, ordered by the natural key."""
    fields = tuple(fields)
    query = select(model).order_by(*(getattr(model, column) for column in key))
    return [{f: getattr(row, f) for f in fields} for row in session.execute(query).scalars()]


def count_rows(session: Session, model: type) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()
