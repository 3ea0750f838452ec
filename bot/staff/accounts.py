"""Staff accounts: creation, password login with lock-out, listing.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile).
Login answers the same text for an unknown user and a wrong password, and spends the same time on
both (a dummy hash is verified), so usernames cannot be probed. Five wrong passwords in a row lock
the account for 15 minutes; a locked account is refused even with the right password, with that
same text (a lock-out must not tell which usernames exist). Each attempt is counted in the
database *before* its password is verified (one conditional UPDATE), so a burst of concurrent
guesses gets at most five verifications.

argon2 (64 MiB, 3 passes) runs only on HASH_POOL, a small executor of its own: a flood of logins
queues there instead of taking the default thread pool that every chat database call needs.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from bot.db import staff as db
from bot.db.conversations import utcnow
from bot.db.staff import ROLES, StaffUser
from bot.staff.throttle import HashPool

# argon2-cffi's defaults are argon2id; tests may swap in a cheaper hasher (parameters only).
HASHER = PasswordHasher()
MAX_FAILED_LOGINS = 5
LOCK_DURATION = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 accepts more; a limit keeps a megabyte "password" out
USERNAME_RULE = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
MAX_DISPLAY_NAME_LENGTH = 32
# argon2 runs here and nowhere else (two at a time: 128 MiB at most; a flood waits in its queue).
HASH_POOL = HashPool(ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2"))

# Also the answer for a locked account: the same for every refusal before the password is known.
BAD_CREDENTIALS = "用户名或密码错误（连续输错 5 次将锁定 15 分钟）"
INACTIVE = "账号已停用，请联系管理员"
ROLE_LABELS = {"agent": "客服", "admin": "管理员", "editor": "内容编辑"}


class AccountError(ValueError):
    """A request to create or change an account was refused; the text says why (Chinese)."""


class LoginRefused(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符")
    if not password.strip():
        raise AccountError("密码不能全是空格")


def create_account(
    session: Session,
    username: str,
    display_name: str,
    password: str,
    role: str = "agent",
    hasher: PasswordHasher | None = None,
) -> StaffUser:
    """Create and commit an account. Usernames are case-insensitive (stored lower case)."""
    username = normalise_username(username)
    if not USERNAME_RULE.fullmatch(username):
        raise AccountError(
            "用户名须为 3–32 位小写字母、数字或 _ . -，并以字母或数字开头",
        )
    display_name = display_name.strip()
    if not display_name or len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        raise AccountError(f"显示名须为 1–{MAX_DISPLAY_NAME_LENGTH} 个字符")
    if role not in ROLES:
        raise AccountError("角色只能是 agent（客服）、admin（管理员）或 editor（内容编辑）")
    check_password_rules(password)
    if find_by_username(session, username) is not None:
        raise AccountError(f"用户名 {username} 已存在")
    return db.add_staff(session, username, display_name, (hasher or HASHER).hash(password), role)


def find_by_username(session: Session, username: str) -> StaffUser | None:
    return db.staff_by_username(session, normalise_username(username))


def list_accounts(session: Session) -> list[StaffUser]:
    """Every account (agents, admins, editors), active first, then by username."""
    return db.all_staff(session)


def active_account(session: Session, staff_id: int) -> StaffUser | None:
    account = db.find_staff(session, staff_id)
    return account if account is not None and account.active else None


@dataclass
class _Dummy:
    """A hash to verify against for unknown usernames, made once per hasher configuration."""

    parameters: tuple[int, int, int, object] | None = None
    hash: str = ""


_dummy = _Dummy()


def _dummy_hash(hasher: PasswordHasher) -> str:
    parameters = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.type)
    if _dummy.parameters != parameters:
        _dummy.hash = hasher.hash("not a real password, only for equal timing")
        _dummy.parameters = parameters
    return _dummy.hash


@dataclass(frozen=True)
class LoginAttempt:
    """What begin_login found: the account's hash to verify the password against, or None for an
    unknown or locked name (then a dummy hash is verified, so every refusal costs the same)."""

    account_id: int | None
    password_hash: str | None


def begin_login(
    session: Session,
    username: str,
    password: str,
    now: datetime | None = None,
) -> LoginAttempt:
    """Find the account and count this attempt (atomically, before verifying). Fast: no hashing."""
    now = now or utcnow()
    account = find_by_username(session, username) if len(password) <= MAX_PASSWORD_LENGTH else None
    if account is None or not db.reserve_login_attempt(
        session, account.id, MAX_FAILED_LOGINS, now, now + LOCK_DURATION
    ):
        return LoginAttempt(None, None)
    return LoginAttempt(account.id, account.password_hash)


def finish_login(
    session: Session,
    attempt: LoginAttempt,
    verified: bool,
    password: str,
    hasher: PasswordHasher | None = None,
) -> StaffUser:
    """The account when `verified` (the count and any lock cleared), else LoginRefused. A wrong
    password was counted by begin_login already."""
    hasher = hasher or HASHER
    account = db.find_staff(session, attempt.account_id) if attempt.account_id else None
    if account is None or not verified:
        raise LoginRefused(BAD_CREDENTIALS)
    rehashed = None
    if hasher.check_needs_rehash(account.password_hash):  # the parameters were raised since
        rehashed = hasher.hash(password)
    db.reset_logins(session, account, rehashed)
    if not account.active:  # said only to someone who knows the password
        raise LoginRefused(INACTIVE)
    return account


def authenticate(
    session: Session,
    username: str,
    password: str,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> StaffUser:
    """The account for this username and password, or LoginRefused with the text to show.

    Blocking, hashing in the calling thread (the command line, tests); the gateway uses
    begin_login, HASH_POOL and finish_login instead (bot/staff/pages.py).
    """
    hasher = hasher or HASHER
    attempt = begin_login(session, username, password, now)
    return finish_login(session, attempt, _check(hasher, attempt, password), password, hasher)


async def verify_password(attempt: LoginAttempt, password: str) -> bool:
    """Verify on HASH_POOL (never the default thread pool); False for a dummy attempt."""
    return await HASH_POOL.run(_check, HASHER, attempt, password)


def _check(hasher: PasswordHasher, attempt: LoginAttempt, password: str) -> bool:
    if attempt.password_hash is None:
        _verify(hasher, _dummy_hash(hasher), password)
        return False
    return _verify(hasher, attempt.password_hash, password)


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(
    session: Session, account: StaffUser, password: str, hasher: PasswordHasher | None = None
) -> None:
    check_password_rules(password)
    db.reset_logins(session, account, (hasher or HASHER).hash(password))
