"""Staff accounts (agents, admins and content editors) and the canned replies admins keep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    or_,
    select,
    update,
)
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


class StaffSession(Base):
    """A staff sign-in: the session id kept in the cookie, valid until `expires_at` unless revoked
    (logout). Every gateway checks it on every request, so a logout holds everywhere."""

    __tablename__ = "staff_sessions"

    id = Column(String(64), primary_key=True)  # the random session id (secrets.token_urlsafe)
    staff_id = Column(Integer, ForeignKey("staff_users.id"), nullable=False, index=True)
    created_at = Column(DateTime, nullable=False)
    expires_at = Column(DateTime, nullable=False)  # UTC
    revoked_at = Column(DateTime)  # UTC; set at logout


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


def reserve_login_attempt(
    session: Session, staff_id: int, lock_at: int, now: datetime, locked_until: datetime
) -> bool:
    """Count one password attempt before it is verified, and commit; False (nothing counted) when
    the account is locked. The `lock_at`-th attempt in a row locks the account until
    `locked_until` (a success then clears it, see reset_logins).

    Each step is one conditional UPDATE, so concurrent attempts can neither lose a count nor get
    past the limit: at most `lock_at` passwords are verified per lock period.
    """
    session.execute(  # an expired lock: start counting again
        update(StaffUser)
        .where(StaffUser.id == staff_id, StaffUser.locked_until <= now)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    counted = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == staff_id,
            StaffUser.failed_logins < lock_at,
            or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now),
        )
        .values(failed_logins=StaffUser.failed_logins + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount == 1:
        session.execute(
            update(StaffUser)
            .where(StaffUser.id == staff_id, StaffUser.failed_logins >= lock_at)
            .values(locked_until=locked_until)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return counted.rowcount == 1


def reset_logins(session: Session, account: StaffUser, password_hash: str | None = None) -> None:
    """Clear the wrong-password count and any lock, store `password_hash` if given; commit."""
    account.failed_logins = 0
    account.locked_until = None
    if password_hash is not None:
        account.password_hash = password_hash
    session.commit()


def add_staff_session(
    session: Session, session_id: str, staff_id: int, now: datetime, expires_at: datetime
) -> None:
    """Store a new sign-in (and forget sessions that have expired anyway); commit."""
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    session.add(
        StaffSession(id=session_id, staff_id=staff_id, created_at=now, expires_at=expires_at)
    )
    session.commit()


def revoke_staff_session(session: Session, session_id: str, now: datetime) -> None:
    """Logout: the session id is refused from now on, by every gateway; commit."""
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.commit()


def session_account(
    session: Session, session_id: str, staff_id: int, now: datetime
) -> StaffUser | None:
    """The active account signed in with this session id: None when the session is unknown,
    revoked or expired, belongs to another account, or the account is deactivated (one query)."""
    return session.execute(
        select(StaffUser)
        .join(StaffSession, StaffSession.staff_id == StaffUser.id)
        .where(
            StaffSession.id == session_id,
            StaffSession.staff_id == staff_id,
            StaffSession.revoked_at.is_(None),
            StaffSession.expires_at > now,
            StaffUser.active.is_(True),
        )
    ).scalar_one_or_none()


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
