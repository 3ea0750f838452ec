"""Knowledge items: one question, one direct answer, kept current by content staff.

Every change is a revision holding the item's full state after the change (who, when, what),
so any earlier text can be restored and nothing is lost by an edit. `knowledge_version` is one
row bumped on every change that citizens could see: the action server polls it (a primary-key
read) and rebuilds its search index when it moves, so an edit is live without a restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from bot.db.conversations import utcnow
from bot.db.models import Base

DRAFT, PUBLISHED, RETIRED = "draft", "published", "retired"
STATUSES = (DRAFT, PUBLISHED, RETIRED)
STATUS_LABELS = {DRAFT: "草稿", PUBLISHED: "已发布", RETIRED: "已下线"}
SOURCE_KINDS = ("official", "news", "repost", "seed")
SOURCE_KIND_LABELS = {"official": "官方", "news": "新闻", "repost": "转载", "seed": "来源文章"}
# The fields staff edit (and files carry), in file column order. `key` is the natural key.
CONTENT_FIELDS = (
    "key",
    "topic",
    "question",
    "phrasings",
    "answer",
    "details",
    "holds_for",
    "source_title",
    "source_url",
    "source_kind",
    "last_verified",
    "unknown",
    "related",
    "status",
)


class KnowledgeItem(Base):
    __tablename__ = "knowledge_items"

    id = Column(Integer, primary_key=True)
    key = Column(String(80), nullable=False, unique=True)
    # A contract topic intent (ask_trademark_window …) or a new topic (city_statistics, general).
    topic = Column(String(50), nullable=False, index=True)
    question = Column(String(200), nullable=False)
    phrasings = Column(JSON, nullable=False)  # list[str]: how people ask it
    answer = Column(Text, nullable=False)  # the direct answer, first message, ≤ 120 characters
    details = Column(Text)
    holds_for = Column(String(40))  # the date or year the fact holds for: "2021", "2019-07-01起"
    source_title = Column(String(200))
    source_url = Column(String(500))
    source_kind = Column(String(10))
    last_verified = Column(Date)
    # True: the detail is not verified anywhere; the answer says so and offers a person.
    unknown = Column(Boolean, nullable=False, default=False)
    related = Column(JSON, nullable=False)  # list[str]: keys of related items
    status = Column(String(10), nullable=False, default=DRAFT, index=True)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    updated_by = Column(String(64), nullable=False)

    def content(self) -> dict[str, Any]:
        """The editable state, JSON-ready (dates as ISO strings), as a revision stores it."""
        values = {name: getattr(self, name) for name in CONTENT_FIELDS}
        if isinstance(values["last_verified"], dt.date):
            values["last_verified"] = values["last_verified"].isoformat()
        return values


class KnowledgeRevision(Base):
    __tablename__ = "knowledge_revisions"

    id = Column(Integer, primary_key=True)
    item_id = Column(
        Integer, ForeignKey("knowledge_items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    changed_at = Column(DateTime, nullable=False, default=utcnow)
    changed_by = Column(String(64), nullable=False)
    # created, edited, published, retired, restored, imported
    action = Column(String(20), nullable=False)
    content = Column(JSON, nullable=False)  # the item's state after this change


class KnowledgeVersion(Base):
    """A single row (id 1): bumped on every change that could alter an answer."""

    __tablename__ = "knowledge_version"

    id = Column(Integer, primary_key=True)
    version = Column(Integer, nullable=False)
    changed_at = Column(DateTime, nullable=False)


class KnowledgeItemMissing(LookupError):
    """No item with that id or key."""


def content_version(session: Session) -> int:
    """The number that moves whenever published content may have changed (0: never)."""
    return session.execute(select(KnowledgeVersion.version)).scalar() or 0


def _bump_version(session: Session) -> None:
    changed = session.execute(
        update(KnowledgeVersion)
        .where(KnowledgeVersion.id == 1)
        .values(version=KnowledgeVersion.version + 1, changed_at=utcnow())
    )
    if changed.rowcount == 0:
        session.add(KnowledgeVersion(id=1, version=1, changed_at=utcnow()))


def published_items(session: Session) -> list[KnowledgeItem]:
    return list(
        session.execute(
            select(KnowledgeItem)
            .where(KnowledgeItem.status == PUBLISHED)
            .order_by(KnowledgeItem.id)
        ).scalars()
    )


def item_by_id(session: Session, item_id: int) -> KnowledgeItem:
    item = session.get(KnowledgeItem, item_id)
    if item is None:
        raise KnowledgeItemMissing(item_id)
    return item


def items_by_key(session: Session, keys: Iterable[str]) -> dict[str, KnowledgeItem]:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    rows = session.execute(select(KnowledgeItem).where(KnowledgeItem.key.in_(wanted))).scalars()
    return {item.key: item for item in rows}


def search_items(
    session: Session,
    text: str = "",
    status: str | None = None,
    topic: str | None = None,
    stale_before: dt.date | None = None,
) -> list[KnowledgeItem]:
    """The console's list: stale items (last verified before `stale_before`, or never) first."""
    query = select(KnowledgeItem)
    if text:
        like = f"%{text}%"
        query = query.where(
            or_(
                KnowledgeItem.key.like(like),
                KnowledgeItem.question.like(like),
                KnowledgeItem.answer.like(like),
            )
        )
    if status:
        query = query.where(KnowledgeItem.status == status)
    if topic:
        query = query.where(KnowledgeItem.topic == topic)
    items = list(session.execute(query.order_by(KnowledgeItem.topic, KnowledgeItem.key)).scalars())
    if stale_before is not None:
        items.sort(key=lambda i: not is_stale(i, stale_before))  # stable: stale first
    return items


