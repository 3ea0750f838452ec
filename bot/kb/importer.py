"""`python -m bot kb import FILE`: validate every row, then upsert all of them or none.

A bad file is refused whole, listing each bad row's line and reasons, so a half-imported file never
leaves the bot answering from a mix of old and new data. Upserting by the natural key
(service_type, name) / (insurance_type, name) makes a second import of the same file a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from tqdm import tqdm

from bot.db.rows import upsert_by_key
from bot.kb.formats import FormatError, Row, read_rows
from bot.kb.schema import Kind, validate_row

# Files with more rows than this show a progress bar while they are written.
PROGRESS_THRESHOLD = 200


@dataclass(frozen=True)
class RowError:
    line: int
    reasons: list[str]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.reasons)


class ImportRejected(ValueError):
    """The file has bad rows (or cannot be read); nothing was written."""

    def __init__(self, errors: list[RowError] | str) -> None:
        self.errors = errors if isinstance(errors, list) else []
        message = errors if isinstance(errors, str) else "\n".join(map(str, errors))
        super().__init__(message)


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: {self.inserted} added, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )


def validate_rows(rows: Iterable[Row]) -> list[tuple[Kind, dict[str, Any]]]:
    """Clean every row; raise ImportRejected listing all bad rows (and duplicate keys)."""
    cleaned: list[tuple[Kind, dict[str, Any]]] = []
    errors: list[RowError] = []
    seen: dict[tuple, int] = {}
    for row in rows:
        values, problems = validate_row(row.kind, row.values)
        key = (row.kind.key, *(values[k] for k in row.kind.natural_key))
        if not problems and key in seen:
            problems.append(f"duplicate of line {seen[key]} ({', '.join(row.kind.natural_key)})")
        seen.setdefault(key, row.line)
        if problems:
            errors.append(RowError(row.line, problems))
        else:
            cleaned.append((row.kind, values))
    if errors:
        raise ImportRejected(errors)
    return cleaned


def upsert(session: Session, kind: Kind, values: dict[str, Any]) -> str:
    """Insert or update one row by its natural key: "inserted", "updated" or "unchanged"."""
    return upsert_by_key(session, kind.model, kind.natural_key, values)


def import_rows(
    session: Session,
    rows: list[Row],
    progress: Callable[[Iterable, int], Iterable] | None = None,
) -> ImportReport:
    """Validate all rows, then write them in one transaction (committed by this function)."""
    cleaned = validate_rows(rows)
    report = ImportReport(rows=len(cleaned))
    items: Iterable = cleaned
    if progress is not None and len(cleaned) > PROGRESS_THRESHOLD:
        items = progress(cleaned, len(cleaned))
    try:
        for kind, values in items:
            outcome = upsert(session, kind, values)
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.by_kind[kind.key] = report.by_kind.get(kind.key, 0) + 1
        session.commit()
    except Exception:
        session.rollback()
        raise
    return report


def tqdm_progress(items: Iterable, total: int) -> Iterable:
    return tqdm(items, total=total, unit="row", desc="importing")


def import_file(session: Session, path: Path, show_progress: bool = False) -> ImportReport:
    try:
        rows = read_rows(path)
    except (FormatError, UnicodeDecodeError) as exc:
        raise ImportRejected(f"{path.name}: {exc}") from exc
    return import_rows(session, rows, tqdm_progress if show_progress else None)
