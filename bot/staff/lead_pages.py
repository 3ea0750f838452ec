"""The leads page: consultation requests from the insurance form, their owner, status and history,
the conversation that produced them, and CSV/XLSX exports (phone numbers masked).

Agents see a lead's phone number only when they own it, and cannot open a lead another agent
owns; admins see and may do everything. A lead still "new" after LEAD_OVERDUE_DAYS working days
(China's calendar, bot/domain/workdays.py) is overdue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.orm import Session

from bot.db import leads
from bot.db.calendar_days import work_calendar
from bot.db.conversations import history
from bot.db.leads import LEAD_MOVES, LeadChange, LeadFilter, LeadRow
from bot.db.models import LEAD_STATUSES
from bot.db.staff import all_staff
from bot.domain.masking import mask
from bot.domain.vocabulary import INSURANCE_TYPES
from bot.domain.workdays import WorkCalendar
from bot.staff.auth import StaffIdentity, check_csrf, require_admin, require_staff
from bot.staff.exports import csv_bytes, download, xlsx_bytes
from bot.staff.pages import (
    BEIJING,
    ROLE_LABELS,
    _beijing_midnight_utc,
    _date,
    flash_and_redirect,
    render,
    run_db_for_request,
)
from bot.web.keys import SETTINGS

LEAD_LABELS = {"new": "待联系", "contacted": "已联系", "closed": "已办结"}
ACTION_LABELS = {"claim": "认领", "assign": "分配"}
PAGE_LIMIT = 500
EXPORT_LIMIT = 100_000
NOTE_MAX = 1000


@dataclass(frozen=True)
class LeadQuery:
    """The leads page's filter form, as typed."""

    status: str = ""
    product: str = ""
    date_from: date | None = None
    date_to: date | None = None
    owner: str = ""  # "" anyone, "mine", "none", or a staff id

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> LeadQuery:
        """ValueError (Chinese) on a bad date."""
        date_from, date_to = _date(query.get("from")), _date(query.get("to"))
        if date_from and date_to and date_from > date_to:
            raise ValueError("开始日期不能晚于结束日期")
        status = query.get("status", "new")  # the page opens on 待联系; "" is 全部
        owner = query.get("owner", "")
        return cls(
            status=status if status in LEAD_STATUSES else "",  # "all" (and anything else): all
            product=query.get("product", "").strip()[:50],
            date_from=date_from,
            date_to=date_to,
            owner=owner if owner in ("mine", "none") or owner.isdigit() else "",
        )

    def to_filter(self, me: StaffIdentity) -> LeadFilter:
        owner_id: int | None = None
        if self.owner == "mine":
            owner_id = me.id
        elif self.owner == "none":
            owner_id = 0
        elif self.owner:
            owner_id = int(self.owner)
        return LeadFilter(
            status=self.status or None,
            product=self.product,
            created_from=_beijing_midnight_utc(self.date_from) if self.date_from else None,
            created_before=(
                _beijing_midnight_utc(self.date_to + timedelta(days=1)) if self.date_to else None
            ),
            owner_id=owner_id,
        )

    def as_query(self) -> str:
        pairs = {
            "status": self.status or "all",
            "product": self.product,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "owner": self.owner,
        }
        return urlencode({k: v for k, v in pairs.items() if v})


@dataclass(frozen=True)
class LeadView:
    """One lead as this staff member may see it."""

    id: int
    reference: str
    company: str
    contact_name: str
    phone: str  # masked unless they own it (or are an admin)
    products: str
    message: str
    status: str
    owner_id: int | None
    owner_name: str | None
    conversation_id: str | None
    created_at: datetime
    due_on: date
    overdue: bool
    outcome: str
    can_open: bool
    mine: bool


def beijing_day(moment: datetime) -> date:
    return moment.replace(tzinfo=timezone.utc).astimezone(BEIJING).date()


def today_in_beijing() -> date:
    return datetime.now(BEIJING).date()


def can_open(me: StaffIdentity, owner_id: int | None) -> bool:
    return me.is_admin or owner_id is None or owner_id == me.id


