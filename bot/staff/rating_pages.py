"""Ratings and their follow-ups (回访): the admin's ratings page (满意率 per period, channel, topic
and agent, every comment, the follow-up of each bad rating) and the follow-up list where the
assigned staff member records the call and what was fixed, then closes it.

满意率 = (非常满意 + 满意 + 基本满意) / all ratings. A follow-up is due FOLLOW_UP_DAYS working days
after the rating (China's calendar); an open one past its day is overdue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from aiohttp import web
from sqlalchemy.orm import Session

from bot.db import ratings
from bot.db.handoffs import RATINGS
from bot.db.ratings import (
    CONTACT_OUTCOMES,
    FOLLOW_CLOSED,
    FOLLOW_OPEN,
    FollowUpRow,
    RatingFilter,
    RatingRow,
)
from bot.db.staff import all_staff
from bot.domain.vocabulary import KNOWLEDGE_TOPICS
from bot.staff.auth import check_csrf, require_admin, require_staff
from bot.staff.pages import (
    BEIJING,
    _beijing_midnight_utc,
    _date,
    flash_and_redirect,
    render,
    run_db_for_request,
)

LIST_LIMIT = 300
STATS_LIMIT = 100_000
NOTE_MAX = 1000
CHANNEL_LABELS = {"webchat": "网页", "wechat": "微信"}
FOLLOW_LABELS = {FOLLOW_OPEN: "待回访", FOLLOW_CLOSED: "已办结"}
PERIODS = {"month": "按月", "week": "按周", "day": "按日"}


def beijing(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(BEIJING)


def period_of(moment: datetime, period: str) -> str:
    local = beijing(moment)
    if period == "day":
        return local.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}年第{week}周"
    return local.strftime("%Y-%m")


def satisfaction_rate(scores: list[int]) -> float | None:
    """满意率 in percent, None without ratings."""
    if not scores:
        return None
    return round(100 * sum(s in ratings.SATISFIED_SCORES for s in scores) / len(scores), 1)


@dataclass(frozen=True)
class Group:
    label: str
    count: int
    satisfied: int
    rate: float | None


def grouped(rows: list[RatingRow], key: Callable[[RatingRow], str]) -> list[Group]:
    scores: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        scores[key(row)].append(int(row.rating.score))
    return [
        Group(label, len(s), sum(x in ratings.SATISFIED_SCORES for x in s), satisfaction_rate(s))
        for label, s in sorted(scores.items())
    ]


@dataclass(frozen=True)
class RatingQuery:
    date_from: date | None = None
    date_to: date | None = None
    channel: str = ""
    topic: str = ""
    agent: str = ""  # "" all, "bot" (no person), or a staff id
    bad_only: bool = False
    period: str = "month"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RatingQuery:
        date_from, date_to = _date(query.get("from")), _date(query.get("to"))
        if date_from and date_to and date_from > date_to:
            raise ValueError("开始日期不能晚于结束日期")
        agent = query.get("agent", "")
        return cls(
            date_from=date_from,
            date_to=date_to,
            channel=query.get("channel", "") if query.get("channel") in CHANNEL_LABELS else "",
            topic=query.get("topic", "") if query.get("topic") in KNOWLEDGE_TOPICS else "",
            agent=agent if agent == "bot" or agent.isdigit() else "",
            bad_only=query.get("bad") == "1",
            period=query.get("period", "month") if query.get("period") in PERIODS else "month",
        )

    def to_filter(self) -> RatingFilter:
        agent_id = 0 if self.agent == "bot" else int(self.agent) if self.agent else None
        return RatingFilter(
            rated_from=_beijing_midnight_utc(self.date_from) if self.date_from else None,
            rated_before=(
                _beijing_midnight_utc(self.date_to + timedelta(days=1)) if self.date_to else None
            ),
            channel=self.channel,
            topic=self.topic,
            agent_id=agent_id,
            bad_only=self.bad_only,
        )


def today_in_beijing() -> date:
    return datetime.now(BEIJING).date()


def topic_label(topic: str | None) -> str:
    return KNOWLEDGE_TOPICS.get(topic or "", "未分类")


async def ratings_page(request: web.Request) -> web.Response:
    await require_admin(request)
    error, query = None, RatingQuery()
    try:
        query = RatingQuery.from_query(request.query)
    except ValueError as exc:
        error = str(exc)
    flt = query.to_filter()

    def load(db: Session) -> tuple[list[RatingRow], list[tuple[int, str]]]:
        rows = ratings.list_ratings(db, flt, STATS_LIMIT) if error is None else []
        return rows, [(s.id, s.display_name) for s in all_staff(db) if s.role != "editor"]

    rows, agents = await run_db_for_request(request, load)
    scores = [int(r.rating.score) for r in rows]
    return await render(
        request,
        "ratings.html",
        {
            "query": query,
            "error": error,
            "rows": rows[:LIST_LIMIT],
            "total": len(rows),
            "rate": satisfaction_rate(scores),
            "levels": [(s, RATINGS[s], scores.count(s)) for s in sorted(RATINGS, reverse=True)],
            "by_period": grouped(rows, lambda r: period_of(r.rating.rated_at, query.period)),
            "by_channel": grouped(rows, lambda r: CHANNEL_LABELS.get(r.rating.channel, "其他")),
            "by_topic": grouped(rows, lambda r: topic_label(r.rating.topic)),
            "by_agent": grouped(rows, lambda r: r.agent_name or "智能助手（无人工）"),
            "ratings": RATINGS,
            "channels": CHANNEL_LABELS,
            "topics": KNOWLEDGE_TOPICS,
            "topic_label": topic_label,
            "agents": agents,
            "periods": PERIODS,
            "follow_labels": FOLLOW_LABELS,
            "today": today_in_beijing(),
        },
        status=400 if error else 200,
    )


# ---- follow-ups ------------------------------------------------------------------------------


async def follow_ups_page(request: web.Request) -> web.Response:
    me = await require_staff(request)
    raw = request.query.get("status", FOLLOW_OPEN)
    status = raw if raw in FOLLOW_LABELS else None
    assignee = None if me.is_admin else me.id

    def load(db: Session) -> tuple[list[FollowUpRow], dict[str, int], list[tuple[int, str]]]:
        rows = ratings.list_follow_ups(db, status, assignee, LIST_LIMIT)
        agents = [(s.id, s.display_name) for s in all_staff(db) if s.active and s.role != "editor"]
        return rows, ratings.follow_up_counts(db, assignee), agents

    rows, counts, agents = await run_db_for_request(request, load)
    return await render(
        request,
        "followups.html",
        {
            "rows": rows,
            "counts": counts,
            "status": status or "all",
            "labels": FOLLOW_LABELS,
            "ratings": RATINGS,
            "outcomes": CONTACT_OUTCOMES,
            "agents": agents,
            "channels": CHANNEL_LABELS,
            "topic_label": topic_label,
            "today": today_in_beijing(),
            "note_max": NOTE_MAX,
        },
    )


async def change_follow_up(request: web.Request) -> web.StreamResponse:
    """assign (admins) | close (the assignee or an admin)."""
    me = await require_staff(request)
    form = await request.post()
    await check_csrf(request, form)
    follow_up_id = int(request.match_info["follow_up_id"])
    back = "/staff/followups"
    found = await run_db_for_request(request, lambda db: ratings.get_follow_up(db, follow_up_id))
    if found is None:
        raise web.HTTPNotFound(text="没有找到这条回访任务。")
    action = form.get("action")
    if action == "assign":
        await require_admin(request)
        raw = str(form.get("assignee_id", ""))
        assignee_id = int(raw) if raw.isdigit() else None
        done = await run_db_for_request(
            request, lambda db: ratings.assign_follow_up(db, follow_up_id, assignee_id)
        )
        text = "回访任务已分配" if done else "回访任务已办结，不能再分配"
        raise await flash_and_redirect(request, text, back)
    if action != "close":
        raise web.HTTPBadRequest(text="未知操作")
    if not me.is_admin and found.assignee_id != me.id:
        raise web.HTTPForbidden(text="这条回访任务由其他同事负责。")
    outcome = str(form.get("contact_outcome", ""))
    contact_note = str(form.get("contact_note", "")).strip()[:NOTE_MAX]
    fix_note = str(form.get("fix_note", "")).strip()[:NOTE_MAX]
    if outcome not in CONTACT_OUTCOMES:
        raise await flash_and_redirect(request, "请选择回访情况", back)
    if not fix_note:
        raise await flash_and_redirect(request, "请填写整改情况（做了哪些改进）", back)
    done = await run_db_for_request(
        request,
        lambda db: ratings.close_follow_up(
            db, follow_up_id, me.id, outcome, contact_note, fix_note
        ),
    )
    text = f"回访任务 #{follow_up_id} 已办结" if done else "回访任务已办结，请刷新页面"
    raise await flash_and_redirect(request, text, back)


def setup_rating_pages(app: web.Application) -> None:
    router = app.router
    router.add_get("/staff/admin/ratings", ratings_page)
    router.add_get("/staff/followups", follow_ups_page)
    router.add_post(r"/staff/followups/{follow_up_id:\d+}", change_follow_up)
