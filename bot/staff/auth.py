"""Who is signed in to the staff console, the /staff gate, and CSRF tokens for its forms.

The staff session lives in the gateway's encrypted session cookie (key "staff_id", with the login
time and a random session id). The cookie alone is not trusted: the session id must be a row of
`staff_sessions` (bot/db/staff.py) that is not revoked or expired, and the account must be active;
both are read on every request, in one query (a deactivated account loses access at once). A
session expires after STAFF_SESSION_MAX_AGE; logout revokes its row, so a copy of the cookie taken
before logout is refused by every gateway, also after a restart.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import Session, get_session, new_session
from sqlalchemy.orm import Session as DbSession

from bot.db.conversations import utcnow
from bot.db.runner import run_db
from bot.db.staff import ADMIN, EDITOR, add_staff_session, revoke_staff_session, session_account
from bot.settings import Settings
from bot.web.keys import SETTINGS

SESSION_STAFF_ID = "staff_id"
SESSION_LOGIN_AT = "staff_login_at"
SESSION_ID = "staff_sid"
SESSION_CSRF = "csrf_token"
CSRF_FIELD = "csrf_token"
STAFF_SESSION_MAX_AGE = 12 * 3600  # one working day; then sign in again
LOGIN_PATH = "/staff/login"
KNOWLEDGE_PATH = "/staff/knowledge"
# Who may read and change the knowledge base (admins can do everything editors can).
KNOWLEDGE_ROLES = frozenset({ADMIN, EDITOR})
_REQUEST_IDENTITY = "staff_identity"
_UNSET = object()


# Called with the session id at logout (the live console closes that session's sockets at once).
SessionEndedHook = Callable[[str], Awaitable[None]]
SESSION_ENDED_HOOKS = web.AppKey("staff_session_ended_hooks", list[SessionEndedHook])


@dataclass(frozen=True)
class StaffIdentity:
    id: int
    username: str
    display_name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_editor(self) -> bool:
        return self.role == EDITOR

    @property
    def can_edit_knowledge(self) -> bool:
        return self.role in KNOWLEDGE_ROLES


async def current_staff(request: web.Request) -> StaffIdentity | None:
    """The signed-in, still active staff member of this request, or None."""
    cached = request.get(_REQUEST_IDENTITY, _UNSET)
    if cached is not _UNSET:
        return cached
    identity = await _load_identity(request)
    request[_REQUEST_IDENTITY] = identity
    return identity


async def _load_identity(request: web.Request) -> StaffIdentity | None:
    session = await get_session(request)
    staff_id = session.get(SESSION_STAFF_ID)
    login_at = session.get(SESSION_LOGIN_AT)
    sid = session.get(SESSION_ID)
    if not isinstance(staff_id, int) or not isinstance(login_at, (int, float)) or not sid:
        return None
    if time.time() - login_at > STAFF_SESSION_MAX_AGE:
        return None
    return await session_identity(request.config_dict[SETTINGS], str(sid), staff_id)


async def session_identity(
    settings: Settings, sid: str, staff_id: int, now: datetime | None = None
) -> StaffIdentity | None:
    """Who is signed in with this session id: None when the session was revoked (logout), has
    expired, or the account is deactivated. One query; the live console calls it per action."""
    at = now or utcnow()

    def load(db: DbSession) -> StaffIdentity | None:
        account = session_account(db, sid, staff_id, at)
        if account is None:
            return None
        return StaffIdentity(account.id, account.username, account.display_name, account.role)

    return await run_db(settings.database_url, load, settings.db_timeout)


async def start_staff_session(request: web.Request, identity: StaffIdentity) -> Session:
    """Sign in: a brand-new session (nothing from before login survives: no fixation), stored in
    the database so that every gateway can check it."""
    sid = secrets.token_urlsafe(24)
    now = utcnow()
    settings = request.config_dict[SETTINGS]
    await run_db(
        settings.database_url,
        lambda db: add_staff_session(
            db, sid, identity.id, now, now + timedelta(seconds=STAFF_SESSION_MAX_AGE)
        ),
        settings.db_timeout,
    )
    session = await new_session(request)
    session[SESSION_STAFF_ID] = identity.id
    session[SESSION_LOGIN_AT] = int(time.time())
    session[SESSION_ID] = sid
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    request[_REQUEST_IDENTITY] = identity
    return session


async def end_staff_session(request: web.Request) -> None:
    """Logout: the session's row is revoked (for every gateway) and its live sockets close."""
    session = await get_session(request)
    sid = session.get(SESSION_ID)
    session.invalidate()
    request[_REQUEST_IDENTITY] = None
    if not sid:
        return
    settings = request.config_dict[SETTINGS]
    now = utcnow()
    await run_db(
        settings.database_url,
        lambda db: revoke_staff_session(db, str(sid), now),
        settings.db_timeout,
    )
    for hook in request.config_dict.get(SESSION_ENDED_HOOKS, []):
        await hook(str(sid))