def sees_phone(me: StaffIdentity, owner_id: int | None) -> bool:
    return me.is_admin or owner_id == me.id


def lead_view(
    row: LeadRow, me: StaffIdentity, calendar: WorkCalendar, today: date, overdue_days: int
) -> LeadView:
    lead = row.lead
    due_on = calendar.add_workdays(beijing_day(lead.created_at), overdue_days)
    phone = lead.phone if sees_phone(me, lead.owner_id) else mask(lead.phone)
    return LeadView(
        id=lead.id,
        reference=lead.reference,
        company=lead.company,
        contact_name=lead.contact_name,
        phone=phone,
        products=lead.products or "",
        message=lead.message or "",
        status=lead.status,
        owner_id=lead.owner_id,
        owner_name=row.owner_name,
        conversation_id=lead.conversation_id,
        created_at=lead.created_at,
        due_on=due_on,
        overdue=lead.status == leads.NEW and today > due_on,
        outcome=lead.outcome or "",
        can_open=can_open(me, lead.owner_id),
        mine=lead.owner_id == me.id,
    )


def _agents(db: Session) -> list[tuple[int, str]]:
    return [(s.id, s.display_name) for s in all_staff(db) if s.active and s.role != "editor"]


async def leads_page(request: web.Request) -> web.Response:
    me = await require_staff(request)
    error, query = None, LeadQuery()
    try:
        query = LeadQuery.from_query(request.query)
    except ValueError as exc:
        error = str(exc)
    flt = query.to_filter(me)
    days = request.config_dict[SETTINGS].lead_overdue_days

    def load(db: Session) -> tuple[list[LeadRow], dict[str, int], WorkCalendar, list, int]:
        rows = leads.list_leads(db, flt, PAGE_LIMIT + 1) if error is None else []
        return rows, leads.lead_counts(db), work_calendar(db), _agents(db), leads.latest_lead_id(db)

    rows, counts, calendar, agents, latest = await run_db_for_request(request, load)
    today = today_in_beijing()
    views = [lead_view(r, me, calendar, today, days) for r in rows[:PAGE_LIMIT]]
    return await render(
        request,
        "leads.html",
        {
            "leads": views,
            "truncated": len(rows) > PAGE_LIMIT,
            "counts": counts,
            "query": query,
            "error": error,
            "labels": LEAD_LABELS,
            "products": INSURANCE_TYPES,
            "agents": agents,
            "export_query": query.as_query(),
            "overdue_days": days,
            "latest_id": latest,
        },
        status=400 if error else 200,
    )


def _lead_id(request: web.Request) -> int:
    return int(request.match_info["lead_id"])


async def lead_detail(request: web.Request) -> web.Response:
    me = await require_staff(request)
    lead_id = _lead_id(request)
    row = await run_db_for_request(request, lambda db: leads.get_lead(db, lead_id))
    if row is None:
        raise web.HTTPNotFound(text="没有找到这条线索。")
    if not can_open(me, row.lead.owner_id):
        raise web.HTTPForbidden(text="这条线索由其他客服负责，您无权查看。")
    conversation_id = row.lead.conversation_id
    days = request.config_dict[SETTINGS].lead_overdue_days

    def load(db: Session) -> tuple[Any, Any, WorkCalendar, list]:
        messages = history(db, conversation_id) if conversation_id else []
        return leads.lead_history(db, lead_id), messages, work_calendar(db), _agents(db)

    events, messages, calendar, agents = await run_db_for_request(request, load)
    view = lead_view(row, me, calendar, today_in_beijing(), days)
    show_phone = sees_phone(me, row.lead.owner_id)
    lines = [
        {"role": m.role, "time": m.created_at, "text": m.text if show_phone else mask(m.text)}
        for m in messages
    ]
    return await render(
        request,
        "lead.html",
        {
            "lead": view,
            "events": events,
            "lines": lines,
            "roles": ROLE_LABELS,
            "labels": LEAD_LABELS,
            "action_labels": ACTION_LABELS,
            "moves": LEAD_MOVES.get(view.status, ()),
            "agents": agents,
            "note_max": NOTE_MAX,
        },
    )


