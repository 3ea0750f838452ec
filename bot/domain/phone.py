"""Phone number formats accepted from staff (imports) and from users (the consultation form)."""

from __future__ import annotations

import re

# Mainland mobile: 11 digits starting 13–19.
MOBILE = re.compile(r"1[3-9]\d{9}")
# Landline with area code: 0574-87654321, 057487654321, 010-12345678.
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}")
# Staff data may also list national hotlines (12330, 12315) and extensions (0574-87654321-123).
HOTLINE = re.compile(r"1\d{4}")
EXTENSION = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
SEPARATORS = re.compile(r"[；;,，、/]")


def normalize(text: str) -> str:
    """Drop the spaces and full-width hyphens people type inside a number."""
    return re.sub(r"[\s\u3000]", "", text).replace("－", "-").replace("—", "-")


def is_contact_phone(text: str) -> bool:
    """A number a person can be called back on: mainland mobile or landline."""
    value = normalize(text)
    return bool(MOBILE.fullmatch(value) or LANDLINE.fullmatch(value))


def contact_phone_problem(text: str) -> str | None:
    """Why `text` is not a usable call-back number (in Chinese, for the user), else None."""
    value = normalize(text)
    if is_contact_phone(value):
        return None
    digits = re.sub(r"\D", "", value)
    if not digits:
        return "您输入的内容里没有数字"
    if digits.startswith("1") and len(digits) != 11:
        return f"手机号应为11位，您输入的是{len(digits)}位"
    if digits.startswith("1"):
        return "手机号的第二位应为3至9"
    if digits.startswith("0"):
        return "固定电话应带区号，例如0574-87654321"
    return "号码格式不对，请输入11位手机号或带区号的固定电话"


def is_listed_phone(text: str) -> bool:
    """A phone field of a service point: one or more numbers, hotlines and extensions allowed."""
    parts = [normalize(p) for p in SEPARATORS.split(text) if p.strip()]
    return bool(parts) and all(
        MOBILE.fullmatch(p) or EXTENSION.fullmatch(p) or HOTLINE.fullmatch(p) for p in parts
    )
