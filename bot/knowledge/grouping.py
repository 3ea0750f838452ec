"""Group similar citizen questions for the review inbox, with the knowledge search's tokens.

Each question becomes a TF-IDF vector over the tokens the knowledge search uses (jieba words,
detail concepts such as @cost, character bigrams), so "商标注册多少钱" and "注册商标要多少钱"
meet however jieba cuts them. Identical texts (after dropping punctuation and case) count once
for the vectors. Groups are formed around leaders: the most asked unassigned text takes every
unassigned text at least THRESHOLD similar to it; there is no chaining, so one group never
drifts from "商标费用" to "专利费用" through a run of in-between questions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.knowledge.search import tokens

# Cosine of the TF-IDF vectors above which two questions are one group; chosen on hand-checked
# pairs in tests/unit/knowledge/test_grouping.py (paraphrases 0.32–0.9, other topics below 0.2).
THRESHOLD = 0.3
EXAMPLES = 5
CHUNK = 1024  # rows of the similarity matrix computed at once (bounded memory)
PUNCTUATION = re.compile(r"[\W_]+")


class Question(Protocol):
    """What grouping needs of a flagged question (bot.db.review.OpenQuestion)."""

    @property
    def message_id(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Group:
    message_ids: tuple[int, ...]
    examples: tuple[tuple[str, int], ...]  # (text, times asked), most asked first
    channels: tuple[str, ...]
    reasons: tuple[tuple[str, int], ...]  # (reason, questions), most frequent first
    first_at: datetime
    last_at: datetime

    @property
    def count(self) -> int:
        return len(self.message_ids)

    @property
    def title(self) -> str:
        return self.examples[0][0]


def normalized(text: str) -> str:
    return PUNCTUATION.sub("", text.lower())


def _analyzer(text: str) -> list[str]:
    return tokens(text) or [normalized(text)]


def leaders(vectors: sparse.csr_matrix, order: Sequence[int], threshold: float) -> list[int]:
    """The group (an index into `order`'s texts) of every row: leaders taken in `order`."""
    count = vectors.shape[0]
    neighbours: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * count
    for start in range(0, count, CHUNK):
        block = (vectors[start : start + CHUNK] @ vectors.T).toarray()
        for offset, row in enumerate(block):
            neighbours[start + offset] = np.flatnonzero(row >= threshold)
    group = [-1] * count
    for index in order:
        if group[index] != -1:
            continue
        group[index] = index
        for other in neighbours[index]:
            if group[other] == -1:
                group[other] = index
    return group


def group_questions(questions: Sequence[Question], threshold: float = THRESHOLD) -> list[Group]:
    """Groups of similar questions, the biggest first, then the most recently asked."""
    if not questions:
        return []
    by_text: dict[str, list[Question]] = {}
    for question in questions:
        by_text.setdefault(normalized(question.text) or question.text, []).append(question)
    keys = list(by_text)
    texts = [by_text[k][0].text for k in keys]
    vectorizer = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True)
    vectors = sparse.csr_matrix(vectorizer.fit_transform(texts), dtype=np.float32)
    order = sorted(
        range(len(keys)),
        key=lambda i: (
            -len(by_text[keys[i]]),
            -max(q.created_at for q in by_text[keys[i]]).timestamp(),
        ),
    )
    assigned = leaders(vectors, order, threshold)
    members: dict[int, list[Question]] = {}
    for index, leader in enumerate(assigned):
        members.setdefault(leader, []).extend(by_text[keys[index]])
    groups = [_group(found) for found in members.values()]
    groups.sort(key=lambda g: (-g.count, -g.last_at.timestamp()))
    return groups


def _group(questions: list[Question]) -> Group:
    texts = Counter(q.text for q in questions)
    reasons = Counter(r for q in questions for r in q.reasons)
    moments = [q.created_at for q in questions]
    return Group(
        message_ids=tuple(sorted((q.message_id for q in questions), reverse=True)),
        examples=tuple(texts.most_common(EXAMPLES)),
        channels=tuple(sorted({q.channel for q in questions})),
        reasons=tuple(reasons.most_common()),
        first_at=min(moments),
        last_at=max(moments),
    )
