"""Mask personal data (mainland mobiles, landlines, resident ID cards, e-mail addresses) in text
and in logs.

Transcripts shown to admins, their CSV export and the gateway's logs pass through `mask()`, so a
citizen's phone or ID number typed into the chat never appears whole outside the database.
A number counts only when it stands alone (no digit right before or after it): a longer digit run
such as an order number is left as it is.

Numbers are found as people type them (issue 14): the text is NFKC-normalised for matching
(full-width digits, Ｘ, ＠ and letters, the ideographic space), and up to three separators may stand
between any two digits (spaces, dashes, dots including 。 and ・). `mask()` returns the ORIGINAL
text with only the sensitive spans replaced; a replaced span is written in its normalised form
without separators (１３８ １２３４ ５６７８ → 138****5678).
"""

import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

# Between two digits (after NFKC): spaces, dashes, dots, the ideographic full stop, middle dots.
_SEP = r"[ \t\-.\u00b7\u30fb\u3002\u2010-\u2015\u2212]{0,3}"


# A number stands alone: no digit right before or after it, nor a mask's stars (so that masking
# twice changes nothing more: "0130****0000" is not read as the tail of another number).
_ALONE_BEFORE = r"(?<!\d)(?<!\*{4})"
_ALONE_AFTER = r"(?!\d|\*{4})"


def _digits(count: int, last: str = r"\d") -> str:
    """`count` digits (the last one matching `last`) with separators allowed between them."""
    return r"\d" + (_SEP + r"\d") * (count - 2) + _SEP + last


# 18-character resident ID: 6-digit region, 8-digit birth date, 3-digit sequence, check digit
# (0-9 or X). Kept: region and the last 4 (330203********1234).
ID_CARD = re.compile(_ALONE_BEFORE + _digits(18, r"[\dXx]") + _ALONE_AFTER)
# 15-digit resident ID (issued before 1999): region, yymmdd, sequence (330203*****0123).
OLD_ID_CARD = re.compile(
    _ALONE_BEFORE + _digits(8) + _SEP + r"(?:0" + _SEP + r"[1-9]|1" + _SEP + r"[0-2])" + _SEP
    + r"(?:[0-2]" + _SEP + r"\d|3" + _SEP + r"[01])" + _SEP + _digits(3) + _ALONE_AFTER
)  # fmt: skip
# Mainland mobile 1[3-9]x xxxx xxxx, optionally +86/86 before it.
MOBILE = re.compile(
    _ALONE_BEFORE + r"((?:\+?86" + _SEP + r")?)(1" + _SEP + r"[3-9]" + _SEP + _digits(9) + ")"
    + _ALONE_AFTER
)  # fmt: skip
# Landline with its area code: 0 + 2-3 digits, optionally in brackets, then 7-8 digits
# (0574-87654321, (021)12345678, 010 1234 5678). Kept: area code and the last 4.
LANDLINE = re.compile(
    _ALONE_BEFORE + r"(\(?0\d{2,3}\)?" + _SEP + r")(" + _digits(3) + "(?:" + _SEP + r"\d)?" + _SEP
    + _digits(4) + ")" + _ALONE_AFTER
)  # fmt: skip
# An e-mail address: kept the first character of the local part and the domain (z***@example.com).
EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)


def _plain(span: str) -> str:
    return "".join(c for c in span if c.isdigit() or c in "Xx")


def _mask_id_card(match: re.Match[str]) -> str:
    number = _plain(match.group())
    return f"{number[:6]}{'*' * (len(number) - 10)}{number[-4:]}"


def _mask_mobile(match: re.Match[str]) -> str:
    prefix, number = match.group(1), _plain(match.group(2))
    return f"{prefix}{number[:3]}****{number[-4:]}"


def _mask_landline(match: re.Match[str]) -> str:
    return f"{match.group(1)}****{_plain(match.group(2))[-4:]}"


def _mask_email(match: re.Match[str]) -> str:
    return f"{match.group(1)[0]}***@{match.group(2)}"


def _normalised(text: str) -> tuple[str, list[int]]:
    """NFKC per character, and for each normalised character the index of its original one."""
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        normal = unicodedata.normalize("NFKC", char)
        parts.append(normal)
        origin += [index] * len(normal)
    origin.append(len(text))
    return "".join(parts), origin


def _sub(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str], text: str) -> str:
    """Replace the matches found in the normalised text in the original `text`."""
    normal, origin = _normalised(text)
    pieces: list[str] = []
    done = 0
    for match in pattern.finditer(normal):
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        pieces += [text[done:start], replace(match)]
        done = end
    return "".join(pieces) + text[done:] if pieces else text


def mask(text: str) -> str:
    """`text` with every standalone ID card, mobile and landline number and e-mail address partly
    starred out; everything else is returned unchanged."""
    if not text or not any(c.isdigit() or c in "@＠" for c in text):
        return text
    text = _sub(ID_CARD, _mask_id_card, text)
    text = _sub(OLD_ID_CARD, _mask_id_card, text)
    text = _sub(MOBILE, _mask_mobile, text)
    text = _sub(LANDLINE, _mask_landline, text)
    return _sub(EMAIL, _mask_email, text)


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
