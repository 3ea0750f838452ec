"""Knowledge items in files staff open in Excel: XLSX and CSV (and YAML for the seed).

The same rules hold for every way in (the console's upload, `python -m bot kb import`, the seed):
every row is checked first and a file with any bad row is refused whole, each bad row listed
with its row number and reasons; good files are upserted by `key`, so importing the same file
twice changes nothing. Lists (phrasings, related keys) are one cell, one entry per line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook, load_workbook
from sqlalchemy.orm import Session

from bot.db import knowledge as db
from bot.domain.vocabulary import KNOWLEDGE_TOPICS
from bot.kb.importer import ImportRejected, ImportReport, RowError

TOPICS: tuple[str, ...] = tuple(KNOWLEDGE_TOPICS)
# Column headers in files: English keys, so that a re-exported file imports unchanged.
COLUMNS = db.CONTENT_FIELDS
LIST_FIELDS = ("phrasings", "related")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
MAX_ANSWER = 120
MAX_QUESTION = 200
MAX_TEXT = 2000
# Hotlines a source names; any other digit in an "unknown" answer would be an invented figure.
SOURCED_NUMBERS = re.compile(r"12330|12315")


def is_knowledge_file(name: str, data: bytes) -> bool:
    """A workbook, a CSV whose header has key and question, or a YAML list (the seed's shape)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".xlsx":
        return True
    head = data[:4096].decode("utf-8-sig", errors="replace")
    if suffix == ".csv":
        columns = {c.strip() for c in head.splitlines()[0].split(",")} if head else set()
        return {"key", "question"} <= columns
    return head.lstrip().startswith("- ")


def read_file(name: str, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(row number, raw values) for each non-empty row; ImportRejected if unreadable."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".xlsx":
            return _read_xlsx(data)
        if suffix == ".csv":
            return _read_csv(data.decode("utf-8-sig"))
        if suffix in (".yml", ".yaml"):
            return _read_yaml(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError, ValueError, KeyError, OSError) as exc:
        raise ImportRejected(f"{name}: 无法读取文件（{exc.__class__.__name__}）") from exc
    raise ImportRejected(f"{name}: 不支持的文件类型，请使用 .xlsx、.csv 或 .yml")


def _read_xlsx(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
    found = []
    for number, cells in enumerate(rows, start=2):
        # openpyxl pads or trims rows to the sheet width: the header decides.
        values = {h: c for h, c in zip(header, cells, strict=False) if h}
        if any(v not in (None, "") for v in values.values()):
            found.append((number, values))
    return found


def _read_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [c.strip() for c in reader.fieldnames or []]
    found = []
    start = 2
    for record in reader:
        if any(isinstance(v, str) and v.strip() for v in record.values()):
            found.append((start, {k: v for k, v in record.items() if k is not None}))
        start = reader.line_num + 1
    return found


def _read_yaml(text: str) -> list[tuple[int, dict[str, Any]]]:
    document = yaml.compose(text, Loader=yaml.SafeLoader)
    if document is None:
        return []
    if not isinstance(document, yaml.SequenceNode):
        raise ValueError("expected a list of items")
    found = []
    for node in document.value:
        values = yaml.SafeLoader("").construct_document(node)
        found.append((node.start_mark.line + 1, values if isinstance(values, dict) else {}))
    return found


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in re.split(r"[\n|｜]", str(value)) if part.strip()]


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in ("", "0", "false", "no", "否"):
        return False
    if text in ("1", "true", "yes", "是"):
        return True
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def validate(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Cleaned content fields and the reasons (Chinese, shown to staff) the row is refused."""
    problems: list[str] = []
    unknown_columns = sorted(set(values) - set(COLUMNS))
    if unknown_columns:
        problems.append(f"未知的列：{'、'.join(unknown_columns)}")
    clean: dict[str, Any] = {}
    for name in COLUMNS:
        raw = values.get(name)
        if name in LIST_FIELDS:
            clean[name] = _as_list(raw)
        elif name == "unknown":
            clean[name] = _as_bool(raw)
            if clean[name] is None:
                problems.append(f"unknown 只能填 是/否（现在是 {raw!r}）")
        else:
            clean[name] = _as_text(raw)
    if not KEY_PATTERN.match(clean["key"]):
        problems.append("key 须为2–80位小写字母、数字或连字符，如 trademark-fee-online")
    if clean["topic"] not in TOPICS:
        problems.append(f"topic {clean['topic']!r} 不是已知主题")
    for name, limit in (("question", MAX_QUESTION), ("answer", MAX_ANSWER)):
        if not clean[name]:
            problems.append(f"{name} 不能为空")
        elif len(clean[name]) > limit:
            problems.append(f"{name} 超过{limit}字（现在{len(clean[name])}字）")
    if not clean["phrasings"]:
        problems.append("phrasings 至少要有一种问法")
    if len(clean["details"]) > MAX_TEXT:
        problems.append(f"details 超过{MAX_TEXT}字")
    if clean["source_kind"] and clean["source_kind"] not in db.SOURCE_KINDS:
        problems.append(f"source_kind 须为 {'/'.join(db.SOURCE_KINDS)} 之一")
    if not clean["status"]:
        clean["status"] = db.DRAFT
    elif clean["status"] not in db.STATUSES:
        problems.append(f"status 须为 {'/'.join(db.STATUSES)} 之一")
    if clean["last_verified"]:
        try:
            clean["last_verified"] = dt.date.fromisoformat(clean["last_verified"])
        except ValueError:
            problems.append("last_verified 须为日期，如 2026-11-01")
    else:
        clean["last_verified"] = None
    if clean["unknown"] and re.search(r"\d", SOURCED_NUMBERS.sub("", clean["answer"])):
        problems.append("未核实（unknown）的条目，答案中不能出现数字")
    return clean, problems


def validate_rows(rows: Iterable[tuple[int, dict[str, Any]]], known_keys: set[str]) -> list[dict]:
    """Every row cleaned, or ImportRejected listing every bad row (duplicates, unknown related)."""
    rows = list(rows)
    keys_in_file = {_as_text(values.get("key")) for _, values in rows}
    cleaned: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, values in rows:
        clean, problems = validate(values)
        if clean["key"] in seen:
            problems.append(f"key 与第{seen[clean['key']]}行重复")
        seen.setdefault(clean["key"], number)
        missing = [k for k in clean["related"] if k not in keys_in_file | known_keys]
        if missing:
            problems.append(f"related 中的条目不存在：{'、'.join(missing)}")
        if problems:
            errors.append(RowError(number, problems))
        else:
            cleaned.append(clean)
    if errors:
        raise ImportRejected(errors)
    return cleaned


def import_items(session: Session, name: str, data: bytes, by: str) -> ImportReport:
    """Validate the whole file, then upsert every row in one transaction (committed here)."""
    rows = read_file(name, data)
    related = {k for _, values in rows for k in _as_list(values.get("related"))}
    cleaned = validate_rows(rows, db.keys_in_use(session, sorted(related)))
    report = ImportReport(rows=len(cleaned))
    try:
        for values in cleaned:
            _, outcome = db.save_item(session, values, by, "imported")
            setattr(report, outcome, getattr(report, outcome) + 1)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return report


def _cell(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        return "\n".join(value or [])
    if name == "unknown":
        return "是" if value else "否"
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else value


def export_records(session: Session) -> list[dict[str, Any]]:
    return [item.content() for item in db.search_items(session)]


def export_csv(records: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({name: _cell(name, record.get(name)) for name in COLUMNS})
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8


def export_xlsx(records: list[dict[str, Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "knowledge"
    sheet.append(list(COLUMNS))
    for record in records:
        sheet.append([_cell(name, record.get(name)) for name in COLUMNS])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
