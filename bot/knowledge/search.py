"""Find the knowledge item a citizen's question asks about: jieba tokens, BM25, a confidence.

Two views of each item, fused: BM25 over its words (question, phrasings and answer as one
document: exact figures, names and terms) and multilingual-e5 embeddings of its question and
phrasings (meaning: "过户" finds 转让, a long elderly-style question finds the short one). `make
eval-kb` measures each alone and fused, and the fusion is what the numbers favour.

The NLU's topic and the previous turn's topic are hints: they multiply an item's score, they
never exclude an item (a statistics question filed under a patent topic still finds statistics).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import bm25s
import jieba
import numpy as np

from bot.knowledge.embed import Embedder
from bot.settings import PROJECT_ROOT

DICTIONARY = PROJECT_ROOT / "data" / "dict" / "ip_terms.txt"
# Particles and fillers that say nothing about which fact is asked for.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "啊",
        "呀",
        "吧",
        "嘛",
        "哦",
        "噢",
        "哈",
        "么",
        "是",
        "在",
        "有",
        "我",
        "我们",
        "你",
        "你们",
        "想",
        "请问",
        "请",
        "问",
        "问下",
        "一下",
        "下",
        "一",
        "个",
        "那",
        "那么",
        "这",
        "这个",
        "那个",
        "就",
        "还",
        "也",
        "都",
        "和",
        "与",
        "及",
        "或",
        "及其",
        "要",
        "能",
        "可以",
        "会",
        "啥",
        "呗",
        "哪",
        "些",
    ]
)
NON_WORD = re.compile(r"[^\w]+")
HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
# Weight of BM25 against the embeddings in the fused score; chosen by `make eval-kb` on a
# leave-one-phrasing-out development set (never the holdout).
LEXICAL_WEIGHT = 0.3
TOPIC_BOOST = 1.1  # the NLU's topic for this turn: a hint (stronger hurt the development set)
PREVIOUS_TOPIC_BOOST = 1.3  # the topic answered on the turn before ("那要多久")
# Above this many items, cosines are first taken with each item's centroid and only the
# CANDIDATES best by centroid or by BM25 are compared phrasing by phrasing: at 10,000 items
# the full product is ~90,000 rows (~10 ms); `make eval-kb` measures both paths on the seed.
EXACT_UP_TO = 2_000
CANDIDATES = 64
# What kind of detail is asked, however it is worded: each adds one shared token to questions
# and documents alike, so "多长时间" meets "多久" and "收费" meets "多少钱".
CONCEPTS: dict[str, re.Pattern[str]] = {
    "@cost": re.compile(r"多少钱|费用|收费|价格|官费|交多少|要钱|收钱|花多少|几块钱|钱"),
    "@time": re.compile(r"多久|多长时间|几个月|几天|周期|时限|期限|多快|要多长"),
    "@place": re.compile(r"在哪|哪里|哪儿|地址|地点|位置|怎么走|哪条路|去哪"),
    "@hours": re.compile(r"几点|上班|下班|开门|办公时间|营业|开放时间|周末"),
    "@phone": re.compile(r"电话|号码|热线|联系方式|打哪个"),
    "@materials": re.compile(r"材料|资料|证件|带什么|要带|准备什么|手续"),
    "@count": re.compile(r"多少件|几件|多少个|几个|多少家|数量|有多少"),
    "@how": re.compile(r"怎么办|怎么申请|如何|流程|步骤|怎么弄|怎么做|怎么办理"),
}


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
    score: float  # the fused score after the topic hints (the ranking)
    confidence: float  # 0–1: the share of the question's information the item's words cover
    similarity: float = 0.0  # best cosine with the item's question or phrasings (0: no model)


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    tokenizer.load_userdict(str(DICTIONARY))
    return tokenizer


def words(text: str) -> list[str]:
    """jieba words (search mode: long terms and their parts), lower-cased, without fillers."""
    cleaned = NON_WORD.sub(" ", text.lower())
    found = [w for w in _tokenizer().lcut_for_search(cleaned) if w.strip() and w not in STOPWORDS]
    return found + [concept for concept, pattern in CONCEPTS.items() if pattern.search(text)]


@lru_cache(maxsize=50_000)
def document_tokens(entry: Entry) -> tuple[str, ...]:
    """An item's document, cached: a rebuild after an edit tokenizes only what changed."""
    return tuple(tokens(" ".join((entry.question, *entry.phrasings, entry.answer))))


@lru_cache(maxsize=50_000)
def document_vocabulary(entry: Entry) -> frozenset[str]:
    return frozenset(document_tokens(entry))


def tokens(text: str) -> list[str]:
    """Words plus character bigrams: bigrams still match when jieba cuts a typo differently."""
    found = words(text)
    bigrams = ["#" + run[i : i + 2] for run in HAN_RUN.findall(text) for i in range(len(run) - 1)]
    return found + bigrams


