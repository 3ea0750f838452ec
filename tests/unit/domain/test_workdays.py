"""China's working calendar: statutory holidays, 调休 working weekends, the administrator's days,
and the office hours and deadlines built on them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from bot.conversation.hours import WorkingHours, opening_text
from bot.domain.workdays import WorkCalendar, holiday_name, known_years

BEIJING = ZoneInfo("Asia/Shanghai")
HOURS = WorkingHours.parse("1-5 09:00-17:00")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def test_the_installed_package_knows_2026() -> None:
    first, last = known_years()
    assert first <= 2026 <= last
    assert holiday_name(date(2026, 10, 1)) == "国庆节"
    assert holiday_name(date(2026, 2, 17)) == "春节"


def test_five_working_days_from_the_eve_of_national_day_end_after_the_holiday() -> None:
    # 10-01..07 off; 10-10 (a Saturday) is worked instead (调休): 10-08, 09, 10, 12, 13.
    assert WorkCalendar().add_workdays(date(2026, 9, 30), 5) == date(2026, 10, 13)
    assert WorkCalendar().add_workdays(date(2026, 11, 30), 5) == date(2026, 12, 7)


def test_an_administrators_closure_and_extra_day_count() -> None:
    calendar = WorkCalendar({date(2026, 12, 2): False, date(2026, 12, 5): True})
    assert calendar.add_workdays(date(2026, 12, 1), 3) == date(2026, 12, 5)
    assert not HOURS.is_open(at(2026, 12, 2, 10), calendar)
    assert HOURS.is_open(at(2026, 12, 5, 10), calendar)  # a Saturday made a working day


def test_a_year_without_data_falls_back_to_weekends() -> None:
    last = known_years()[1]
    later = date(last + 1, 1, 4)
    while later.isoweekday() != 1:  # a Monday of a year the package does not know
        later = date(later.year, later.month, later.day + 1)
    assert WorkCalendar().is_workday(later)
    assert not WorkCalendar().is_workday(date(later.year, later.month, later.day + 5))


def test_office_hours_on_a_swapped_saturday_and_on_a_holiday() -> None:
    assert HOURS.is_open(at(2026, 10, 10, 10))  # 调休 Saturday: staff work
    assert not HOURS.is_open(at(2026, 10, 10, 18))  # but not after hours
    assert not HOURS.is_open(at(2026, 10, 1, 10))  # National Day (a Thursday)
    assert not HOURS.is_open(at(2026, 10, 3, 10))  # a holiday Saturday
    assert not HOURS.is_open(at(2026, 10, 17, 10))  # an ordinary Saturday
    assert WorkingHours.parse("always").is_open(at(2026, 10, 1, 3))
    assert not WorkingHours.parse("3-3 09:00-17:00").is_open(at(2026, 10, 10, 10))  # Wednesdays


def test_the_next_opening_time_skips_the_holiday() -> None:
    opening = HOURS.next_opening(at(2026, 9, 30, 18))
    assert opening == at(2026, 10, 8, 9)
    assert opening_text(opening) == "10月8日 9:00"
    # 2027 is not in chinese-calendar 1.11.0: 元旦 2027 closes only once an admin enters it.
    new_year = WorkCalendar({date(2027, 1, 1): False})
    assert opening_text(HOURS.next_opening(at(2026, 12, 31, 20), new_year)) == "1月4日 9:00"
    assert HOURS.next_opening(at(2026, 12, 1, 8, 0)) == at(2026, 12, 1, 9)  # later today
    now = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)  # 11:00 in Beijing: open now
    assert HOURS.next_opening(now) == now.astimezone(BEIJING)
