"""Run knowledge-base queries off the event loop, with a deadline.

The action server is asynchronous while SQLAlchemy 1.4 is used synchronously here, so each query
runs in a worker thread; a dead or slow database raises KnowledgeUnavailable instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.db.engine import session_factory
from bot.settings import database_url_from_env

logger = logging.getLogger(__name__)
T = TypeVar("T")

QUERY_TIMEOUT_SECONDS = float(os.environ.get("ACTION_DB_TIMEOUT", "3"))


class KnowledgeUnavailable(RuntimeError):
    """The knowledge base could not answer in time."""


async def query(work: Callable[[Session], T]) -> T:
    def in_session() -> T:
        with session_factory(database_url_from_env())() as session:
            return work(session)

    try:
        return await asyncio.wait_for(asyncio.to_thread(in_session), QUERY_TIMEOUT_SECONDS)
    except Exception as exc:  # any database failure becomes one answer for the user
        logger.exception("knowledge base query failed")
        raise KnowledgeUnavailable(str(exc)) from exc
