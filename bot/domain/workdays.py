"""China's working calendar: statutory holidays and swapped working weekends (调休) from the
`chinese-calendar` package, plus the days an administrator adds (local closures, extra working
days). Office hours, "next opening time" and every "N working days" deadline use it.

For a year the package does not know yet (it ships the State Council's schedule once published),
only weekends count as days off, besides the administrator's days: the console warns about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

# An administrator's day: True = an extra working day, False = closed (a local closure).
Overrides = Mapping[date, bool]


@lru_cache(maxsize=4096)
def statutory_workday(day: date) -> bool | None:
    """The State Council's answer for `day`; None for a year the package has no data for."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@lru_cache(maxsize=1)
def known_years() -> tuple[int, int]:
    """The first and last year the installed package has holiday data for."""
    years = [y for y in range(2000, 2100) if statutory_workday(date(y, 6, 1)) is not None]
    return (min(years), max(years)) if years else (0, 0)


def holiday_name(day: date) -> str | None:
    """ "国庆节" etc. for a statutory holiday (None otherwise, or when unknown)."""
    try:
        on_holiday, holiday = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    if not on_holiday or holiday is None:
        return None
    return HOLIDAY_NAMES.get(str(holiday), str(holiday))


HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


@dataclass(frozen=True)
class WorkCalendar:
    """Statutory days plus `overrides` (the administrator's list)."""

    overrides: Overrides = field(default_factory=dict)

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        statutory = statutory_workday(day)
        return day.isoweekday() <= 5 if statutory is None else statutory

    def add_workdays(self, start: date, count: int) -> date:
        """The `count`-th working day after `start` (start itself not counted)."""
        day, left = start, count
        while left > 0:
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end` (0 when end <= start)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_workday(day)
        return count

    def next_workday(self, day: date, limit_days: int = 400) -> date | None:
        """`day` itself or the first working day after it; None if none within the limit."""
        for offset in range(limit_days):
            candidate = day + timedelta(days=offset)
            if self.is_workday(candidate):
                return candidate
        return None
