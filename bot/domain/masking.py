"""Mask personal numbers (mainland mobiles, landlines, resident ID cards) in text and in logs.

Transcripts shown to admins, their CSV export and the gateway's logs pass through `mask()`, so a
citizen's phone or ID number typed into the chat never appears whole outside the database.
A number counts only when it stands alone (no digit right before or after it): a longer digit run
such as an order number is left as it is.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# 18-character resident ID: 6-digit region, 8-digit birth date, 3-digit sequence, check digit
# (0-9 or X). Kept: region and the last 4 (330203********1234).
ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
# Mainland mobile 1[3-9]x xxxx xxxx, optionally +86/86 and spaces or dashes between the groups.
MOBILE = re.compile(
    r"(?<!\d)((?:\+?86[- ]?)?)(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)",
)
# Landline with its area code: 0 + 2-3 digits, optionally in brackets, then 7-8 digits
# (0574-87654321, (021)12345678, 010 1234 5678). Kept: area code and the last 4.
LANDLINE = re.compile(
    r"(?<!\d)([(（]?0\d{2,3}[)）]?[- ]?)(\d{3,4})[- ]?(\d{4})(?!\d)",
)


def _mask_id_card(match: re.Match[str]) -> str:
    return f"{match.group(1)}********{match.group(2)}"


def _mask_mobile(match: re.Match[str]) -> str:
    prefix, head, tail = match.groups()
    return f"{prefix}{head}****{tail}"


def _mask_landline(match: re.Match[str]) -> str:
    area, _middle, tail = match.groups()
    return f"{area}****{tail}"


def mask(text: str) -> str:
    """`text` with every standalone ID card, mobile and landline number partly starred out."""
    if not text or not any(c.isdigit() for c in text):
        return text
    text = ID_CARD.sub(_mask_id_card, text)
    text = MOBILE.sub(_mask_mobile, text)
    return LANDLINE.sub(_mask_landline, text)


class MaskingFilter(logging.Filter):
    """Masks a record's message (formatted with its args), its traceback and stack text.

    The record is rewritten in place (message formatted, args dropped), so every handler after
    this filter only ever sees the masked text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_masked", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # msg and args do not fit: mask the parts, let logging report the error
        record.msg = mask(str(record.msg))
        record.args = _mask_args(record.args)
    else:
        record.msg = mask(message)
        record.args = None
    if record.exc_info and not record.exc_text:
        # Formatted here (as Formatter.format would) so that the masked text is what gets logged.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    record._masked = True
    return record


def _mask_args(args: Any) -> Any:
    if isinstance(args, tuple):
        return tuple(mask(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, dict):
        return {k: mask(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


def install_log_masking() -> None:
    """Mask every log record of this process, whichever logger or handler it goes through.

    Filters on the root logger would miss records propagated from child loggers, and handler
    filters miss handlers added later; wrapping the record factory covers both. Idempotent.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "_masks_records", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(current(*args, **kwargs))

    factory._masks_records = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
