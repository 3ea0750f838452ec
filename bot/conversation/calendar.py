"""The working calendar as the gateway uses it: the administrator's days read from the database at
most every REFRESH_SECONDS (a change in the console holds everywhere within that time)."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from bot.conversation.store import ChatStore
from bot.db.calendar_days import work_calendar
from bot.domain.workdays import WorkCalendar

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 30.0
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_today(now: datetime | None = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(BEIJING).date()


class CalendarSource:
    def __init__(self, store: ChatStore, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._calendar = WorkCalendar()
        self._read_at: float | None = None

    async def get(self) -> WorkCalendar:
        """The calendar; the last one read (or the statutory one) while the database is down."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh_seconds:
            try:
                self._calendar = await self.store.run(work_calendar)
            except Exception:
                logger.warning("could not read the calendar days; using the last known ones")
            self._read_at = now
        return self._calendar

    def forget(self) -> None:
        """Read again next time (after a change made by this process)."""
        self._read_at = None
