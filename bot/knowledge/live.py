"""The published knowledge and its search index, kept current without a restart.

Every process that answers (each action-server worker, the staff console's 试一试) holds one
`LiveKnowledge`. Before answering it reads the content version (one primary-key row) at most once
per `poll_seconds`; when the version moved it reloads the published items and rebuilds the index
in a worker thread. A published edit is therefore answered everywhere within about
poll_seconds + the rebuild time (well under 5 s), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.db import knowledge as db
from bot.db.runner import run_db
from bot.knowledge.embed import Embedder
from bot.knowledge.search import Entry, KnowledgeIndex

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    version: int
    index: KnowledgeIndex
    items: Mapping[str, Entry]


def entry_of(item: db.KnowledgeItem) -> Entry:
    return Entry(
        key=item.key,
        topic=item.topic,
        question=item.question,
        phrasings=tuple(item.phrasings or ()),
        answer=item.answer,
        details=item.details or "",
        holds_for=item.holds_for or "",
        source_title=item.source_title or "",
        source_url=item.source_url or "",
        last_verified=item.last_verified.isoformat() if item.last_verified else "",
        unknown=bool(item.unknown),
        related=tuple(item.related or ()),
    )


def build_snapshot(version: int, entries: list[Entry], embedder: Embedder | None) -> Snapshot:
    return Snapshot(version, KnowledgeIndex(entries, embedder), {e.key: e for e in entries})


def _load(session: Session) -> tuple[int, list[Entry]]:
    version = db.content_version(session)
    return version, [entry_of(item) for item in db.published_items(session)]


class LiveKnowledge:
    def __init__(
        self,
        database_url: str,
        timeout: float,
        embedder: Embedder | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._database_url = database_url
        self._embedder = embedder
        self._timeout = timeout
        self._poll_seconds = poll_seconds
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Snapshot:
        """The current snapshot; database errors and timeouts propagate to the caller."""
        current = self._snapshot
        if current is not None and time.monotonic() - self._checked_at < self._poll_seconds:
            return current
        async with self._lock:  # one reload at a time; the others wait for its result
            current = self._snapshot
            if current is not None and time.monotonic() - self._checked_at < self._poll_seconds:
                return current
            version = await run_db(self._database_url, db.content_version, self._timeout)
            if current is None or version != current.version:
                version, entries = await run_db(self._database_url, _load, self._timeout)
                current = await asyncio.to_thread(build_snapshot, version, entries, self._embedder)
                self._snapshot = current
            self._checked_at = time.monotonic()
            return current


def warm_up(database_url: str, embedder: Embedder) -> int:
    """Embed every published item's texts now (into the shared cache), so that the action
    server's first question does not wait for it; returns how many items were indexed."""
    from bot.db.engine import session_factory

    with session_factory(database_url)() as session:
        _, entries = _load(session)
    KnowledgeIndex(entries, embedder)
    return len(entries)
