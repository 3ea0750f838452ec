"""The staff console's server-rendered pages: login/logout, the console shell, tickets, and for
admins transcripts (search, CSV) and canned replies.

Every form posts its session's CSRF token; every page is gated by bot.staff.auth.staff_gate.
Database work goes through bot.db.runner.run_db (a worker thread, within DB_TIMEOUT).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy.orm import Session

from bot.db.handoffs import TICKET_CALLED_BACK, TICKET_CLOSED, TICKET_OPEN, TICKET_STATES
from bot.db.runner import run_db
from bot.db.staff import add_canned_reply, canned_replies, delete_canned_reply
from bot.db.tickets import TICKET_MOVES, MoveOutcome, TicketMove, list_tickets, move_ticket
from bot.db.transcripts import TranscriptLine, search_messages
from bot.domain.masking import mask
from bot.staff import accounts
from bot.staff.auth import (
    LOGIN_PATH,
    StaffIdentity,
    check_csrf,
    csrf_token,
    current_staff,
    end_staff_session,
    require_admin,
    require_staff,
    setup_staff_auth,
    start_staff_session,
)
from bot.staff.throttle import THROTTLE, TOO_MANY_TEXT, LoginThrottle, Throttled
from bot.web.client_address import client_address
from bot.web.keys import SETTINGS

T = TypeVar("T")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# The console's CSS and JS: public like the chat page's (outside the /staff gate, nothing secret).
STATIC_DIR = Path(__file__).resolve().parent / "static"
# The staff pages' own Jinja environment, so the citizen pages' loader stays as it is.
STAFF_TEMPLATES = web.AppKey("staff_templates", jinja2.Environment)
# Staff work in Ningbo: dates typed and times shown are Beijing time; the database keeps UTC.
BEIJING = timezone(timedelta(hours=8))
FLASH = "staff_flash"
TRANSCRIPT_PAGE_LIMIT = 200
TRANSCRIPT_CSV_LIMIT = 100_000
TICKET_PAGE_LIMIT = 500
CANNED_TITLE_MAX = 100
CANNED_TEXT_MAX = 1000

ROLE_LABELS = {"user": "市民", "bot": "机器人", "staff": "客服", "system": "系统"}
TICKET_LABELS = {TICKET_OPEN: "待处理", TICKET_CALLED_BACK: "已回电", TICKET_CLOSED: "已关闭"}


async def run_db_for_request(request: web.Request, work: Callable[[Session], T]) -> T:
    """`work(session)` through bot.db.runner.run_db, with this app's database and deadline."""
    settings = request.config_dict[SETTINGS]
    return await run_db(settings.database_url, work, settings.db_timeout)


def beijing_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=timezone.utc).astimezone(BEIJING).strftime(fmt)


async def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    session = await get_session(request)
    full = {
        "me": await current_staff(request),
        "csrf": csrf_token(session),
        "flash": session.pop(FLASH, None),
        "path": request.path,
        **context,
    }
    response = aiohttp_jinja2.render_template(
        template, request, full, app_key=STAFF_TEMPLATES, status=status
    )
    response.headers["Cache-Control"] = "no-store"  # personal data: never kept by a cache
    return response


async def flash_and_redirect(request: web.Request, text: str, location: str) -> web.HTTPSeeOther:
    session = await get_session(request)
    session[FLASH] = text
    return web.HTTPSeeOther(location)


# --- login / logout / console ---------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    if await current_staff(request) is not None:
        raise web.HTTPFound("/staff")
    return await render(request, "login.html", {"error": None, "username": ""})


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    try:
        await check_csrf(request, form)
    except web.HTTPForbidden:  # e.g. a login page left open from before a restart
        error = "页面已过期，请重新输入后登录。"
        return await render(request, "login.html", {"error": error, "username": username}, 403)
    password = str(form.get("password", ""))
    throttle = request.app[THROTTLE]
    try:
        with throttle.attempt(client_address(request)) as succeeded:
            identity = await _check_password(request, username, password)
            succeeded()
    except Throttled:
        return await render(
            request, "login.html", {"error": TOO_MANY_TEXT, "username": username}, status=429
        )
    except accounts.LoginRefused as refused:
        return await render(
            request, "login.html", {"error": refused.text, "username": username}, status=401
        )
    await start_staff_session(request, identity)
    raise web.HTTPSeeOther("/staff")


