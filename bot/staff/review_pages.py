"""The review inbox (/staff/knowledge/review), for admins and content editors: the questions the
bot did not answer well, grouped by similarity, and what staff decide about each group.

A group becomes a knowledge item (the knowledge editor, prefilled; the decision is recorded when
the item is saved), training examples for an intent (bot.kb.training_examples), or is dismissed
with a reason. Every decision is a row (bot.db.review); nothing is deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from multidict import MultiDictProxy
from typing_extensions import Self

from bot.db import review
from bot.kb.training_examples import TRAINABLE_INTENTS, TrainingRefused, add_examples
from bot.knowledge.grouping import Group, group_questions
from bot.staff.auth import StaffIdentity, check_csrf, require_knowledge_editor
from bot.staff.pages import BEIJING, flash_and_redirect, render, run_db_for_request
from bot.web.keys import SETTINGS

BASE = "/staff/knowledge/review"
DEFAULT_DAYS = 7
MAX_DAYS = 366
SHOWN_GROUPS = 100
PREFILL_PHRASINGS = 10
DISMISS_REASON_MAX = 200
CHANNEL_LABELS = {"webchat": "网页", "wechat": "微信"}


@dataclass(frozen=True)
class InboxFilter:
    """Beijing days and a channel, from the page's query string (the dashboard's filter too)."""

    date_from: dt.date
    date_to: dt.date
    channel: str | None
    default_days: ClassVar[int] = DEFAULT_DAYS  # shown when no dates are given

    @classmethod
    def from_query(cls, query: Mapping[str, str], today: dt.date | None = None) -> Self:
        """Beijing days, both included; ValueError (Chinese) when they make no sense."""
        today = today or dt.datetime.now(BEIJING).date()
        date_to = _date(query.get("to")) or today
        date_from = _date(query.get("from")) or date_to - dt.timedelta(days=cls.default_days - 1)
        if date_from > date_to:
            raise ValueError("开始日期不能晚于结束日期")
        if (date_to - date_from).days >= MAX_DAYS:
            raise ValueError(f"日期范围不能超过{MAX_DAYS}天")
        channel = query.get("channel") if query.get("channel") in CHANNEL_LABELS else None
        return cls(date_from, date_to, channel)

    @property
    def since(self) -> dt.datetime:
        return beijing_midnight_utc(self.date_from)

    @property
    def until(self) -> dt.datetime:
        return beijing_midnight_utc(self.date_to + dt.timedelta(days=1))


def _date(raw: str | None) -> dt.date | None:
    if not raw or not raw.strip():
        return None
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("日期格式应为 YYYY-MM-DD") from None


def beijing_midnight_utc(day: dt.date) -> dt.datetime:
    """The start of a Beijing day as the database keeps times (naive UTC)."""
    start = dt.datetime.combine(day, dt.time(), BEIJING)
    return start.astimezone(dt.timezone.utc).replace(tzinfo=None)


def ids_text(group: Group) -> str:
    return ",".join(str(i) for i in group.message_ids[: review.MAX_DECISION_MESSAGES])


def parse_ids(raw: object) -> list[int]:
    """Message ids from a form's comma-separated field; 400 when there are none."""
    ids = [int(part) for part in str(raw or "").split(",") if part.strip().isdigit()]
    ids = [i for i in ids if 0 < i < 2**31][: review.MAX_DECISION_MESSAGES]
    if not ids:
        raise web.HTTPBadRequest(text="没有选中任何问题。")
    return ids


