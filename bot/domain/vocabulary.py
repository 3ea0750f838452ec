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


# The contract's insurance_type values, in the contract's order.
INSURANCE_TYPES: tuple[str, ...] = (
    "专利被侵权损失保险",
    "专利执行保险",
    "商标被侵权损失补偿保险",
    "商标申请费用损失补偿保险",
    "海外侵权责任保险",
    "专利申请费用补偿保险",
    "PCT申请损失补偿保险",
    "地理标志保险",
    "知识产权质押融资保证保险",
)


def canonical_district(value: str | None) -> str | None:
    """Map a district as written (full name or short form) to its canonical name, else None."""
    if not value:
        return None
    value = value.strip()
    if value in DISTRICTS or value in FUNCTIONAL_AREAS:
        return value
    return DISTRICT_ALIASES.get(value)


# The payload that asks for a person: the 转人工 button, the web chat, WeChat, the knowledge
# answers and Rasa's intent agree on it.
REQUEST_HUMAN = "/request_human"
HUMAN_BUTTON = {"title": "转人工", "payload": REQUEST_HUMAN}
# "None of these" under the fallback's choices: the citizen's question was not understood.
NONE_OF_THESE = {"title": "都不是", "payload": "/out_of_scope"}

# Topics of knowledge items: the contract's topic intents plus topics no intent names, with the
# names staff see in the console.
KNOWLEDGE_TOPICS: dict[str, str] = {
    "ask_trademark_window": "商标受理窗口",
    "ask_ip_insurance": "知识产权保险",
    "find_brand_station": "商标品牌指导站",
    "ask_one_stop_service": "“最多跑一地”综合服务",
    "ask_patent_fast_track": "专利预审快速通道",
    "ask_pledge_financing": "知识产权质押融资",
    "ask_geographical_indication": "地理标志",
    "report_infringement": "侵权投诉举报",
    "city_statistics": "全市统计数据",
    "general": "综合问题",
}
