"""Read Rasa NLU YAML (training data and the holdout) with Rasa's own reader."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rasa.shared.nlu.training_data.loading import load_data

from bot.settings import PROJECT_ROOT

TRAINING_DIR = PROJECT_ROOT / "data" / "nlu"
HOLDOUT = PROJECT_ROOT / "tests" / "nlu_holdout.yml"
# The topics of the service (issue #3 asks 40 training / 12 holdout examples for each of these,
# 15 / 5 for every other intent).
TOPIC_INTENTS = {
    "ask_trademark_window",
    "ask_ip_insurance",
    "find_brand_station",
    "ask_one_stop_service",
    "ask_patent_fast_track",
    "ask_pledge_financing",
    "ask_geographical_indication",
    "report_infringement",
    "request_human",
}


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    districts: frozenset[str]  # canonical values


def normalised(text: str) -> str:
    """The text without spaces, punctuation or case: two examples differing only so are one."""
    kept = (c for c in text if not (c.isspace() or unicodedata.category(c).startswith("P")))
    return "".join(kept).lower()


@cache
def synonyms() -> dict[str, str]:
    return dict(load_data(str(TRAINING_DIR)).entity_synonyms)


@cache
def examples(path: Path) -> tuple[Example, ...]:
    data = load_data(str(path))
    mapping = {**synonyms(), **data.entity_synonyms}
    return tuple(
        Example(
            text=m.get("text"),
            intent=m.get("intent"),
            districts=frozenset(
                mapping.get(e["value"], e["value"])
                for e in m.get("entities") or []
                if e["entity"] == "district"
            ),
        )
        for m in data.intent_examples
    )


def counts(path: Path) -> Counter[str]:
    return Counter(e.intent for e in examples(path))
