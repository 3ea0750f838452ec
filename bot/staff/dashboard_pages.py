"""The operations dashboard (/staff/dashboard, admins): how the service is doing in a date range,
for one channel or all. Every chart is drawn by ECharts (vendored, static/vendor/echarts) from
the same rows the page shows as a table and offers as a CSV file (Excel reads it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from bot.db import dashboard as q
from bot.db.handoffs import RATINGS, TICKET_STATES
from bot.db.models import LEAD_STATUSES
from bot.domain.vocabulary import KNOWLEDGE_TOPICS
from bot.staff.auth import require_admin
from bot.staff.pages import render, run_db_for_request
from bot.staff.review_pages import CHANNEL_LABELS, InboxFilter

BASE = "/staff/dashboard"
DEFAULT_DAYS = 30
SATISFIED = (5, 4, 3)  # 非常满意、满意、基本满意: the government services' 满意 levels
TICKET_LABELS = {"open": "待处理", "called_back": "已回电", "closed": "已关闭"}
LEAD_LABELS = {"new": "新线索", "contacted": "已联系", "closed": "已关闭"}
TOPIC_LABELS = {**KNOWLEDGE_TOPICS, "out_of_scope": "超出范围", "nlu_fallback": "没听懂"}


@dataclass(frozen=True)
class Chart:
    """One chart and its table: `rows` are what the table, the CSV and the chart show."""

    id: str
    title: str
    kind: str  # line | bar | pie
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    series: tuple[int, ...]  # the columns drawn (the first column is the category)
    note: str = ""
    percent: bool = False  # the drawn values are percentages

    def spec(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "series": list(self.series),
            "percent": self.percent,
        }


class Filter(InboxFilter):
    """The inbox's day range and channel, a month by default, as the queries' Range."""

    default_days = DEFAULT_DAYS

    @property
    def span(self) -> q.Range:
        return q.Range(self.since, self.until, self.channel)

    def as_query(self) -> str:
        parts = f"from={self.date_from.isoformat()}&to={self.date_to.isoformat()}"
        return parts + (f"&channel={self.channel}" if self.channel else "")


def rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


@dataclass
class Dashboard:
    charts: list[Chart] = field(default_factory=list)
    headline: list[tuple[str, str]] = field(default_factory=list)  # (label, value)


def build(session: Session, span: q.Range) -> Dashboard:
    """Every chart's rows and the headline figures, in one database session."""
    board = Dashboard()
    conversations = q.conversations_per_day(session, span)
    total = sum(n for _, n, _ in conversations)
    handed = sum(h for _, _, h in conversations)
    board.charts.append(
        Chart("conversations", "每日会话数", "line", ("日期", "会话数"),
              [(d, n) for d, n, _ in conversations], (1,))
    )  # fmt: skip
    board.charts.append(
        Chart(
            "containment",
            "机器人独立解决率",
            "line",
            ("日期", "会话数", "转人工会话数", "独立解决会话数", "独立解决率(%)"),
            [(d, n, h, n - h, rate(n - h, n)) for d, n, h in conversations],
            (4,),
            note="独立解决：会话中没有转人工。",
            percent=True,
        )
    )
    questions = q.questions_per_day(session, span)
    asked = sum(n for _, n, _ in questions)
    unanswered = sum(u for _, _, u in questions)
    board.charts.append(
        Chart(
            "unanswered",
            "未解答率",
            "line",
            ("日期", "市民提问数", "未解答数", "未解答率(%)"),
            [(d, n, u, rate(u, n)) for d, n, u in questions],
            (3,),
            note="未解答：没听懂、点了“都不是”、知识库得分低、超出范围、评价“没有帮助”或随后转人工（见“待改进问题”）。",
            percent=True,
        )
    )
    topics = q.top_topics(session, span)
    board.charts.append(
        Chart("topics", "热门主题", "bar", ("主题", "提问数"),
              [(TOPIC_LABELS.get(t, t), n) for t, n in topics], (1,))
    )  # fmt: skip
    items = q.top_items(session, span)
    board.charts.append(
        Chart("items", "热门知识条目", "bar", ("知识条目", "编号", "回答次数"),
              [(question, key, n) for key, question, n in items], (2,))
    )  # fmt: skip
    handoffs = q.handoffs_per_day(session, span)
    board.charts.append(
        Chart("handoffs", "每日转人工", "bar", ("日期", "转人工请求", "人工接入"),
              [(d, n, a) for d, n, a in handoffs], (1, 2))
    )  # fmt: skip
    waits = q.wait_seconds(session, span)
    p50, p95 = q.percentile(waits, 0.5), q.percentile(waits, 0.95)
    board.charts.append(
        Chart(
            "wait",
            "人工接入等待时间",
            "bar",
            ("指标", "秒"),
            [("中位数 p50", round(p50 or 0, 1)), ("p95", round(p95 or 0, 1))],
            (1,),
            note=f"按 {len(waits)} 次人工接入计算。",
        )
    )
    board.charts.append(
        Chart("agents", "各客服接待会话数", "bar", ("客服", "会话数"),
              q.per_agent(session, span), (1,))
    )  # fmt: skip
    ratings = q.rating_distribution(session, span)
    rated = sum(ratings.values())
    satisfied = sum(ratings[s] for s in SATISFIED)
    board.charts.append(
        Chart(
            "ratings",
            "服务评价分布",
            "pie",
            ("评价", "数量"),
            [(RATINGS[s], n) for s, n in ratings.items()],
            (1,),
            note=(
                f"满意率 {rate(satisfied, rated)}%（非常满意、满意、基本满意占全部评价），"
                f"共 {rated} 条评价。"
            ),
        )
    )
    leads = dict(q.by_status(session, span, "leads"))
    board.charts.append(
        Chart("leads", "咨询线索（按状态）", "bar", ("状态", "数量"),
              [(LEAD_LABELS.get(s, s), leads.get(s, 0)) for s in _statuses(LEAD_STATUSES, leads)],
              (1,))
    )  # fmt: skip
    tickets = dict(q.by_status(session, span, "tickets"))
    board.charts.append(
        Chart("tickets", "留言工单（按状态）", "bar", ("状态", "数量"),
              [(TICKET_LABELS.get(s, s), tickets.get(s, 0))
               for s in _statuses(TICKET_STATES, tickets)], (1,))
    )  # fmt: skip
    feedback = q.feedback_counts(session, span)
    board.headline = [
        ("会话数", str(total)),
        ("机器人独立解决率", f"{rate(total - handed, total)}%"),
        ("未解答率", f"{rate(unanswered, asked)}%"),
        ("人工等待 p50 / p95", f"{_seconds(p50)} / {_seconds(p95)}"),
        ("满意率", f"{rate(satisfied, rated)}%" if rated else "暂无评价"),
        ("回答有帮助 / 没有帮助", f"{feedback['up']} / {feedback['down']}"),
    ]
    return board