async def _check_password(request: web.Request, username: str, password: str) -> StaffIdentity:
    """Count the attempt (database), verify on the hashing pool (never the default thread pool
    the chat's database calls use), then clear the count; LoginRefused when refused."""
    attempt = await run_db_for_request(
        request, lambda db: accounts.begin_login(db, username, password)
    )
    verified = await accounts.verify_password(attempt, password)

    def finish(db: Session) -> StaffIdentity:
        account = accounts.finish_login(db, attempt, verified, password)
        return StaffIdentity(account.id, account.username, account.display_name, account.role)

    return await run_db_for_request(request, finish)


async def logout(request: web.Request) -> web.StreamResponse:
    await check_csrf(request, await request.post())
    await end_staff_session(request)
    raise web.HTTPSeeOther(LOGIN_PATH)


async def console(request: web.Request) -> web.Response:
    me = await require_staff(request)
    session = await get_session(request)
    return await render(request, "console.html", {"me": me, "csrf": csrf_token(session)})


# --- tickets ---------------------------------------------------------------------------------


def ticket_move_problem(move: TicketMove, ticket_id: int, target: str) -> str | None:
    """None when the ticket moved, else why not (Chinese)."""
    if move.outcome is MoveOutcome.NOT_FOUND:
        return "工单不存在"
    if move.outcome is MoveOutcome.NOT_ALLOWED:
        before = move.status_before or ""
        return (
            f"工单 #{ticket_id} 当前为“{TICKET_LABELS.get(before, before)}”，"
            f"不能改为“{TICKET_LABELS.get(target, target)}”"
        )
    if move.outcome is MoveOutcome.CONFLICT:
        return "工单刚被其他同事更新，请刷新后再试"
    return None


def _ticket_filter(raw: str | None) -> str | None:
    if raw == "all":
        return None
    return raw if raw in TICKET_STATES else TICKET_OPEN


async def tickets_page(request: web.Request) -> web.Response:
    status = _ticket_filter(request.query.get("status"))
    tickets, counts = await run_db_for_request(
        request, lambda db: list_tickets(db, status, TICKET_PAGE_LIMIT)
    )
    return await render(
        request,
        "tickets.html",
        {
            "tickets": tickets,
            "counts": counts,
            "total": sum(counts.values()),
            "status": status or "all",
            "labels": TICKET_LABELS,
            "moves": TICKET_MOVES,
        },
    )


async def update_ticket(request: web.Request) -> web.StreamResponse:
    me = await require_staff(request)
    form = await request.post()
    await check_csrf(request, form)
    ticket_id = int(request.match_info["ticket_id"])
    target = str(form.get("status", ""))
    back = _ticket_filter(str(form.get("back", "")) or None) or "all"
    move = await run_db_for_request(request, lambda db: move_ticket(db, ticket_id, target, me.id))
    problem = ticket_move_problem(move, ticket_id, target)
    text = problem or f"工单 #{ticket_id} 已标记为“{TICKET_LABELS[target]}”"
    raise await flash_and_redirect(request, text, f"/staff/tickets?status={back}")


# --- transcripts (admin) ---------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptFilter:
    text: str = ""
    conversation_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TranscriptFilter:
        """Parse the search form; ValueError (Chinese) on a bad date."""
        date_from, date_to = _date(query.get("from")), _date(query.get("to"))
        if date_from and date_to and date_from > date_to:
            raise ValueError("开始日期不能晚于结束日期")
        return cls(
            text=query.get("q", "").strip()[:200],
            conversation_id=query.get("conversation", "").strip()[:64],
            date_from=date_from,
            date_to=date_to,
        )

    def as_query(self) -> str:
        pairs = {
            "q": self.text,
            "conversation": self.conversation_id,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v})


def _date(raw: str | None) -> date | None:
    if not raw or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("日期格式应为 YYYY-MM-DD") from None


def _beijing_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(), BEIJING).astimezone(timezone.utc).replace(tzinfo=None)


def search_transcripts(
    db: Session, flt: TranscriptFilter, limit: int, chronological: bool
) -> list[TranscriptLine]:
    """The messages the filter finds (dates are Beijing days), their text masked."""
    lines = search_messages(
        db,
        text=flt.text,
        conversation_id=flt.conversation_id,
        created_from=_beijing_midnight_utc(flt.date_from) if flt.date_from else None,
        created_before=(
            _beijing_midnight_utc(flt.date_to + timedelta(days=1)) if flt.date_to else None
        ),
        limit=limit,
        chronological=chronological,
    )
    return [replace(line, text=mask(line.text)) for line in lines]


