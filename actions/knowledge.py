"""Run knowledge-base queries off the event loop, with the one database deadline.

The action server is asynchronous while SQLAlchemy 1.4 is used synchronously here, so each query
runs through bot.db.runner.run_db (a worker thread, Settings.db_timeout); a dead or slow database
raises KnowledgeUnavailable instead of hanging.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.db.runner import run_db
from bot.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")


class KnowledgeUnavailable(RuntimeError):
    """The knowledge base could not answer in time."""


@lru_cache(maxsize=1)
def action_settings() -> Settings:
    """The action server's settings (DATABASE_URL, DB_TIMEOUT …), read once, on first use."""
    # The action server uses no secret: it never creates or reads var/secrets.json.
    return Settings.from_env(generate_secrets=False)


async def query(work: Callable[[Session], T]) -> T:
    """Run `work(session)` within DB_TIMEOUT; any failure becomes KnowledgeUnavailable."""
    try:
        settings = action_settings()
        return await run_db(settings.database_url, work, settings.db_timeout)
    except Exception as exc:  # any database failure becomes one answer for the user
        logger.exception("knowledge base query failed")
        raise KnowledgeUnavailable(str(exc)) from exc
