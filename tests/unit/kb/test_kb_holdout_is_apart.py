"""The knowledge benchmark's holdout (bench/kb_holdout.yml) is apart from what the search is
built from: no holdout question is, after normalising, any item's question or phrasing."""

from __future__ import annotations

import re

import yaml

from bot.settings import PROJECT_ROOT

FILLERS = re.compile(r"[\W_]|请问|一下|呀|呢|吗|啊|吧|的")


def normalised(text: str) -> str:
    return FILLERS.sub("", text.lower())


def test_no_holdout_question_is_a_stored_question_or_phrasing() -> None:
    items = yaml.safe_load((PROJECT_ROOT / "data/kb/knowledge.yml").read_text("utf-8"))
    holdout = yaml.safe_load((PROJECT_ROOT / "bench/kb_holdout.yml").read_text("utf-8"))
    stored = {normalised(t) for i in items for t in (i["question"], *i["phrasings"])}
    overlapping = [row["q"] for row in holdout if normalised(row["q"]) in stored]
    assert overlapping == []
    assert len(holdout) >= 150


def test_every_holdout_question_names_an_item_and_its_figure() -> None:
    items = {
        i["key"]: i
        for i in yaml.safe_load((PROJECT_ROOT / "data/kb/knowledge.yml").read_text("utf-8"))
    }
    for row in yaml.safe_load((PROJECT_ROOT / "bench/kb_holdout.yml").read_text("utf-8")):
        item = items[row["key"]]
        assert all(str(e) in item["answer"] for e in row.get("expect") or ()), row["q"]
        assert bool(row.get("expect")) != bool(item["unknown"]), row["q"]
