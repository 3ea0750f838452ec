"""Grouping the review inbox's questions (bot.knowledge.grouping) with the search's tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.db.review import OpenQuestion
from bot.knowledge.grouping import group_questions

NOW = datetime(2026, 11, 30, 8, 0)


def questions(*texts: str) -> list[OpenQuestion]:
    return [
        OpenQuestion(
            i, text, "wechat" if i % 2 else "webchat", NOW - timedelta(hours=i), ("fallback",)
        )
        for i, text in enumerate(texts)
    ]


def test_paraphrases_meet_and_other_subjects_stay_apart() -> None:
    groups = group_questions(
        questions(
            "商标注册要多少钱", "注册商标多少钱？", "注册一个商标收费多少", "社保怎么交",
            "社保在哪里交", "今天天气怎么样", "鄞州区品牌指导站在哪", "鄞州有品牌指导站吗",
            "专利申请费用是多少", "商标注册要多少钱",
        )
    )  # fmt: skip
    texts = [sorted(text for text, _ in g.examples) for g in groups]
    assert texts[0] == sorted(["商标注册要多少钱", "注册商标多少钱？", "注册一个商标收费多少"])
    assert groups[0].count == 4 and groups[0].title == "商标注册要多少钱"
    assert sorted(["社保怎么交", "社保在哪里交"]) in texts
    assert sorted(["鄞州区品牌指导站在哪", "鄞州有品牌指导站吗"]) in texts
    assert ["专利申请费用是多少"] in texts and ["今天天气怎么样"] in texts
    assert groups[0].channels == ("webchat", "wechat")
    assert groups[0].last_at == NOW and groups[0].reasons == (("fallback", 4),)


def test_groups_of_one_size_come_newest_first() -> None:
    groups = group_questions(questions("地理标志怎么申请", "社保怎么交", "今天天气怎么样"))
    assert [g.title for g in groups] == ["地理标志怎么申请", "社保怎么交", "今天天气怎么样"]
    assert group_questions([]) == []