def csrf_token(session: Session) -> str:
    """This session's CSRF token (created on first use); put it in every form's csrf_token field."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def _origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not sent (same-origin GET-less clients, tools): SameSite covers it
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:  # e.g. "http://[": not an origin a browser sends
        return False
    allowed = {f"{request.scheme}://{request.host}", *request.config_dict[SETTINGS].allowed_origins}
    return f"{parts.scheme}://{parts.netloc}" in allowed


async def check_csrf(request: web.Request, form: Mapping[str, Any]) -> None:
    """403 for a form whose csrf_token is missing or not this session's, or a foreign Origin."""
    session = await get_session(request)
    expected = session.get(SESSION_CSRF)
    given = form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not expected
        or not hmac.compare_digest(expected.encode(), given.encode())
        or not _origin_allowed(request)
    ):
        raise web.HTTPForbidden(text="请求已过期或来源无效，请刷新页面后重试。")


def _under_staff(path: str) -> bool:
    return path == "/staff" or path.startswith("/staff/")


def _is_api(path: str) -> bool:
    return path == "/staff/ws" or path.startswith("/staff/api/") or path.endswith(".csv")


def _editor_may_open(path: str) -> bool:
    """Content editors work only on the knowledge base (and may sign out)."""
    return path in (KNOWLEDGE_PATH, "/staff/logout", LOGIN_PATH) or path.startswith(
        KNOWLEDGE_PATH + "/"
    )


def _is_login(request: web.Request) -> bool:
    route = request.match_info.route
    resource = route.resource
    return (
        request.path == LOGIN_PATH
        and resource is not None
        and resource.canonical == LOGIN_PATH
        and request.method in ("GET", "HEAD", "POST")
    )


@web.middleware
async def staff_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No staff session, no /staff: pages redirect to the login, sockets and data answer 401.

    Content editors get only the knowledge pages: "/staff" sends them there, anything else is 403.
    Must run inside the session middleware (add it after aiohttp_session.setup).
    Both the raw path and the matched route's path are checked, so a path spelled differently
    from the route it reaches cannot slip past.
    """
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    if not (_under_staff(request.path) or _under_staff(canonical)) or _is_login(request):
        return await handler(request)
    identity = await current_staff(request)
    if identity is None:
        if _is_api(request.path) or _is_api(canonical):
            raise web.HTTPUnauthorized(text="请先登录。")
        raise web.HTTPFound(LOGIN_PATH)
    if identity.is_editor and not (
        _editor_may_open(request.path) and (not canonical or _editor_may_open(canonical))
    ):
        # Not the live queue (an editor online is no agent), tickets or admin pages.
        if request.path == "/staff":
            raise web.HTTPFound(KNOWLEDGE_PATH)
        raise web.HTTPForbidden(text="内容编辑只能使用知识库页面。")
    return await handler(request)


async def require_admin(request: web.Request) -> StaffIdentity:
    """The signed-in admin; 403 for an agent (the gate has already refused everyone else)."""
    identity = await current_staff(request)
    if identity is None:
        raise web.HTTPUnauthorized(text="请先登录。")
    if not identity.is_admin:
        raise web.HTTPForbidden(text="仅管理员可以访问此页面。")
    return identity


async def require_roles(
    request: web.Request, roles: Collection[str], refusal: str = "您的账号没有访问此页面的权限。"
) -> StaffIdentity:
    """The signed-in staff member if their role is one of `roles`; 403 (`refusal`) otherwise."""
    identity = await current_staff(request)
    if identity is None:
        raise web.HTTPUnauthorized(text="请先登录。")
    if identity.role not in roles:
        raise web.HTTPForbidden(text=refusal)
    return identity


async def require_knowledge_editor(request: web.Request) -> StaffIdentity:
    """An admin or a content editor; 403 for agents."""
    return await require_roles(request, KNOWLEDGE_ROLES, "仅管理员和内容编辑可以访问知识库。")


async def require_staff(request: web.Request) -> StaffIdentity:
    identity = await current_staff(request)
    if identity is None:
        raise web.HTTPUnauthorized(text="请先登录。")
    return identity


def setup_staff_auth(app: web.Application) -> None:
    """Install the /staff gate. Call after aiohttp_session.setup (it needs the session)."""
    app[SESSION_ENDED_HOOKS] = []
    app.middlewares.append(staff_gate)
