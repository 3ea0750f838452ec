"""Find the knowledge item a citizen's question asks about: jieba tokens, BM25, a confidence.

Each item is indexed as several short documents (its question, each phrasing, its answer), and an
item scores the best of its documents: people's questions resemble other questions more than
they resemble answers. BM25 ranks; the confidence that decides answer / "您是想问" / fallback is
the share of the question's information (IDF-weighted words) that the best document covers, which
unlike a raw BM25 score means the same thing for a 3-word and a 15-word question.

The NLU's topic and the previous turn's topic are hints: they multiply an item's score, they
never exclude an item (a statistics question filed under a patent topic still finds statistics).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import bm25s
import jieba
import numpy as np

from bot.settings import PROJECT_ROOT

DICTIONARY = PROJECT_ROOT / "data" / "dict" / "ip_terms.txt"
# Particles and fillers that say nothing about which fact is asked for.
STOPWORDS = frozenset(
    "的 了 吗 呢 啊 呀 吧 嘛 哦 噢 哈 么 是 在 有 我 我们 你 你们 想 请问 请 问 问下 一下 下 一 个 "
    "那 那么 这 这个 那个 就 还 也 都 和 与 及 或 及其 要 能 可以 会 吗？ 啥 呗 哪 些".split()
)
NON_WORD = re.compile(r"[^\w]+")
TOPIC_BOOST = 1.25  # the NLU's topic for this turn
PREVIOUS_TOPIC_BOOST = 1.1  # the topic answered on the turn before


@dataclass(frozen=True)
class Entry:
    """A published item as the answering side sees it: a plain snapshot, no session behind it."""

    key: str
    topic: str
    question: str
    phrasings: tuple[str, ...]
    answer: str
    details: str = ""
    holds_for: str = ""
    source_title: str = ""
    source_url: str = ""
    last_verified: str = ""  # ISO date
    unknown: bool = False
    related: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    key: str
    topic: str
    question: str
    score: float  # BM25 after the topic hints
    confidence: float  # 0–1: the share of the question's information the item covers


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    tokenizer.load_userdict(str(DICTIONARY))
    return tokenizer


def words(text: str) -> list[str]:
    """jieba words (search mode: long terms and their parts), lower-cased, without fillers."""
    cleaned = NON_WORD.sub(" ", text.lower())
    return [
        w
        for w in _tokenizer().lcut_for_search(cleaned)
        if w.strip() and w not in STOPWORDS
    ]


def tokens(text: str) -> list[str]:
    """Words plus character bigrams: bigrams still match when jieba cuts a typo differently."""
    found = words(text)
    chars = [c for c in NON_WORD.sub("", text.lower())]
    bigrams = ["#" + a + b for a, b in zip(chars, chars[1:])]
    return found + bigrams


@dataclass
class KnowledgeIndex:
    entries: Sequence[Entry]
    _owner: np.ndarray = field(init=False, repr=False)
    _docs: list[list[str]] = field(init=False, repr=False)
    _bm25: bm25s.BM25 | None = field(init=False, repr=False)
    _idf: dict[str, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        owner: list[int] = []
        docs: list[list[str]] = []
        for position, entry in enumerate(self.entries):
            for text in (entry.question, *entry.phrasings, entry.answer):
                docs.append(tokens(text))
                owner.append(position)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._docs = docs
        self._bm25 = None
        if docs:
            self._bm25 = bm25s.BM25()
            self._bm25.index(docs, show_progress=False)
        self._idf = _idf(docs)

    def search(
        self,
        text: str,
        topic: str | None = None,
        previous_topic: str | None = None,
        limit: int = 3,
    ) -> list[Hit]:
        """The best `limit` items for `text`, best first (empty when nothing matches at all)."""
        query = tokens(text)
        if self._bm25 is None or not query:
            return []
        doc_scores = self._bm25.get_scores(query)
        item_scores = np.zeros(len(self.entries))
        best_doc = np.full(len(self.entries), -1, dtype=np.int64)
        order = np.argsort(doc_scores)  # ascending: the last write per item is its best doc
        item_scores[self._owner[order]] = doc_scores[order]
        best_doc[self._owner[order]] = order
        for position, entry in enumerate(self.entries):
            if topic and entry.topic == topic:
                item_scores[position] *= TOPIC_BOOST
            elif previous_topic and entry.topic == previous_topic:
                item_scores[position] *= PREVIOUS_TOPIC_BOOST
        ranked = np.argsort(-item_scores)[:limit]
        query_words = words(text)
        hits = []
        for position in ranked:
            if item_scores[position] <= 0:
                break
            entry = self.entries[int(position)]
            covered = self._coverage(query_words, self._docs[int(best_doc[position])])
            hits.append(
                Hit(entry.key, entry.topic, entry.question, float(item_scores[position]), covered)
            )
        return hits

    def _coverage(self, query_words: list[str], doc: list[str]) -> float:
        """IDF-weighted share of the question's words found in the document; a word the index
        has never seen weighs as much as the rarest one (it is unexplained information)."""
        if not query_words:
            return 0.0
        present = set(doc)
        rarest = max(self._idf.values(), default=1.0)
        total = found = 0.0
        for word in dict.fromkeys(query_words):
            weight = self._idf.get(word, rarest)
            total += weight
            if word in present:
                found += weight
        return found / total if total else 0.0


def _idf(docs: Iterable[list[str]]) -> dict[str, float]:
    frequency: dict[str, int] = {}
    count = 0
    for doc in docs:
        count += 1
        for token in set(doc):
            if not token.startswith("#"):
                frequency[token] = frequency.get(token, 0) + 1
    return {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
