"""The knowledge-base pages of the staff console, for admins and content editors (`editor`).

List with search, filters and items due for re-verification first; a 试一试 box that asks the
published knowledge exactly as the bot does; create/edit forms checked by the same rules as an
imported file (bot.kb.knowledge_file.validate), with a preview of what the citizen would read;
publish / retire / back to draft; each item's history with a diff per revision and restore;
Excel (XLSX) and CSV export, and import of a whole file (all rows or none).

Every query lives in bot/db (bot.db.knowledge_admin); every form carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import logging
import zipfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.db import knowledge as kdb
from bot.db import knowledge_admin as admin
from bot.db.runner import run_db
from bot.domain.vocabulary import KNOWLEDGE_TOPICS
from bot.kb import knowledge_file
from bot.kb.importer import ImportRejected, ImportReport
from bot.knowledge.embed import DEFAULT_CACHE, Embedder
from bot.knowledge.live import LiveKnowledge, entry_of
from bot.knowledge.reply import Band, answer_messages, decide, suggestion_message
from bot.knowledge.search import Hit
from bot.staff.auth import check_csrf, require_knowledge_editor
from bot.staff.pages import BEIJING, flash_and_redirect, render, run_db_for_request
from bot.staff.review_pages import prefill_from_review, record_knowledge_decision
from bot.web.keys import SETTINGS

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_FIELD_BYTES = 4096  # any non-file part of the upload form (the CSRF token)
IMPORT_TIMEOUT = 120.0  # a whole file in one transaction: longer than one page's DB_TIMEOUT
TRY_LIMIT = 5
TRY_MAX_CHARS = 200
UPLOAD_SUFFIXES = (".xlsx", ".csv")
BASE = "/staff/knowledge"

# The console's own LiveKnowledge for 试一试: published items only, as the action server sees them.
LIVE_KNOWLEDGE = web.AppKey("staff_live_knowledge", LiveKnowledge)

TOPIC_LABELS = KNOWLEDGE_TOPICS
ACTION_LABELS = {
    "created": "新建",
    "edited": "修改",
    "published": "发布",
    "retired": "下线",
    "restored": "恢复旧版本",
    "imported": "文件导入",
}
BAND_LABELS: dict[Band, str] = {"answer": "直接回答", "suggest": "您是想问", "none": "未找到"}
BAND_NOTES: dict[Band, str] = {
    "answer": "机器人会直接用第 1 条的答案回复市民。",
    "suggest": "几条得分接近，机器人会列出前几条问题请市民选择。",
    "none": "知识库里没有相关内容，机器人不会用知识库回答。",
}
FIELD_LABELS = {
    "key": "编号（key）",
    "topic": "主题",
    "question": "标准问题",
    "phrasings": "常见问法",
    "answer": "答案",
    "details": "详细说明",
    "holds_for": "信息时间",
    "source_title": "来源名称",
    "source_url": "来源网址",
    "source_kind": "来源类型",
    "last_verified": "最后核实日期",
    "unknown": "未核实",
    "related": "相关问题",
    "status": "状态",
}
STATUS_DONE = {
    kdb.PUBLISHED: "已发布，市民现在就能看到这条答案。",
    kdb.RETIRED: "已下线，市民不会再看到这条答案。",
    kdb.DRAFT: "已改为草稿，市民不会再看到这条答案。",
}
LIST_FIELDS = ("phrasings", "related")
TEXT_FIELDS = tuple(f for f in kdb.CONTENT_FIELDS if f not in ("unknown", "status"))
# Text columns whose length validate() does not check; the database would refuse longer values.
COLUMN_LIMITS = {
    name: kdb.KnowledgeItem.__table__.c[name].type.length
    for name in ("holds_for", "source_title", "source_url")
}


def topic_label(topic: str) -> str:
    return TOPIC_LABELS.get(topic, topic)


def stale_days(request: web.Request) -> int:
    """Items last verified longer ago than this (Settings.kb_stale_days, env KB_STALE_DAYS) are
    listed first and marked 待复核."""
    return request.config_dict[SETTINGS].kb_stale_days


def stale_before(days: int, today: dt.date | None = None) -> dt.date:
    today = today or dt.datetime.now(BEIJING).date()
    return today - dt.timedelta(days=days)


async def _db(request: web.Request, work: Callable[[Session], T]) -> T:
    """`work` in the database; 404 (Chinese) when the item or revision does not exist."""
    try:
        return await run_db_for_request(request, work)
    except kdb.KnowledgeItemMissing:
        raise web.HTTPNotFound(text="没有这个知识条目（可能已被删除）。") from None


def _item_id(request: web.Request) -> int:
    return int(request.match_info["item_id"])


# --- the list, with 试一试 ------------------------------------------------------------------


@dataclass(frozen=True)
class TryResult:
    question: str
    band: Band | None = None
    hits: tuple[Hit, ...] = ()
    ids: Mapping[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)  # what the citizen would read
    error: str | None = None

    @property
    def band_label(self) -> str:
        return BAND_LABELS[self.band] if self.band else ""

    @property
    def band_note(self) -> str:
        return BAND_NOTES[self.band] if self.band else ""


async def try_question(request: web.Request, question: str) -> TryResult:
    """What the bot would do with `question` on the published knowledge (no NLU topic hint)."""
    try:
        snapshot = await request.config_dict[LIVE_KNOWLEDGE].snapshot()
        hits = await asyncio.to_thread(snapshot.index.search, question, None, None, TRY_LIMIT)
    except Exception:  # a slow or dead database: say so, the rest of the page still works
        logger.exception("试一试: the knowledge snapshot could not be loaded")
        return TryResult(question, error="暂时无法读取知识库，请稍后再试。")
    decision = decide(hits)
    messages: list[dict[str, Any]] = []
    if decision.band == "answer" and decision.best is not None:
        messages = answer_messages(snapshot.items[decision.best.key], snapshot.items)
    elif decision.band == "suggest":
        messages = [suggestion_message(decision.hits)]
    ids = await _db(request, lambda db: admin.item_ids(db, [h.key for h in hits]))
    return TryResult(question, decision.band, tuple(hits), ids, messages)


async def list_page(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    query = request.query
    text = query.get("q", "").strip()[:100]
    status = query.get("status") if query.get("status") in kdb.STATUSES else None
    topic = query.get("topic") if query.get("topic") in knowledge_file.TOPICS else None
    before = stale_before(stale_days(request))
    items, names = await _db(request, lambda db: admin.list_page(db, text, status, topic, before))
    stale = {item.id for item in items if kdb.is_stale(item, before)}
    question = query.get("try", "").strip()[:TRY_MAX_CHARS]
    tried = await try_question(request, question) if question else None
    return await render(
        request,
        "knowledge.html",
        {
            "items": items,
            "who": lambda username: _who(username, names),
            "stale": stale,
            "stale_days": stale_days(request),
            "text": text,
            "status": status or "",
            "topic": topic or "",
            "filtered": bool(text or status or topic),
            "tried": tried,
            "try_max": TRY_MAX_CHARS,
            "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
            **_labels(),
        },
    )


def _labels() -> dict[str, Any]:
    return {
        "topics": [(t, topic_label(t)) for t in knowledge_file.TOPICS],
        "topic_labels": TOPIC_LABELS,
        "status_labels": kdb.STATUS_LABELS,
        "source_kinds": [(k, kdb.SOURCE_KIND_LABELS[k]) for k in kdb.SOURCE_KINDS],
        "field_labels": FIELD_LABELS,
    }


# --- create / edit, with the citizen's preview ----------------------------------------------


@dataclass
class Preview:
    question: str
    messages: list[dict[str, Any]]
    hidden_related: list[str]  # related items that exist but are not published
    missing_related: list[str]


@dataclass
class FormState:
    """What the form shows: the values as typed (strings), and what is wrong with them."""

    values: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # in Chinese, with the field's name
    field_problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str | None, reason: str) -> None:
        text = f"{FIELD_LABELS[name]}：{reason}" if name else reason
        self.problems.append(text)
        if name:
            self.field_problems.setdefault(name, []).append(text)


def form_of_item(item: kdb.KnowledgeItem | None) -> dict[str, Any]:
    if item is None:
        return {name: "" for name in TEXT_FIELDS} | {"unknown": False, "source_kind": "official"}
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = getattr(item, name)
        if name in LIST_FIELDS:
            values[name] = "\n".join(value or [])
        elif isinstance(value, dt.date):
            values[name] = value.isoformat()
        else:
            values[name] = value or ""
    values["unknown"] = bool(item.unknown)
    return values


def form_of_post(post: MultiDictProxy[Any], item: kdb.KnowledgeItem | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        raw = post.get(name, "")
        text = raw if isinstance(raw, str) else ""
        values[name] = text.replace("\r\n", "\n")
    if item is not None:
        values["key"] = item.key  # the natural key never changes
    values["unknown"] = post.get("unknown") == "1"
    return values


def _field_of(reason: str) -> tuple[str | None, str]:
    """validate() names the field first ("answer 超过120字"): (field, the rest of the reason)."""
    head, _, rest = reason.partition(" ")
    if head in FIELD_LABELS and rest:
        return head, rest.lstrip()
    if "（unknown）" in reason:  # an unverified answer with a figure in it
        return "answer", reason
    return None, reason


def check_form(values: dict[str, Any], status: str) -> tuple[dict[str, Any], FormState]:
    """The cleaned values (as bot.kb.knowledge_file.validate makes them) and the problems."""
    clean, reasons = knowledge_file.validate({**values, "status": status})
    state = FormState(values)
    for reason in reasons:
        state.add(*_field_of(reason))
    for name, limit in COLUMN_LIMITS.items():
        if len(clean[name]) > limit:
            state.add(name, f"超过{limit}字（现在{len(clean[name])}字）")
    return clean, state


def check_related(
    clean: Mapping[str, Any], related: Mapping[str, kdb.KnowledgeItem], state: FormState
) -> None:
    missing = [k for k in clean["related"] if k not in related]
    if missing:
        state.add("related", f"没有编号为 {'、'.join(missing)} 的条目")
    if clean["key"] and clean["key"] in clean["related"]:
        state.add("related", "不能包含本条目自己")


def preview_of(clean: Mapping[str, Any], related: Mapping[str, kdb.KnowledgeItem]) -> Preview:
    """What the citizen would read for these values: reply.answer_messages, as the bot sends it."""
    values = {name: clean.get(name) for name in kdb.CONTENT_FIELDS}
    values["last_verified"] = _as_date(clean.get("last_verified"))
    values["unknown"] = bool(clean.get("unknown"))
    entry = entry_of(kdb.KnowledgeItem(**values))
    published = {
        key: entry_of(item) for key, item in related.items() if item.status == kdb.PUBLISHED
    }
    keys = list(clean.get("related") or [])
    return Preview(
        question=entry.question,
        messages=answer_messages(entry, published) if entry.answer else [],
        hidden_related=[k for k in keys if k in related and k not in published],
        missing_related=[k for k in keys if k not in related],
    )


def _as_date(value: Any) -> dt.date | None:
    """A date from a form's cleaned values (a date) or a stored revision (an ISO string)."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


