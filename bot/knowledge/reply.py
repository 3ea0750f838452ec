"""From search hits to what the citizen reads: answer, "您是想问", or not found.

The first message is the direct answer (the figure, the year it holds for, the source) exactly as
staff wrote it; details, the source line and 2–3 related questions follow. Related questions and
suggestions are buttons whose payload is empty: the channel sends the title as typed text, so a
click goes through the NLU and the search like any question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.domain.vocabulary import HUMAN_BUTTON
from bot.knowledge.search import Entry, Hit

# Calibrated by `make eval-kb --calibrate` on a development set (each item's last phrasing held
# out), never on the holdout. The fused score must stand out from the runner-up's by MIN_MARGIN
# to be answered outright ("材料" alone fits many items equally: choices, not a guess).
MIN_MARGIN = 1.05
# Below both of these the question is about something else (weather, pensions): not found.
UNRELATED_COVERAGE = 0.3
UNRELATED_SIMILARITY = 0.86
# When the NLU itself thought the message out of scope or did not understand it, an answer
# needs strong evidence: most of its words or a near-paraphrase. On the NLU's out-of-scope
# examples 1% pass; of the development questions 80% still do (`make eval-kb --calibrate`).
STRONG_COVERAGE = 0.7
STRONG_SIMILARITY = 0.92
RELATED_QUESTIONS = 3

Band = Literal["answer", "suggest", "none"]


@dataclass(frozen=True)
class Decision:
    band: Band
    hits: tuple[Hit, ...]

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def decide(hits: Sequence[Hit], doubted: bool = False) -> Decision:
    """The band for these hits. `doubted`: the NLU found no topic (out of scope, not
    understood), so an outright answer needs strong evidence, else it is only suggested."""
    if not hits:
        return Decision("none", ())
    best = hits[0]
    if best.confidence < UNRELATED_COVERAGE and best.similarity < UNRELATED_SIMILARITY:
        return Decision("none", tuple(hits))
    runner_up = hits[1].score if len(hits) > 1 else 0.0
    if best.score >= MIN_MARGIN * runner_up and (not doubted or is_strong(best)):
        return Decision("answer", tuple(hits))
    return Decision("suggest", tuple(hits))


def is_strong(hit: Hit) -> bool:
    return hit.confidence >= STRONG_COVERAGE or hit.similarity >= STRONG_SIMILARITY


def question_button(question: str) -> dict[str, str]:
    return {"title": question, "payload": ""}


def source_line(item: Entry) -> str:
    parts = []
    if item.source_title:
        source = item.source_title + (f"（{item.source_url}）" if item.source_url else "")
        parts.append(f"来源：{source}")
    if item.holds_for:
        parts.append(f"信息时间：{item.holds_for}")
    if item.last_verified:
        parts.append(f"核实于{item.last_verified}")
    return "；".join(parts)


def answer_messages(item: Entry, items: Mapping[str, Entry]) -> list[dict[str, Any]]:
    """The messages for one item: answer first; then details and source; then related buttons."""
    first: dict[str, Any] = {"text": item.answer}
    if item.unknown:
        first["buttons"] = [HUMAN_BUTTON]
    messages = [first]
    more = "\n".join(part for part in (item.details, source_line(item)) if part)
    if more and not item.unknown:
        messages.append({"text": more})
    related = [items[k] for k in item.related if k in items][:RELATED_QUESTIONS]
    if related:
        messages.append(
            {"text": "您可能还想问：", "buttons": [question_button(r.question) for r in related]}
        )
    return messages


def suggestion_message(hits: Sequence[Hit]) -> dict[str, Any]:
    buttons = [question_button(h.question) for h in hits[:RELATED_QUESTIONS]]
    return {"text": "您是想问：", "buttons": [*buttons, HUMAN_BUTTON]}