async def inbox_page(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    error = None
    try:
        flt = InboxFilter.from_query(request.query)
    except ValueError as exc:
        error, flt = str(exc), InboxFilter.from_query({})
    questions = await run_db_for_request(
        request, lambda db: review.open_questions(db, flt.since, flt.until, flt.channel)
    )
    groups = await asyncio.to_thread(group_questions, questions)
    decisions = await run_db_for_request(request, review.recent_decisions)
    return await render(
        request,
        "review.html",
        {
            "filter": flt,
            "error": error,
            "groups": groups[:SHOWN_GROUPS],
            "more_groups": max(0, len(groups) - SHOWN_GROUPS),
            "question_count": len(questions),
            "ids_text": ids_text,
            "reasons": review.REASONS,
            "channels": CHANNEL_LABELS,
            "intents": TRAINABLE_INTENTS,
            "actions": review.ACTIONS,
            "decisions": decisions,
            "back": request.path_qs,
        },
        status=400 if error else 200,
    )


def _back(form: MultiDictProxy[Any]) -> str:
    back = str(form.get("back", ""))
    return back if back.startswith(BASE) and "//" not in back else BASE


async def _decide(
    request: web.Request, me: StaffIdentity, ids: list[int], action: str, detail: str
) -> review.Decided:
    return await run_db_for_request(
        request, lambda db: review.decide(db, ids, action, detail, me.id)
    )


async def dismiss(request: web.Request) -> web.StreamResponse:
    me = await require_knowledge_editor(request)
    form = await request.post()
    await check_csrf(request, form)
    ids = parse_ids(form.get("ids"))
    reason = " ".join(str(form.get("reason", "")).split())
    if not reason or len(reason) > DISMISS_REASON_MAX:
        text = f"请填写忽略的原因（1–{DISMISS_REASON_MAX}字）。"
        raise await flash_and_redirect(request, text, _back(form))
    decided = await _decide(request, me, ids, "dismiss", reason)
    text = f"已忽略 {decided.messages} 个问题（原因：{reason}）。"
    raise await flash_and_redirect(request, text, _back(form))


async def send_to_training(request: web.Request) -> web.StreamResponse:
    me = await require_knowledge_editor(request)
    form = await request.post()
    await check_csrf(request, form)
    ids = parse_ids(form.get("ids"))
    intent = str(form.get("intent", ""))
    if intent not in TRAINABLE_INTENTS:
        raise await flash_and_redirect(request, "请选择要加入的意图。", _back(form))
    texts = await run_db_for_request(request, lambda db: review.question_texts(db, ids))
    directory = request.config_dict[SETTINGS].review_training_dir
    try:
        added = await asyncio.to_thread(add_examples, directory, intent, texts)
    except (TrainingRefused, OSError) as exc:
        raise await flash_and_redirect(request, f"没有写入训练数据：{exc}", _back(form)) from None
    detail = f"{intent}：{added.path.name}，新增 {len(added.added)} 条"
    decided = await _decide(request, me, ids, "training", detail)
    text = (
        f"已把 {decided.messages} 个问题交给训练：{added.path.name} 新增 {len(added.added)} 条"
        f"例句（意图“{TRAINABLE_INTENTS[intent]}”），下次训练模型时生效。"
    )
    if added.skipped:
        text += "未加入：" + "；".join(f"“{t}”{why}" for t, why in added.skipped[:5])
    raise await flash_and_redirect(request, text, _back(form))


# --- the knowledge editor's side (bot.staff.knowledge_pages calls these) -------------------------


async def prefill_from_review(request: web.Request) -> tuple[dict[str, str], str]:
    """For /staff/knowledge/new?review=<ids>: the form's question and phrasings from the group's
    questions (most asked first), and the ids to record the decision with when it is saved."""
    raw = request.query.get("review", "")
    if not raw:
        return {}, ""
    ids = parse_ids(raw)
    texts = await run_db_for_request(request, lambda db: review.question_texts(db, ids))
    if not texts:
        return {}, ""
    values = {"question": texts[0], "phrasings": "\n".join(texts[: PREFILL_PHRASINGS + 1])}
    return values, ",".join(map(str, ids))


async def record_knowledge_decision(
    request: web.Request, me: StaffIdentity, raw_ids: str, key: str
) -> int:
    """The group's questions are answered by the new item `key`; how many left the inbox."""
    if not raw_ids:
        return 0
    decided = await _decide(request, me, parse_ids(raw_ids), "knowledge", key)
    return decided.messages


def setup_review_pages(app: web.Application) -> None:
    """Under /staff/knowledge, so the /staff gate lets content editors in as for the knowledge
    pages; agents get 403 from require_knowledge_editor."""
    app.router.add_get(BASE, inbox_page)
    app.router.add_post(f"{BASE}/dismiss", dismiss)
    app.router.add_post(f"{BASE}/training", send_to_training)