async def _render_form(
    request: web.Request,
    item: kdb.KnowledgeItem | None,
    state: FormState,
    preview: Preview | None,
    names: Mapping[str, str],
    stamp: str,
    notice: str | None = None,
    status: int = 200,
    review_ids: str = "",
) -> web.Response:
    before = stale_before(stale_days(request))
    return await render(
        request,
        "knowledge_edit.html",
        {
            "item": item,
            "form": state.values,
            "problems": state.problems,
            "field_problems": state.field_problems,
            "preview": preview,
            "who": lambda username: _who(username, names),
            "stamp": stamp,
            "notice": notice,
            "is_stale": item is not None and kdb.is_stale(item, before),
            "stale_days": stale_days(request),
            "max_answer": knowledge_file.MAX_ANSWER,
            "answer_length": len((state.values.get("answer") or "").strip()),
            "moves": _moves(item),
            "today": dt.datetime.now(BEIJING).date().isoformat(),
            "review_ids": review_ids,  # a new item from the review inbox's group
            **_labels(),
        },
        status=status,
    )


def _moves(item: kdb.KnowledgeItem | None) -> list[tuple[str, str]]:
    """The status buttons an item shows: (target status, button text)."""
    if item is None:
        return []
    buttons = {kdb.PUBLISHED: "发布", kdb.RETIRED: "下线", kdb.DRAFT: "改回草稿"}
    order = (kdb.PUBLISHED, kdb.DRAFT, kdb.RETIRED)
    return [(target, buttons[target]) for target in order if target != item.status]