def is_stale(item: KnowledgeItem, stale_before: dt.date) -> bool:
    return item.last_verified is None or item.last_verified < stale_before


def history(session: Session, item_id: int) -> list[KnowledgeRevision]:
    """Newest first."""
    return list(
        session.execute(
            select(KnowledgeRevision)
            .where(KnowledgeRevision.item_id == item_id)
            .order_by(KnowledgeRevision.id.desc())
        ).scalars()
    )


def _revision_content(values: dict[str, Any]) -> dict[str, Any]:
    content = {name: values.get(name) for name in CONTENT_FIELDS}
    if isinstance(content["last_verified"], dt.date):
        content["last_verified"] = content["last_verified"].isoformat()
    return content


def _apply(item: KnowledgeItem, values: dict[str, Any]) -> bool:
    """Set the content fields; True when anything changed."""
    changed = False
    for name in CONTENT_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name == "last_verified" and isinstance(value, str):
            value = dt.date.fromisoformat(value) if value else None
        if getattr(item, name) != value:
            setattr(item, name, value)
            changed = True
    return changed


def save_item(
    session: Session, values: dict[str, Any], by: str, action: str = "edited"
) -> tuple[KnowledgeItem, str]:
    """Create or update the item with `values["key"]`; record a revision when anything changed.

    Returns the item and "inserted", "updated" or "unchanged". The caller commits."""
    item = session.execute(
        select(KnowledgeItem).where(KnowledgeItem.key == values["key"])
    ).scalar_one_or_none()
    outcome = "updated"
    if item is None:
        item = KnowledgeItem(key=values["key"], status=DRAFT, phrasings=[], related=[])
        session.add(item)
        outcome = "inserted"
        action = "created" if action == "edited" else action
    was_published = item.status == PUBLISHED
    if not _apply(item, values) and outcome == "updated":
        return item, "unchanged"
    item.updated_at = utcnow()
    item.updated_by = by
    session.flush()
    session.add(
        KnowledgeRevision(
            item_id=item.id, changed_by=by, action=action, content=_revision_content(item.content())
        )
    )
    if was_published or item.status == PUBLISHED:
        _bump_version(session)
    return item, outcome


def set_status(session: Session, item_id: int, status: str, by: str) -> KnowledgeItem:
    item = item_by_id(session, item_id)
    action = {PUBLISHED: "published", RETIRED: "retired", DRAFT: "edited"}[status]
    save_item(session, {"key": item.key, "status": status}, by, action)
    return item


def restore(session: Session, revision_id: int, by: str) -> KnowledgeItem:
    """Make an earlier revision's text current again (as a new revision; history is kept)."""
    revision = session.get(KnowledgeRevision, revision_id)
    if revision is None:
        raise KnowledgeItemMissing(revision_id)
    item = item_by_id(session, revision.item_id)
    values = dict(revision.content)
    values["key"] = item.key  # the natural key never changes
    save_item(session, values, by, "restored")
    return item


def keys_in_use(session: Session, keys: Sequence[str]) -> set[str]:
    found = session.execute(select(KnowledgeItem.key).where(KnowledgeItem.key.in_(keys)))
    return set(found.scalars())


def count_items(session: Session) -> int:
    return session.execute(select(func.count()).select_from(KnowledgeItem)).scalar_one()
