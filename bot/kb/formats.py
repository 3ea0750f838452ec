"""Reading and writing knowledge files (CSV, YAML), keeping each row's line number for errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.kb.schema import KINDS, Kind, kind_of_columns


class FormatError(ValueError):
    """The file cannot be read as a knowledge file at all."""


@dataclass(frozen=True)
class Row:
    kind: Kind
    line: int  # 1-based line in the file where the row starts
    values: dict[str, Any]


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".yml", ".yaml"):
        return "yaml"
    raise FormatError(f"{path.name}: unsupported file type (use .csv, .yml or .yaml)")


def read_rows(path: Path) -> list[Row]:
    text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM into CSV
    return read_csv(text) if file_format(path) == "csv" else read_yaml(text)


def read_csv(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    kind = kind_of_columns(columns)
    if kind is None:
        raise FormatError("line 1: the header needs a service_type or insurance_type column")
    reader.fieldnames = columns
    rows: list[Row] = []
    start = reader.line_num + 1
    for record in reader:
        if None in record:  # more cells than header columns
            record = {k: v for k, v in record.items() if k is not None}
            record["(extra cells)"] = "x"
        if any(v and v.strip() for v in record.values() if isinstance(v, str)):
            rows.append(Row(kind, start, dict(record)))
        start = reader.line_num + 1
    return rows


def read_yaml(text: str) -> list[Row]:
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise FormatError(f"not valid YAML: {exc}") from exc
    if document is None:
        return []
    if not isinstance(document, yaml.MappingNode):
        raise FormatError(
            "line 1: expected a mapping with service_points: and/or insurance_products:"
        )
    rows: list[Row] = []
    for key_node, list_node in document.value:
        kind = KINDS.get(key_node.value)
        if kind is None:
            raise FormatError(
                f"line {key_node.start_mark.line + 1}: unknown section {key_node.value!r}"
            )
        if not isinstance(list_node, yaml.SequenceNode):
            raise FormatError(f"line {list_node.start_mark.line + 1}: {kind.key} must be a list")
        for item in list_node.value:
            values = yaml.SafeLoader("").construct_document(item)
            if not isinstance(values, dict):
                values = {"(not a mapping)": values}
            rows.append(Row(kind, item.start_mark.line + 1, values))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_csv(kind: Kind, records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(kind.fields), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _cell(record.get(k)) for k in kind.fields})
    return out.getvalue()


def write_yaml(sections: dict[Kind, list[dict[str, Any]]]) -> str:
    document = {
        kind.key: [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
            for r in records
        ]
        for kind, records in sections.items()
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