def _statuses(known: tuple[str, ...], found: Mapping[str, int]) -> list[str]:
    """The known statuses in order, then any other one found (a newer status)."""
    return [*known, *sorted(s for s in found if s not in known)]


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}秒" if value < 120 else f"{value / 60:.1f}分钟"


async def dashboard_page(request: web.Request) -> web.Response:
    await require_admin(request)
    error = None
    try:
        flt = Filter.from_query(request.query)
    except ValueError as exc:
        error, flt = str(exc), Filter.from_query({})
    board = await run_db_for_request(request, lambda db: build(db, flt.span))
    return await render(
        request,
        "dashboard.html",
        {
            "filter": flt,
            "error": error,
            "board": board,
            "specs": [c.spec() for c in board.charts],
            "channels": CHANNEL_LABELS,
            "query": flt.as_query(),
        },
        status=400 if error else 200,
    )


def csv_text(chart: Chart) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(chart.columns)
    for row in chart.rows:
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()  # the BOM makes Excel read UTF-8 (Chinese) correctly


def _cell(value: Any) -> Any:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def chart_csv(request: web.Request) -> web.Response:
    await require_admin(request)
    try:
        flt = Filter.from_query(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    board = await run_db_for_request(request, lambda db: build(db, flt.span))
    chart_id = request.match_info["chart"]
    chart = next((c for c in board.charts if c.id == chart_id), None)
    if chart is None:
        raise web.HTTPNotFound(text="没有这个图表。")
    name = f"{chart_id}-{flt.date_from.isoformat()}-{flt.date_to.isoformat()}.csv"
    return web.Response(
        body=csv_text(chart).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def setup_dashboard_pages(app: web.Application) -> None:
    app.router.add_get(BASE, dashboard_page)
    app.router.add_get(BASE + r"/{chart:[a-z]+}.csv", chart_csv)
