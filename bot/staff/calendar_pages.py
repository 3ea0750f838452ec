"""The admin's calendar page: local closures and extra working days on top of China's statutory
holidays and 调休 (the `chinese-calendar` package), with the days ahead as staff hours see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aiohttp import web
from sqlalchemy.orm import Session

from bot.db.calendar_days import (
    NOTE_MAX,
    calendar_days,
    delete_calendar_day,
    set_calendar_day,
    work_calendar,
)
from bot.domain.workdays import WorkCalendar, holiday_name, known_years, statutory_workday
from bot.staff.auth import check_csrf, require_admin
from bot.staff.pages import BEIJING, _date, flash_and_redirect, render, run_db_for_request
from bot.web.keys import PIPELINE

PREVIEW_DAYS = 21
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class DayView:
    day: date
    weekday: str
    workday: bool
    why: str


def explain(day: date, calendar: WorkCalendar, notes: dict[date, str]) -> DayView:
    """How the calendar sees `day`, and why (for staff)."""
    weekday = "周" + WEEKDAYS[day.isoweekday() - 1]
    if day in calendar.overrides:
        workday = calendar.overrides[day]
        kind = "本地加班（工作日）" if workday else "本地闭馆"
        return DayView(day, weekday, workday, f"{kind}：{notes.get(day, '')}".rstrip("："))
    name = holiday_name(day)
    workday = calendar.is_workday(day)
    if name:
        return DayView(day, weekday, False, f"法定节假日：{name}")
    if statutory_workday(day) and day.isoweekday() > 5:
        return DayView(day, weekday, True, "调休上班")
    if statutory_workday(day) is None:
        return DayView(
            day, weekday, workday, "周末" if not workday else "工作日（未含法定假日数据）"
        )
    return DayView(day, weekday, workday, "周末" if not workday else "工作日")


def first_missing_year(today: date, known_last: int) -> int | None:
    """This year or the next, whichever the package's holiday data does not reach first."""
    return next((y for y in (today.year, today.year + 1) if y > known_last), None)


async def calendar_page(request: web.Request) -> web.Response:
    await require_admin(request)
    today = datetime.now(BEIJING).date()

    def load(db: Session) -> tuple[list, WorkCalendar]:
        return calendar_days(db, since=today - timedelta(days=60)), work_calendar(db)

    days, calendar = await run_db_for_request(request, load)
    notes = {d.day: d.note for d in days}
    first, last = known_years()
    return await render(
        request,
        "calendar.html",
        {
            "days": days,
            "preview": [
                explain(today + timedelta(i), calendar, notes) for i in range(PREVIEW_DAYS)
            ],
            "known_first": first,
            "known_last": last,
            "missing_year": first_missing_year(today, last),
            "note_max": NOTE_MAX,
        },
    )


async def change_calendar(request: web.Request) -> web.StreamResponse:
    me = await require_admin(request)
    form = await request.post()
    await check_csrf(request, form)
    back = "/staff/admin/calendar"
    try:
        day = _date(str(form.get("day", "")))
    except ValueError as exc:
        raise await flash_and_redirect(request, str(exc), back) from None
    if day is None:
        raise await flash_and_redirect(request, "请选择日期", back)
    action = form.get("action")
    if action == "delete":
        deleted = await run_db_for_request(request, lambda db: delete_calendar_day(db, day))
        text = f"已删除 {day.isoformat()}" if deleted else "该日期已不在列表中"
    elif action == "set":
        kind = form.get("kind")
        if kind not in ("closed", "workday"):
            raise await flash_and_redirect(request, "请选择“闭馆”或“加班”", back)
        note = str(form.get("note", "")).strip()[:NOTE_MAX]
        workday = kind == "workday"
        await run_db_for_request(
            request, lambda db: set_calendar_day(db, day, workday, note, me.id)
        )
        text = f"已设置 {day.isoformat()} 为{'工作日' if workday else '闭馆日'}"
    else:
        raise web.HTTPBadRequest(text="未知操作")
    request.app[PIPELINE].desk.calendar.forget()  # this gateway at once; others within 30 s
    raise await flash_and_redirect(request, text, back)


def setup_calendar_pages(app: web.Application) -> None:
    app.router.add_get("/staff/admin/calendar", calendar_page)
    app.router.add_post("/staff/admin/calendar", change_calendar)