CHANGE_PROBLEMS = {
    LeadChange.NOT_FOUND: "没有找到这条线索",
    LeadChange.NOT_ALLOWED: "线索当前状态不能这样修改，请刷新后再试",
    LeadChange.CONFLICT: "线索刚被其他同事更新，请刷新后再试",
}


async def change_lead(request: web.Request) -> web.StreamResponse:
    """claim | assign (admins) | status (to contacted or closed, with a note)."""
    me = await require_staff(request)
    form = await request.post()
    await check_csrf(request, form)
    lead_id = _lead_id(request)
    action = str(form.get("action", ""))
    row = await run_db_for_request(request, lambda db: leads.get_lead(db, lead_id))
    if row is None:
        raise web.HTTPNotFound(text="没有找到这条线索。")
    owner_id = row.lead.owner_id
    if not can_open(me, owner_id):
        raise web.HTTPForbidden(text="这条线索由其他客服负责。")
    reference = row.lead.reference
    if action == "claim":
        change = await run_db_for_request(request, lambda db: leads.claim_lead(db, lead_id, me.id))
        done = f"已认领线索 {reference}"
    elif action == "assign":
        await require_admin(request)
        try:
            target = int(str(form.get("owner_id", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="请选择负责人") from None
        change = await run_db_for_request(
            request, lambda db: leads.assign_lead(db, lead_id, target, me.id)
        )
        done = f"线索 {reference} 已分配"
    elif action == "status":
        target_status = str(form.get("status", ""))
        note = str(form.get("note", "")).strip()[:NOTE_MAX] or None
        if target_status == leads.CLOSED and not note:
            raise await flash_and_redirect(
                request, "办结时请填写处理结果", f"/staff/leads/{lead_id}"
            )
        change = await run_db_for_request(
            request, lambda db: leads.move_lead(db, lead_id, target_status, me.id, note)
        )
        done = f"线索 {reference} 已标记为“{LEAD_LABELS.get(target_status, target_status)}”"
    else:
        raise web.HTTPBadRequest(text="未知操作")
    text = CHANGE_PROBLEMS.get(change, done)
    raise await flash_and_redirect(request, text, f"/staff/leads/{lead_id}")


EXPORT_HEADER = [
    "编号", "登记时间（北京时间）", "公司", "联系人", "电话（已脱敏）", "关注险种", "状态",
    "负责人", "应联系日期", "是否逾期", "处理结果",
]  # fmt: skip


async def export_leads(request: web.Request) -> web.Response:
    me = await require_staff(request)
    kind = request.match_info["kind"]
    try:
        query = LeadQuery.from_query(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    flt = query.to_filter(me)
    days = request.config_dict[SETTINGS].lead_overdue_days

    def load(db: Session) -> tuple[list[LeadRow], WorkCalendar]:
        return leads.list_leads(db, flt, EXPORT_LIMIT), work_calendar(db)

    rows, calendar = await run_db_for_request(request, load)
    today = today_in_beijing()
    table = []
    for row in rows:
        view = lead_view(row, me, calendar, today, days)
        table.append(
            [
                view.reference,
                view.created_at.replace(tzinfo=timezone.utc)
                .astimezone(BEIJING)
                .strftime("%Y-%m-%d %H:%M"),
                view.company,
                view.contact_name,
                mask(row.lead.phone),  # exports leave the console: always masked
                view.products,
                LEAD_LABELS.get(view.status, view.status),
                view.owner_name or "",
                view.due_on.isoformat(),
                "是" if view.overdue else "否",
                view.outcome,
            ]
        )
    if kind == "csv":
        return download("leads", "csv", csv_bytes(EXPORT_HEADER, table))
    return download("leads", "xlsx", xlsx_bytes("咨询线索", EXPORT_HEADER, table))


def setup_lead_pages(app: web.Application) -> None:
    router = app.router
    router.add_get("/staff/leads", leads_page)
    router.add_get(r"/staff/leads.{kind:csv|xlsx}", export_leads)
    router.add_get(r"/staff/leads/{lead_id:\d+}", lead_detail)
    router.add_post(r"/staff/leads/{lead_id:\d+}", change_lead)