class KnowledgeIndex:
    """BM25 over one document per item (question, phrasings and answer together) fused with
    the best cosine similarity between the question and the item's question or phrasings."""

    def __init__(
        self,
        entries: Sequence[Entry],
        embedder: Embedder | None = None,
        lexical_weight: float = LEXICAL_WEIGHT,
        exact_up_to: int = EXACT_UP_TO,
    ) -> None:
        self.entries = list(entries)
        self._embedder = embedder
        self._lexical_weight = lexical_weight
        docs = [document_tokens(e) for e in self.entries]
        self._vocabularies = [document_vocabulary(e) for e in self.entries]
        self._idf = _idf(self._vocabularies)
        self._bm25: bm25s.BM25 | None = None
        if docs:
            self._bm25 = bm25s.BM25()
            self._bm25.index(docs, show_progress=False)
        self._topics = np.asarray([e.topic for e in self.entries], dtype=object)
        self._vectors: np.ndarray | None = None
        self._vector_starts = np.zeros(0, dtype=np.int64)
        self._blocks: list[np.ndarray] = []
        self._centroids = np.zeros((0, 0), dtype=np.float32)
        if embedder is not None and self.entries:
            missing = [e for e in self.entries if (e.question, *e.phrasings) not in embedder]
            if missing:  # one batch for everything new (the engine is faster per batch)
                embedder.passages([t for e in missing for t in (e.question, *e.phrasings)])
            blocks = [embedder.item_vectors((e.question, *e.phrasings)) for e in self.entries]
            sizes = np.asarray([len(b) for b in blocks], dtype=np.int64)
            self._vector_starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            self._vectors = np.concatenate(blocks)  # each item's vectors contiguous
            self._blocks = blocks
            centroids = np.stack([b.mean(axis=0) for b in blocks])
            self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        self._exact = len(self.entries) <= exact_up_to
        self._rarest = max(self._idf.values(), default=1.0)

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
        # The question's embedding (~16 ms, in C without the GIL) runs while BM25 scores.
        embedding = self._embed_soon(text)
        lexical = np.asarray(self._bm25.get_scores(query), dtype=np.float64)
        if lexical.max() <= 0:
            return []
        fused = lexical / lexical.max()
        similarity = np.zeros(len(self.entries))
        if embedding is not None:
            similarity = self._similarity(embedding.result(), lexical)
            spread = similarity.max() - similarity.min()
            scaled = (similarity - similarity.min()) / spread if spread > 0 else similarity * 0
            fused = self._lexical_weight * fused + (1 - self._lexical_weight) * scaled
        if previous_topic and previous_topic != topic:
            fused[self._topics == previous_topic] *= PREVIOUS_TOPIC_BOOST
        if topic:
            fused[self._topics == topic] *= TOPIC_BOOST
        ranked = np.argsort(-fused)[:limit]
        query_words = words(text)
        return [
            Hit(
                key=self.entries[int(i)].key,
                topic=self.entries[int(i)].topic,
                question=self.entries[int(i)].question,
                score=float(fused[i]),
                confidence=self._coverage(query_words, self._vocabularies[int(i)]),
                similarity=float(similarity[i]),
            )
            for i in ranked
        ]

    def _embed_soon(self, text: str) -> Future[np.ndarray] | None:
        if self._vectors is None or self._embedder is None:
            return None
        return _embedding_thread().submit(self._embedder.query, text)

    def _similarity(self, question: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Each item's best cosine over its question and phrasings; above EXACT_UP_TO items,
        exact for the likely candidates and the centroid's cosine for the rest."""
        assert self._vectors is not None
        if self._exact:
            cosine = self._vectors @ question
            return np.maximum.reduceat(cosine, self._vector_starts).astype(np.float64)
        similarity = (self._centroids @ question).astype(np.float64)
        k = min(CANDIDATES, len(similarity) - 1)
        candidates = np.union1d(
            np.argpartition(-similarity, k)[:k], np.argpartition(-lexical, k)[:k]
        )
        for i in candidates:
            similarity[i] = float((self._blocks[int(i)] @ question).max())
        return similarity

    def _coverage(self, query_words: list[str], present: frozenset[str]) -> float:
        """IDF-weighted share of the question's words found in the item's words; a word the
        index has never seen weighs as much as the rarest one (it is unexplained information)."""
        if not query_words:
            return 0.0
        total = found = 0.0
        for word in dict.fromkeys(query_words):
            weight = self._idf.get(word, self._rarest)
            total += weight
            if word in present:
                found += weight
        return found / total if total else 0.0


@lru_cache(maxsize=1)
def _embedding_thread() -> ThreadPoolExecutor:
    """One thread for question embeddings: the model runs one question at a time anyway."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-embed")


def _idf(vocabularies: Sequence[frozenset[str]]) -> dict[str, float]:
    """Inverse document frequency of each word (bigrams, "#…", only rank; they are not words)."""
    count = len(vocabularies)
    frequency = Counter(chain.from_iterable(vocabularies))
    return {
        t: math.log(1 + (count - n + 0.5) / (n + 0.5))
        for t, n in frequency.items()
        if not t.startswith("#")
    }
