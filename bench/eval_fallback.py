"""The NLU fallback threshold, calibrated: how nonsense, out-of-scope and real questions fare.

For each candidate threshold, on bench/fallback_set.yml (written apart from the training data):
the share of nonsense that falls back, of out-of-scope messages that fall back or are read as
out_of_scope, and of real questions (the set's and the NLU holdout's) that keep their (right)
intent. The threshold in config.yml
(FallbackClassifier) should catch nonsense without losing real questions.

    .venv/bin/python bench/eval_fallback.py [--model models/ipbot-….tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.rasa.model import ensure_trained
from bot.settings import PROJECT_ROOT
from tests.support.nlu_data import HOLDOUT, examples

SET = PROJECT_ROOT / "bench" / "fallback_set.yml"
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
FALLBACK, OUT_OF_SCOPE = "nlu_fallback", "out_of_scope"


def configured_threshold() -> float:
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text("utf-8"))
    step = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    return float(step["threshold"])


def top_intent(parsed: dict[str, Any]) -> tuple[str, float]:
    """The classifier's own best intent and confidence (before the fallback replaced it)."""
    ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != FALLBACK]
    if not ranking:
        return FALLBACK, 0.0
    return ranking[0]["name"], float(ranking[0]["confidence"])


async def parse_all(model: Path, texts: list[str]) -> list[tuple[str, float]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [top_intent(await agent.parse_message(text)) for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="default: the model for the current data")
    args = parser.parse_args()
    data = yaml.safe_load(SET.read_text("utf-8"))
    nonsense, oos = [str(t) for t in data["nonsense"]], [str(t) for t in data["out_of_scope"]]
    real = [(r["text"], r["intent"]) for r in data["real"]]
    # The NLU holdout too: every question pushed below the threshold counts as a miss there.
    real += [(e.text, e.intent) for e in examples(HOLDOUT)]
    texts = [*nonsense, *oos, *(t for t, _ in real)]
    results = asyncio.run(parse_all(args.model or ensure_trained(), texts))
    got_nonsense = results[: len(nonsense)]
    got_oos = results[len(nonsense) : len(nonsense) + len(oos)]
    got_real = results[len(nonsense) + len(oos) :]
    current = configured_threshold()
    print(f"{len(nonsense)} nonsense, {len(oos)} out of scope, {len(real)} real questions")
    print("threshold  nonsense→fallback  nonsense→fallback/oos  off-topic→fallback/oos  real→right")
    for t in sorted({*THRESHOLDS, current}):
        caught = sum(c < t for _, c in got_nonsense) / len(nonsense)
        handled = sum(c < t or i == OUT_OF_SCOPE for i, c in got_nonsense) / len(nonsense)
        scoped = sum(c < t or i == OUT_OF_SCOPE for i, c in got_oos) / len(oos)
        pairs = zip(got_real, real, strict=True)
        kept = sum(c >= t and i == want for (i, c), (_, want) in pairs) / len(real)
        mark = "  ← config.yml" if t == current else ""
        print(f"  {t:.2f} {caught:18.2f} {handled:22.2f} {scoped:23.2f} {kept:11.2f}{mark}")
    print("\nnonsense read with confidence ≥ 0.5:")
    for text, (intent, confidence) in zip(nonsense, got_nonsense, strict=True):
        if confidence >= 0.5:
            print(f"  {text!r}: {intent} {confidence:.2f}")
    print("real questions of the set below 0.8 or misread:")
    for (text, want), (intent, confidence) in zip(real, got_real, strict=True):
        if (confidence < 0.8 or intent != want) and text in (r["text"] for r in data["real"]):
            print(f"  {text!r}: {intent} {confidence:.2f} (want {want})")


if __name__ == "__main__":
    main()