async def transcripts_page(request: web.Request) -> web.Response:
    await require_admin(request)
    error, lines, flt = None, [], TranscriptFilter()
    try:
        flt = TranscriptFilter.from_query(request.query)
    except ValueError as exc:
        error = str(exc)
    if error is None:
        # One conversation reads best in order; a search across conversations newest first.
        chronological = bool(flt.conversation_id)
        lines = await run_db_for_request(
            request,
            lambda db: search_transcripts(db, flt, TRANSCRIPT_PAGE_LIMIT + 1, chronological),
        )
    return await render(
        request,
        "transcripts.html",
        {
            "query": flt,
            "error": error,
            "lines": lines[:TRANSCRIPT_PAGE_LIMIT],
            "truncated": len(lines) > TRANSCRIPT_PAGE_LIMIT,
            "limit": TRANSCRIPT_PAGE_LIMIT,
            "roles": ROLE_LABELS,
            "csv_query": flt.as_query(),
        },
        status=400 if error else 200,
    )


def _csv_cell(value: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def transcripts_csv_text(lines: list[TranscriptLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["会话ID", "渠道", "时间（北京时间）", "角色", "内容"])
    for line in lines:
        writer.writerow(
            [
                line.conversation_id,
                line.channel,
                beijing_time(line.created_at, "%Y-%m-%d %H:%M:%S"),
                ROLE_LABELS.get(line.role, line.role),
                _csv_cell(line.text),
            ]
        )
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8 (Chinese) correctly


async def transcripts_csv(request: web.Request) -> web.Response:
    await require_admin(request)
    try:
        flt = TranscriptFilter.from_query(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    lines = await run_db_for_request(
        request, lambda db: search_transcripts(db, flt, TRANSCRIPT_CSV_LIMIT, chronological=True)
    )
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=transcripts_csv_text(lines).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="transcripts-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- canned replies (admin) ------------------------------------------------------------------


async def canned_page(request: web.Request) -> web.Response:
    await require_admin(request)
    replies = await run_db_for_request(request, canned_replies)
    return await render(
        request,
        "canned.html",
        {"replies": replies, "title_max": CANNED_TITLE_MAX, "text_max": CANNED_TEXT_MAX},
    )


async def change_canned(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    form = await request.post()
    await check_csrf(request, form)
    action = form.get("action")
    if action == "add":
        title = str(form.get("title", "")).strip()
        text = str(form.get("text", "")).strip()
        if not title or len(title) > CANNED_TITLE_MAX:
            message = f"标题须为 1–{CANNED_TITLE_MAX} 个字符"
        elif not text or len(text) > CANNED_TEXT_MAX:
            message = f"回复内容须为 1–{CANNED_TEXT_MAX} 个字符"
        else:
            await run_db_for_request(request, lambda db: add_canned_reply(db, title, text))
            message = f"已添加快捷回复“{title}”"
    elif action == "delete":
        try:
            reply_id = int(str(form.get("id", "")))
        except ValueError:
            raise web.HTTPBadRequest(text="缺少快捷回复编号") from None
        deleted = await run_db_for_request(request, lambda db: delete_canned_reply(db, reply_id))
        message = "已删除快捷回复" if deleted else "该快捷回复已不存在"
    else:
        raise web.HTTPBadRequest(text="未知操作")
    raise await flash_and_redirect(request, message, "/staff/admin/canned")


def setup_staff_pages(app: web.Application) -> None:
    """Routes, templates and the /staff gate. Call after aiohttp_session.setup."""
    env = aiohttp_jinja2.setup(
        app,
        app_key=STAFF_TEMPLATES,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        default_helpers=False,
    )
    env.filters["bjtime"] = beijing_time
    env.globals["role_labels"] = accounts.ROLE_LABELS
    setup_staff_auth(app)
    app[THROTTLE] = LoginThrottle()
    router = app.router
    router.add_static("/staff-static/", STATIC_DIR)
    router.add_get(LOGIN_PATH, login_page)
    router.add_post(LOGIN_PATH, login)
    router.add_post("/staff/logout", logout)
    router.add_get("/staff", console)
    router.add_get("/staff/tickets", tickets_page)
    router.add_post(r"/staff/tickets/{ticket_id:\d+}", update_ticket)
    router.add_get("/staff/admin/transcripts", transcripts_page)
    router.add_get("/staff/admin/transcripts.csv", transcripts_csv)
    router.add_get("/staff/admin/canned", canned_page)
    router.add_post("/staff/admin/canned", change_canned)
