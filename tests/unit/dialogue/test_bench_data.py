"""The dialogue benchmark and the fallback calibration set are written apart from the data the
bot learns or searches from: no phrasing of theirs occurs in data/ (NLU examples, stories, rules,
knowledge questions and phrasings) or in the test stories."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.settings import PROJECT_ROOT
from tests.support.nlu_data import TRAINING_DIR, examples, normalised

BENCH = PROJECT_ROOT / "bench"
ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def bench_phrasings() -> set[str]:
    conversations = yaml.safe_load((BENCH / "dialogue_conversations.yml").read_text("utf-8"))
    said = {
        t["say"] for c in conversations["conversations"] for t in c["turns"] if not t.get("payload")
    }
    calibration = yaml.safe_load((BENCH / "fallback_set.yml").read_text("utf-8"))
    said |= {str(t) for t in calibration["nonsense"] + calibration["out_of_scope"]}
    said |= {r["text"] for r in calibration["real"]}
    return {normalised(s) for s in said} - {""}


def user_lines(path: Path) -> set[str]:
    """Every user message of a stories/rules file and every question of the knowledge seed."""
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("user", "question") and isinstance(value, str):
                    found.add(value)
                elif key == "phrasings" and isinstance(value, list):
                    found.update(map(str, value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return {normalised(ANNOTATION.sub(r"\1", line)) for line in found}


def data_phrasings() -> set[str]:
    phrasings = {normalised(e.text) for e in examples(TRAINING_DIR)}
    for folder in ("data/stories", "data/rules", "data/kb"):
        for path in sorted((PROJECT_ROOT / folder).glob("*.yml")):
            phrasings |= user_lines(path)
    for path in sorted((PROJECT_ROOT / "tests").glob("test_stories*.yml")):
        phrasings |= user_lines(path)
    return phrasings


def test_the_walk_finds_knowledge_phrasings() -> None:
    assert normalised("宁波的商标受理窗口能干嘛") in data_phrasings()


def test_benchmark_phrasings_are_not_in_the_data() -> None:
    assert sorted(bench_phrasings() & data_phrasings()) == []


def test_benchmark_is_big_enough() -> None:
    conversations = yaml.safe_load((BENCH / "dialogue_conversations.yml").read_text("utf-8"))
    assert len(conversations["conversations"]) >= 40
