"""Staff working hours, e.g. "1-5 09:00-17:00" (ISO weekdays, Monday = 1) or "always", on China's
working calendar (bot/domain/workdays.py): closed on statutory holidays and an administrator's
closures, open on a swapped working weekend (调休) and an administrator's extra days."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.workdays import WorkCalendar, holiday_name, statutory_workday

WEEKDAY_NAMES = "一二三四五六日"
PATTERN = re.compile(r"^([1-7])-([1-7]) (\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
NO_OVERRIDES = WorkCalendar()
# How far ahead the next opening time is looked for (a long closure still has an answer).
LOOK_AHEAD_DAYS = 60


@dataclass(frozen=True)
class WorkingHours:
    first_day: int = 1
    last_day: int = 7
    opens: time = time(0, 0)
    closes: time = time(23, 59, 59)
    always: bool = True
    timezone: str = "Asia/Shanghai"

    @classmethod
    def parse(cls, spec: str, timezone: str = "Asia/Shanghai") -> WorkingHours:
        spec = spec.strip()
        ZoneInfo(timezone)  # an unknown zone fails at start-up, not at the first handoff
        if spec == "always":
            return cls(timezone=timezone)
        match = PATTERN.match(spec)
        if match is None:
            raise ValueError(
                f"HANDOFF_HOURS must look like '1-5 09:00-17:00' or be 'always', got {spec!r}"
            )
        first, last, oh, om, ch, cm = (int(g) for g in match.groups())
        opens, closes = time(oh, om), time(ch, cm)
        if first > last or opens >= closes:
            raise ValueError(f"HANDOFF_HOURS {spec!r}: days or times are in the wrong order")
        return cls(first, last, opens, closes, always=False, timezone=timezone)

    def is_staffed_day(self, day: date, calendar: WorkCalendar = NO_OVERRIDES) -> bool:
        """An administrator's day decides; then a statutory holiday closes and a swapped working
        weekend opens; otherwise the weekdays of the spec."""
        if self.always:
            return True
        if day in calendar.overrides:
            return calendar.overrides[day]
        if holiday_name(day) is not None:
            return False
        in_spec = self.first_day <= day.isoweekday() <= self.last_day
        if statutory_workday(day) and day.isoweekday() > 5:
            # 调休: a weekend day worked instead of a holiday, by an office open Monday to Friday.
            return in_spec or (self.first_day <= 1 and self.last_day >= 5)
        return in_spec

    def is_open(self, moment: datetime, calendar: WorkCalendar = NO_OVERRIDES) -> bool:
        """`moment` must be timezone-aware."""
        if self.always:
            return True
        local = moment.astimezone(ZoneInfo(self.timezone))
        return self.is_staffed_day(local.date(), calendar) and (
            self.opens <= local.time() < self.closes
        )

    def next_opening(
        self, moment: datetime, calendar: WorkCalendar = NO_OVERRIDES
    ) -> datetime | None:
        """When staff are next there, local time (`moment` itself when open now); None when
        nothing opens within LOOK_AHEAD_DAYS."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        if self.is_open(moment, calendar):
            return local
        for offset in range(LOOK_AHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if offset == 0 and local.time() >= self.opens:
                continue  # today's opening has passed (or today is closed anyway)
            if self.is_staffed_day(day, calendar):
                return datetime.combine(day, self.opens, ZoneInfo(self.timezone))
        return None

    def describe(self) -> str:
        """In Chinese, for the user: "周一至周五 9:00-17:00"."""
        if self.always:
            return "全天"
        days = (
            f"每周{WEEKDAY_NAMES[self.first_day - 1]}"
            if self.first_day == self.last_day
            else f"周{WEEKDAY_NAMES[self.first_day - 1]}至周{WEEKDAY_NAMES[self.last_day - 1]}"
        )
        return f"{days} {self.opens.hour}:{self.opens:%M}-{self.closes.hour}:{self.closes:%M}"


def opening_text(opening: datetime | None) -> str:
    """ "1月2日 9:00" (the citizen's "下一个工作时间"); empty when unknown."""
    if opening is None:
        return ""
    return f"{opening.month}月{opening.day}日 {opening.hour}:{opening:%M}"
