"""Downloads staff open in Excel: CSV (UTF-8 with a BOM) and XLSX, safe from formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from aiohttp import web
from openpyxl import Workbook

from bot.staff.pages import BEIJING

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell(value: object) -> str:
    """Text a spreadsheet will not run as a formula (CSV/XLSX injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads UTF-8 Chinese


def xlsx_bytes(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(list(header))
    for row in rows:
        sheet.append([cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def download(name: str, kind: str, body: bytes) -> web.Response:
    """`name`-<Beijing time>.<kind> as an attachment, never cached."""
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    content_type = "text/csv" if kind == "csv" else XLSX_TYPE
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8" if kind == "csv" else None,
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.{kind}"',
            "Cache-Control": "no-store",
        },
    )
