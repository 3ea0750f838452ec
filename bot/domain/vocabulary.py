"""Canonical entity values of the conversation contract (shared/reference/conversation-contract.md).

The NLU synonyms in data/nlu/ map user wording onto these values; a test keeps the two in step.
"""

from __future__ import annotations

# Ningbo's ten county-level divisions, in the order the city lists them.
DISTRICTS: tuple[str, ...] = (
    "海曙区",
    "江北区",
    "镇海区",
    "北仑区",
    "鄞州区",
    "奉化区",
    "余姚市",
    "慈溪市",
    "宁海县",
    "象山县",
)

# Functional areas the contract allows as districts of their own.
FUNCTIONAL_AREAS: tuple[str, ...] = ("大榭开发区",)

DISTRICT_ALIASES: dict[str, str] = {
    **{name[:-1]: name for name in DISTRICTS},  # 鄞州 → 鄞州区, 慈溪 → 慈溪市 …
    "大榭": "大榭开发区",
}

SERVICE_TYPES: tuple[str, ...] = (
    "商标受理窗口",
    "商标品牌指导站",
    "知识产权保护中心",
    "知识产权综合体",
    "知识产权保险运营中心",
)


def canonical_district(value: str | None) -> str | None:
    """Map a district as written (full name or short form) to its canonical name, else None."""
    if not value:
        return None
    value = value.strip()
    if value in DISTRICTS or value in FUNCTIONAL_AREAS:
        return value
    return DISTRICT_ALIASES.get(value)