async def new_page(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    prefill, review_ids = await prefill_from_review(request)
    state = FormState(form_of_item(None) | prefill)
    return await _render_form(request, None, state, None, {}, "", review_ids=review_ids)


async def edit_page(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    item_id = _item_id(request)
    page = await _db(request, lambda db: admin.item_page(db, item_id))
    preview = preview_of(page.item.content(), page.related)
    return await _render_form(
        request,
        page.item,
        FormState(form_of_item(page.item)),
        preview,
        page.names,
        admin.edit_stamp(page.item),
    )


async def save_form(request: web.Request) -> web.StreamResponse:
    """POST of the create or edit form: "预览" shows the preview only, "保存" saves."""
    me = await require_knowledge_editor(request)
    post = await request.post()
    await check_csrf(request, post)
    item_id = int(request.match_info["item_id"]) if "item_id" in request.match_info else None
    page = await _db(request, lambda db: admin.item_page(db, item_id)) if item_id else None
    item = page.item if page else None
    names = page.names if page else {}
    values = form_of_post(post, item)
    clean, state = check_form(values, item.status if item else kdb.DRAFT)
    related = await _db(request, lambda db: admin.related_items(db, clean["related"]))
    check_related(clean, related, state)
    preview = preview_of(clean, related)
    stamp = str(post.get("stamp", "")) if item else ""
    review_ids = "" if item else str(post.get("review_ids", ""))[:8000]
    if post.get("do") == "preview" or state.problems:
        bad = bool(state.problems) and post.get("do") != "preview"
        return await _render_form(
            request, item, state, preview, names, stamp, status=400 if bad else 200,
            review_ids=review_ids,
        )  # fmt: skip
    if item is None:
        try:
            created = await _db(request, lambda db: admin.create_item(db, clean, me.username))
        except admin.KeyTaken:
            state.add("key", "已被其他条目使用，请换一个")
            return await _render_form(
                request, None, state, preview, names, stamp, status=400, review_ids=review_ids
            )
        text = f"已新建条目“{created.question}”（草稿）。检查预览无误后，请点“发布”。"
        reviewed = await record_knowledge_decision(request, me, review_ids, created.key)
        if reviewed:
            text += f"待改进问题中的 {reviewed} 个问题已记为由此条目解答。"
        raise await flash_and_redirect(request, text, f"{BASE}/{created.id}")
    try:
        saved, outcome = await _db(
            request, lambda db: admin.update_item(db, item.id, clean, me.username, stamp)
        )
    except admin.EditConflict as conflict:
        current = conflict.item
        names = {
            **names,
            **await _db(request, lambda db: admin.staff_names(db, [current.updated_by])),
        }
        notice = (
            f"保存没有完成：您打开此页后，{_who(current.updated_by, names)}"
            "修改了这个条目。下面仍是您填写的内容；请核对后再点“保存”（将覆盖对方的修改），"
            "或重新打开本页查看对方的版本。"
        )
        return await _render_form(
            request, current, state, preview, names, admin.edit_stamp(current), notice, 409
        )
    if outcome == "unchanged":
        text = "内容没有变化，未保存新版本。"
    elif saved.status == kdb.PUBLISHED:
        text = "已保存。此条目已发布，市民现在看到的就是新内容。"
    else:
        text = f"已保存（{kdb.STATUS_LABELS[saved.status]}，市民看不到）。"
    raise await flash_and_redirect(request, text, f"{BASE}/{saved.id}")


async def change_status(request: web.Request) -> web.StreamResponse:
    me = await require_knowledge_editor(request)
    post = await request.post()
    await check_csrf(request, post)
    target = str(post.get("status", ""))
    if target not in kdb.STATUSES:
        raise web.HTTPBadRequest(text="未知的状态")
    item_id = _item_id(request)
    item = await _db(request, lambda db: admin.change_status(db, item_id, target, me.username))
    text = f"“{item.question}”{STATUS_DONE[target]}"
    raise await flash_and_redirect(request, text, f"{BASE}/{item_id}")


# --- history and restore --------------------------------------------------------------------


Segment = tuple[str, str]  # ("same" | "del" | "ins", text)
MERGE_BELOW = 3  # unchanged runs of 1–2 characters between changes are shown as changed


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    lines: bool  # a list field: one entry per line
    before: list[Segment]
    after: list[Segment]


@dataclass(frozen=True)
class RevisionView:
    id: int
    changed_at: dt.datetime
    who: str
    action: str
    status: str
    current: bool
    first: bool
    changes: list[FieldChange]


def field_text(name: str, value: Any) -> str:
    """A field's value as staff read it (labels, not codes)."""
    if value is None:
        return ""
    if name in LIST_FIELDS:
        return "\n".join(str(v) for v in value or [])
    if name == "unknown":
        return "是" if value else "否"
    if name == "status":
        return kdb.STATUS_LABELS.get(value, value)
    if name == "topic":
        return topic_label(value)
    if name == "source_kind":
        return kdb.SOURCE_KIND_LABELS.get(value, value)
    return str(value)


def diff_segments(before: str, after: str, lines: bool) -> tuple[list[Segment], list[Segment]]:
    """difflib: what was removed (in `before`) and added (in `after`), by character or by line."""
    a: list[str] = before.split("\n") if lines else list(before)
    b: list[str] = after.split("\n") if lines else list(after)
    if lines:
        a, b = [x for x in a if x], [x for x in b if x]
    old: list[Segment] = []
    new: list[Segment] = []

    def add(into: list[Segment], kind: str, parts: list[str]) -> None:
        if not parts:
            return
        if lines:
            into.extend((kind, part) for part in parts)
        elif into and into[-1][0] == kind:
            into[-1] = (kind, into[-1][1] + "".join(parts))
        else:
            into.append((kind, "".join(parts)))

    for tag, i1, i2, j1, j2 in _opcodes(a, b, merge_below=0 if lines else MERGE_BELOW):
        if tag == "equal":
            add(old, "same", a[i1:i2])
            add(new, "same", b[j1:j2])
        else:
            add(old, "del", a[i1:i2])
            add(new, "ins", b[j1:j2])
    return old, new


def _opcodes(a: list[str], b: list[str], merge_below: int) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes, with an unchanged run shorter than `merge_below` between two changes
    folded into them: "20<del>19</del>年<del>7月1日</del>" reads as "20<del>19年7月1日</del>"."""
    codes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    merged: list[tuple[str, int, int, int, int]] = []
    for position, code in enumerate(codes):
        tag, i1, i2, j1, j2 = code
        inner = 0 < position < len(codes) - 1
        if tag == "equal" and inner and i2 - i1 < merge_below:
            tag = "replace"
        if merged and tag != "equal" and merged[-1][0] != "equal":
            _, k1, _, l1, _ = merged.pop()
            merged.append(("replace", k1, i2, l1, j2))
        else:
            merged.append((tag, i1, i2, j1, j2))
    return merged


def changes_between(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[FieldChange]:
    """The fields that differ, each with its diff; `before` None: the first revision (every
    filled-in field, as it was)."""
    found = []
    for name in kdb.CONTENT_FIELDS:
        new = field_text(name, after.get(name))
        lines = name in LIST_FIELDS
        if before is None:
            if new:
                parts = [("same", p) for p in new.split("\n")] if lines else [("same", new)]
                found.append(FieldChange(name, FIELD_LABELS[name], lines, [], parts))
            continue
        old = field_text(name, before.get(name))
        if old != new:
            old_parts, new_parts = diff_segments(old, new, lines)
            found.append(FieldChange(name, FIELD_LABELS[name], lines, old_parts, new_parts))
    return found


def revision_views(
    revisions: list[kdb.KnowledgeRevision], names: Mapping[str, str]
) -> list[RevisionView]:
    """Newest first, each with its changes against the revision before it."""
    views = []
    for position, revision in enumerate(revisions):
        older = revisions[position + 1].content if position + 1 < len(revisions) else None
        changes = changes_between(older, revision.content)
        action = ACTION_LABELS.get(revision.action, revision.action)
        if revision.action == "edited" and [c.name for c in changes] == ["status"]:
            action = "改为" + field_text("status", revision.content.get("status"))
        views.append(
            RevisionView(
                id=revision.id,
                changed_at=revision.changed_at,
                who=_who(revision.changed_by, names),
                action=action,
                status=field_text("status", revision.content.get("status")),
                current=position == 0,
                first=position + 1 == len(revisions),
                changes=changes,
            )
        )
    return views


def _who(username: str, names: Mapping[str, str]) -> str:
    if username in names:
        return f"{names[username]}（{username}）"
    return "初始数据" if username == "seed" else username


async def history_page(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    item_id = _item_id(request)
    page = await _db(request, lambda db: admin.history_page(db, item_id))
    return await render(
        request,
        "knowledge_history.html",
        {
            "item": page.item,
            "revisions": revision_views(page.revisions, page.names),
            **_labels(),
        },
    )


async def restore(request: web.Request) -> web.StreamResponse:
    me = await require_knowledge_editor(request)
    post = await request.post()
    await check_csrf(request, post)
    item_id = _item_id(request)
    try:
        revision_id = int(str(post.get("revision", "")))
    except ValueError:
        raise web.HTTPBadRequest(text="缺少版本编号") from None
    item = await _db(
        request, lambda db: admin.restore_revision(db, item_id, revision_id, me.username)
    )
    text = (
        f"已恢复到所选版本（作为一个新版本保存，历史记录都保留）。"
        f"当前状态：{kdb.STATUS_LABELS[item.status]}。"
    )
    raise await flash_and_redirect(request, text, f"{BASE}/{item_id}")


# --- export / import ------------------------------------------------------------------------


def _download(body: bytes, suffix: str, content_type: str) -> web.Response:
    stamp = dt.datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        content_type=content_type,
        headers={
            "Content-Disposition": f'attachment; filename="knowledge-{stamp}.{suffix}"',
            "Cache-Control": "no-store",
        },
    )


async def export_xlsx(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    body = await _db(
        request,
        lambda db: knowledge_file.export_xlsx(knowledge_file.export_records(db)),
    )
    return _download(
        body, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )


async def export_csv(request: web.Request) -> web.Response:
    await require_knowledge_editor(request)
    body = await _db(
        request, lambda db: knowledge_file.export_csv(knowledge_file.export_records(db))
    )
    response = _download(body, "csv", "text/csv")
    response.charset = "utf-8"
    return response


class UploadRefused(ValueError):
    """The upload cannot be imported at all (no file, wrong type, too large); text in Chinese."""


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]
    filename: str
    data: bytes


async def _read_part(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise UploadRefused(too_large)
    return bytes(data)


async def read_upload(request: web.Request) -> Upload:
    """The multipart form's small fields and its one file, each read within its size limit."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES + 65536:
        raise UploadRefused(_too_large_text())
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise web.HTTPBadRequest(text="请通过页面上的表单上传文件") from None
    fields: dict[str, str] = {}
    filename, data = "", b""
    async for part in _parts(reader):
        if part.name == "file":
            # Browsers send the name as UTF-8; some clients percent-encode it.
            filename = unquote(part.filename or "")[:200]
            data = await _read_part(part, MAX_UPLOAD_BYTES, _too_large_text())
        elif part.name:
            raw = await _read_part(part, MAX_FIELD_BYTES, "表单内容过长")
            fields[part.name] = raw.decode("utf-8", "replace")
    return Upload(fields, filename, data)


async def _parts(reader: Any) -> AsyncIterator[BodyPartReader]:
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader):
            yield part


def _too_large_text() -> str:
    return f"文件超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB，请拆分后分批导入。"


def _check_upload(upload: Upload) -> None:
    if not upload.filename or not upload.data:
        raise UploadRefused("请先选择要导入的文件（Excel .xlsx 或 .csv）。")
    if not upload.filename.lower().endswith(UPLOAD_SUFFIXES):
        raise UploadRefused("只能导入 Excel（.xlsx）或 CSV（.csv）文件。")


def row_errors(rejected: ImportRejected) -> list[str]:
    """ "第N行：原因；原因" for every bad row (or the one reason a file cannot be read)."""
    if not rejected.errors:
        return [str(rejected)]
    return [f"第{error.line}行：{'；'.join(error.reasons)}" for error in rejected.errors]


async def import_file(request: web.Request) -> web.StreamResponse:
    me = await require_knowledge_editor(request)
    try:
        upload = await read_upload(request)
    except UploadRefused as refused:
        # The form's token is not read: nothing changes, only this text is shown.
        return await _render_import(request, None, [str(refused)], 413)
    await check_csrf(request, upload.fields)
    try:
        _check_upload(upload)
    except UploadRefused as refused:
        return await _render_import(request, upload.filename, [str(refused)], 400)
    settings = request.config_dict[SETTINGS]
    by = me.username

    def work(db: Session) -> ImportReport:
        return knowledge_file.import_items(db, upload.filename, upload.data, by)

    try:
        report = await run_db(settings.database_url, work, max(settings.db_timeout, IMPORT_TIMEOUT))
    except ImportRejected as rejected:
        return await _render_import(request, upload.filename, row_errors(rejected), 400)
    except zipfile.BadZipFile:
        text = f"{upload.filename}: 无法读取文件，请确认它是用 Excel 保存的 .xlsx 文件。"
        return await _render_import(request, upload.filename, [text], 400)
    except DBAPIError:  # e.g. a cell longer than its column on PostgreSQL; rolled back
        logger.exception("knowledge import refused by the database")
        limits = "、".join(f"{name} 不超过{limit}字" for name, limit in COLUMN_LIMITS.items())
        text = f"文件中有内容超过数据库允许的长度（{limits}），请缩短后重新导入。"
        return await _render_import(request, upload.filename, [text], 400)
    text = (
        f"已导入“{upload.filename}”：共 {report.rows} 行，新增 {report.inserted} 条，"
        f"更新 {report.updated} 条，未变 {report.unchanged} 条。"
    )
    raise await flash_and_redirect(request, text, BASE)


async def _render_import(
    request: web.Request, filename: str | None, errors: list[str], status: int
) -> web.Response:
    return await render(
        request,
        "knowledge_import.html",
        {
            "filename": filename,
            "errors": errors,
            "max_upload_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        },
        status=status,
    )


# --- setup ----------------------------------------------------------------------------------


async def _live_knowledge(app: web.Application) -> AsyncIterator[None]:
    """The 试一试 box's LiveKnowledge: nothing is read until the first question is tried."""
    settings = app[SETTINGS]
    app[LIVE_KNOWLEDGE] = LiveKnowledge(
        settings.database_url,
        settings.db_timeout,
        Embedder(DEFAULT_CACHE),
        poll_seconds=settings.kb_poll_seconds,
    )
    yield


def setup_knowledge_pages(app: web.Application) -> None:
    """The /staff/knowledge routes. Call after bot.staff.pages.setup_staff_pages (templates,
    the /staff gate)."""
    app.cleanup_ctx.append(_live_knowledge)
    router = app.router
    item = r"/staff/knowledge/{item_id:\d+}"
    router.add_get(BASE, list_page)
    router.add_get(f"{BASE}/export.xlsx", export_xlsx)
    router.add_get(f"{BASE}/export.csv", export_csv)
    router.add_post(f"{BASE}/import", import_file)
    router.add_get(f"{BASE}/new", new_page)
    router.add_post(f"{BASE}/new", save_form)
    router.add_get(item, edit_page)
    router.add_post(item, save_form)
    router.add_post(f"{item}/status", change_status)
    router.add_get(f"{item}/history", history_page)
    router.add_post(f"{item}/restore", restore)
