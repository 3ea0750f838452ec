"""The staff console's knowledge-base work, built on bot.db.knowledge (the model and its rules).

Each function is one unit of work for bot.db.runner.run_db: it commits what it changes and
returns items that stay readable after the session closes (the factory does not expire on commit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import knowledge as db
from bot.db.staff import StaffUser


class KeyTaken(ValueError):
    """A new item's key is already used by another item."""


class EditConflict(Exception):
    """The item changed since the form was opened (someone else saved, published or restored)."""

    def __init__(self, item: db.KnowledgeItem) -> None:
        super().__init__(item.key)
        self.item = item


def edit_stamp(item: db.KnowledgeItem) -> str:
    """What a form carries to notice that someone else changed the item meanwhile."""
    return item.updated_at.isoformat() if item.updated_at else ""


@dataclass(frozen=True)
class ItemPage:
    """One item with what its page shows: the related items and the staff names."""

    item: db.KnowledgeItem
    related: dict[str, db.KnowledgeItem]
    names: dict[str, str]


@dataclass(frozen=True)
class HistoryPage:
    item: db.KnowledgeItem
    revisions: list[db.KnowledgeRevision]  # newest first
    names: dict[str, str]


def staff_names(session: Session, usernames: Iterable[str]) -> dict[str, str]:
    """username → display name, for the usernames that are staff accounts."""
    wanted = sorted({u for u in usernames if u})
    if not wanted:
        return {}
    rows = session.execute(
        select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(wanted))
    )
    return {username: name for username, name in rows}


def list_page(
    session: Session,
    text: str,
    status: str | None,
    topic: str | None,
    stale_before: dt.date,
) -> tuple[list[db.KnowledgeItem], dict[str, str]]:
    """The filtered items (stale first) and the names of who last changed them."""
    items = db.search_items(session, text, status, topic, stale_before)
    return items, staff_names(session, (i.updated_by for i in items))


def item_page(session: Session, item_id: int) -> ItemPage:
    item = db.item_by_id(session, item_id)
    return ItemPage(
        item, db.items_by_key(session, item.related or []), staff_names(session, [item.updated_by])
    )


def related_items(session: Session, keys: Iterable[str]) -> dict[str, db.KnowledgeItem]:
    return db.items_by_key(session, keys)


def item_ids(session: Session, keys: Iterable[str]) -> dict[str, int]:
    return {key: item.id for key, item in db.items_by_key(session, keys).items()}


def create_item(session: Session, values: dict[str, Any], by: str) -> db.KnowledgeItem:
    """A new draft item (validated values); KeyTaken when the key is in use."""
    if db.keys_in_use(session, [values["key"]]):
        raise KeyTaken(values["key"])
    item, _ = db.save_item(session, {**values, "status": db.DRAFT}, by)
    session.commit()
    return item


def update_item(
    session: Session, item_id: int, values: dict[str, Any], by: str, stamp: str | None
) -> tuple[db.KnowledgeItem, str]:
    """Save a form's (validated) values; the key and the status stay as they are.

    EditConflict when `stamp` is given and the item changed since. Returns the item and
    "updated" or "unchanged"."""
    item = db.item_by_id(session, item_id)
    if stamp is not None and stamp != edit_stamp(item):
        raise EditConflict(item)
    item, outcome = db.save_item(session, {**values, "key": item.key, "status": item.status}, by)
    session.commit()
    return item, outcome


def change_status(session: Session, item_id: int, status: str, by: str) -> db.KnowledgeItem:
    item = db.set_status(session, item_id, status, by)
    session.commit()
    return item


def history_page(session: Session, item_id: int) -> HistoryPage:
    item = db.item_by_id(session, item_id)
    revisions = db.history(session, item_id)
    return HistoryPage(item, revisions, staff_names(session, (r.changed_by for r in revisions)))


def restore_revision(session: Session, item_id: int, revision_id: int, by: str) -> db.KnowledgeItem:
    """Make one of this item's revisions current again; KnowledgeItemMissing if it is not one."""
    revision = session.get(db.KnowledgeRevision, revision_id)
    if revision is None or revision.item_id != item_id:
        raise db.KnowledgeItemMissing(revision_id)
    item = db.restore(session, revision_id, by)
    session.commit()
    return item
