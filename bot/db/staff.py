"""Staff accounts (agents, admins and content editors) and the canned replies admins keep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import Session

from bot.db.conversations import utcnow
from bot.db.models import Base

AGENT, ADMIN, EDITOR = "agent", "admin", "editor"
# A plain string column (String(10)): a new role needs no migration.
ROLES = (AGENT, ADMIN, EDITOR)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False)  # shown to citizens: "人工客服 王小明"
    password_hash = Column(String(255), nullable=False)  # argon2id, never the password
    role = Column(String(10), nullable=False, default=AGENT)
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)  # UTC; set after repeated wrong passwords
    created_at = Column(DateTime, nullable=False, default=utcnow)


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id = Column(Integer, primary_key=True)
    title = Column(String(100), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)


def find_staff(session: Session, staff_id: int) -> StaffUser | None:
    """The account with this id (active or not)."""
    return session.get(StaffUser, staff_id)


def staff_by_username(session: Session, username: str) -> StaffUser | None:
    """The account with exactly this username (callers normalise it: usernames are lower case)."""
    return session.execute(
        select(StaffUser).where(StaffUser.username == username)
    ).scalar_one_or_none()


def all_staff(session: Session) -> list[StaffUser]:
    """Every account (agents, admins, editors), active first, then by username."""
    return list(
        session.execute(
            select(StaffUser).order_by(StaffUser.active.desc(), StaffUser.username)
        ).scalars()
    )


def add_staff(
    session: Session, username: str, display_name: str, password_hash: str, role: str
) -> StaffUser:
    """Store and commit a new, active account."""
    account = StaffUser(
        username=username,
        display_name=display_name,
        password_hash=password_hash,
        role=role,
        active=True,
        failed_logins=0,
        created_at=utcnow(),
    )
    session.add(account)
    session.commit()
    return account


def record_failed_login(
    session: Session, account: StaffUser, lock_at: int, locked_until: datetime
) -> None:
    """Count a wrong password and commit; the `lock_at`-th in a row locks the account until
    `locked_until` (and restarts the count).

    The increment is a single UPDATE so that concurrent guesses cannot lose counts.
    """
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == account.id)
        .values(failed_logins=StaffUser.failed_logins + 1)
    )
    session.flush()
    session.refresh(account)
    if account.failed_logins >= lock_at:
        account.failed_logins = 0
        account.locked_until = locked_until
    session.commit()


def reset_logins(session: Session, account: StaffUser, password_hash: str | None = None) -> None:
    """Clear the wrong-password count and any lock, store `password_hash` if given; commit."""
    account.failed_logins = 0
    account.locked_until = None
    if password_hash is not None:
        account.password_hash = password_hash
    session.commit()


def display_name_of(session: Session, staff_id: int) -> str | None:
    """The account's display name; None when there is no such account."""
    account = find_staff(session, staff_id)
    return account.display_name if account is not None else None


def canned_replies(session: Session) -> list[CannedReply]:
    """Every canned reply, by title."""
    return list(
        session.execute(select(CannedReply).order_by(CannedReply.title, CannedReply.id)).scalars()
    )


def add_canned_reply(session: Session, title: str, text: str) -> None:
    session.add(CannedReply(title=title, text=text, created_at=utcnow()))
    session.commit()


def delete_canned_reply(session: Session, reply_id: int) -> bool:
    """False when the reply was already gone."""
    reply = session.get(CannedReply, reply_id)
    if reply is None:
        return False
    session.delete(reply)
    session.commit()
    return True
