"""The one way async code (gateway and action server) runs database work: off the event loop,
in a fresh session, within a deadline (Settings.db_timeout, env DB_TIMEOUT).

SQLAlchemy 1.4 is used synchronously, so the work runs in a worker thread; past the deadline the
caller gets asyncio.TimeoutError (the thread finishes on its own), never a hang. Database errors
propagate unchanged: each caller decides what the user is told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.db.engine import session_factory

T = TypeVar("T")


async def run_db(database_url: str, work: Callable[[Session], T], timeout: float) -> T:
    """Run `work(session)` in a worker thread with a fresh session; asyncio.TimeoutError after
    `timeout` seconds."""

    def in_session() -> T:
        with session_factory(database_url)() as session:
            return work(session)

    return await asyncio.wait_for(asyncio.to_thread(in_session), timeout)
