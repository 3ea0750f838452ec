"""Staff working hours, e.g. "1-5 09:00-17:00" (ISO weekdays, Monday = 1) or "always"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

WEEKDAY_NAMES = "一二三四五六日"
PATTERN = re.compile(r"^([1-7])-([1-7]) (\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


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

    def is_open(self, moment: datetime) -> bool:
        """`moment` must be timezone-aware."""
        if self.always:
            return True
        local = moment.astimezone(ZoneInfo(self.timezone))
        return (
            self.first_day <= local.isoweekday() <= self.last_day
            and self.opens <= local.time() < self.closes
        )

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
