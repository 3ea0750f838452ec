"""The administrator's calendar days: local closures and extra working days, on top of China's
statutory holidays (bot/domain/workdays.py)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Column, Date, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Session

from bot.db.conversations import utcnow
from bot.db.models import Base
from bot.domain.workdays import WorkCalendar

NOTE_MAX = 100


class CalendarDay(Base):
    __tablename__ = "calendar_days"

    day = Column(Date, primary_key=True)
    workday = Column(Boolean, nullable=False)  # True: an extra working day; False: closed
    note = Column(String(NOTE_MAX), nullable=False, default="")
    created_by = Column(Integer, ForeignKey("staff_users.id"))
    created_at = Column(DateTime, nullable=False, default=utcnow)


def work_calendar(session: Session) -> WorkCalendar:
    """The statutory calendar with every administrator's day."""
    rows = session.execute(select(CalendarDay.day, CalendarDay.workday)).all()
    return WorkCalendar({day: bool(workday) for day, workday in rows})


def calendar_days(session: Session, since: date | None = None) -> list[CalendarDay]:
    query = select(CalendarDay).order_by(CalendarDay.day)
    if since is not None:
        query = query.where(CalendarDay.day >= since)
    return list(session.execute(query).scalars())


def set_calendar_day(
    session: Session, day: date, workday: bool, note: str, staff_id: int | None
) -> None:
    """Add the day, or change it when it is there already."""
    existing = session.get(CalendarDay, day)
    if existing is None:
        session.add(
            CalendarDay(day=day, workday=workday, note=note, created_by=staff_id,
                        created_at=utcnow())
        )  # fmt: skip
    else:
        existing.workday = workday
        existing.note = note
        existing.created_by = staff_id
    session.commit()


def delete_calendar_day(session: Session, day: date) -> bool:
    existing = session.get(CalendarDay, day)
    if existing is None:
        return False
    session.delete(existing)
    session.commit()
    return True
