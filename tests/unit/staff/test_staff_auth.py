"""Staff accounts, login, lock-out, the /staff gate, CSRF and sessions, on SQLite and PostgreSQL.

The gateway app comes from bot.app.create_app (with the staff pages added here while the factory
does not yet install them), driven through aiohttp's test client.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher, Type
from sqlalchemy import select, update

from bot.__main__ import main as cli
from bot.db.conversations import Conversation, utcnow
from bot.db.engine import session_factory
from bot.db.handoffs import Ticket
from bot.db.staff import CannedReply, StaffUser
from bot.staff import accounts
from bot.staff.auth import STAFF_SESSION_MAX_AGE
from tests.support.staff_login import (
    COOKIE,
    CSRF_FIELD,
    FAST_HASHER,
    PASSWORD,
    PRODUCT_HASHER,
    csrf_of,
    logged_in,
    login,
)


def session_cookie(client: TestClient) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == COOKIE:
            return cookie.value
    return None


def use_only_cookie(client: TestClient, value: str) -> None:
    """Forget this client's cookies and present `value` as the session cookie instead."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: value}, client.make_url("/"))


def staff_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) for every route under /staff, dynamic parts filled in."""
    found = []
    for resource in app.router.resources():
        canonical = resource.canonical
        if canonical != "/staff" and not canonical.startswith("/staff/"):
            continue
        path = re.sub(r"\{[^}]+\}", "1", canonical)
        for route in resource:
            found.append((route.method, path))
    return found


# --- the gate -----------------------------------------------------------------------------------


async def test_nothing_under_staff_answers_without_login(
    client: TestClient, staff_app: web.Application
) -> None:
    routes = staff_routes(staff_app)
    paths = {path for _, path in routes}
    assert {"/staff", "/staff/tickets", "/staff/admin/transcripts.csv"} <= paths
    checked = 0
    for method, path in routes:
        response = await client.request(method, path, allow_redirects=False)
        if path == "/staff/login":
            # The only open door: the form (GET) and a sign-in (POST, refused without a token).
            assert response.status == (403 if method == "POST" else 200), (method, path)
            continue
        api = path == "/staff/ws" or path.startswith("/staff/api/") or path.endswith(".csv")
        if api:
            assert response.status == 401, (method, path, response.status)
        else:
            assert response.status == 302, (method, path, response.status)
            assert response.headers["Location"] == "/staff/login"
        checked += 1
    assert checked >= 8
    # Paths without a route are gated too (nothing to learn from a 404 either).
    for path, status in [("/staff/nope", 302), ("/staff/api/queue", 401), ("/staff/x.csv", 401)]:
        response = await client.get(path, allow_redirects=False)
        assert response.status == status, path


async def test_login_page_then_login_opens_the_console(client: TestClient, agent: int) -> None:
    page = await client.get("/staff/login")
    html = await page.text()
    assert "客服工作台登录" in html and 'name="password"' in html
    assert "<script>" not in html  # the CSP forbids inline scripts
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]

    response = await login(client, "WangXM")  # usernames are case-insensitive
    assert response.status == 303
    console = await client.get("/staff", allow_redirects=False)
    assert console.status == 200
    assert "王小明" in await console.text()
    assert console.headers["Cache-Control"] == "no-store"
    # Signed in, the login page sends you to the console.
    again = await client.get("/staff/login", allow_redirects=False)
    assert again.status == 302 and again.headers["Location"] == "/staff"


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    client: TestClient, agent: int
) -> None:
    wrong = await login(client, "wangxm", "not the password")
    unknown = await login(client, "nobody", PASSWORD)
    assert wrong.status == unknown.status == 401
    wrong_html, unknown_html = await wrong.text(), await unknown.text()
    assert "用户名或密码错误" in wrong_html and "用户名或密码错误" in unknown_html
    assert wrong_html.replace("wangxm", "nobody") == unknown_html  # nothing else differs
    assert (await client.get("/staff", allow_redirects=False)).status == 302


async def test_five_wrong_passwords_lock_the_account_for_15_minutes(
    client: TestClient, agent: int, database_url: str
) -> None:
    for attempt in range(1, 6):
        response = await login(client, "wangxm", f"wrong password {attempt}")
        assert "用户名或密码错误" in await response.text(), attempt
    # Locked: the right password is refused too, with the text an unknown name gets (a lock-out
    # must not tell which names exist; the text says that five wrong passwords lock).
    right = await login(client, "wangxm", PASSWORD)
    assert right.status == 401
    assert accounts.BAD_CREDENTIALS in await right.text()
    assert (await client.get("/staff", allow_redirects=False)).status == 302
    with session_factory(database_url)() as db:
        account = db.get(StaffUser, agent)
        remaining = account.locked_until - utcnow()
        assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)
        # Seven minutes later (moved back in the database, not slept): still locked.
        account.locked_until = utcnow() + timedelta(minutes=7, seconds=30)
        db.commit()
    assert (await login(client, "wangxm", PASSWORD)).status == 401
    with session_factory(database_url)() as db:
        db.get(StaffUser, agent).locked_until = utcnow() - timedelta(seconds=1)
        db.commit()
    assert (await login(client, "wangxm", PASSWORD)).status == 303
    with session_factory(database_url)() as db:
        account = db.get(StaffUser, agent)
        assert account.failed_logins == 0 and account.locked_until is None


def test_a_success_resets_the_count_of_wrong_passwords(database_url: str, agent: int) -> None:
    with session_factory(database_url)() as db:
        for _ in range(4):
            with pytest.raises(accounts.LoginRefused, match="用户名或密码错误"):
                accounts.authenticate(db, "wangxm", "wrong password")
        assert db.get(StaffUser, agent).failed_logins == 4
        assert accounts.authenticate(db, "wangxm", PASSWORD).id == agent
        assert db.get(StaffUser, agent).failed_logins == 0
        for _ in range(4):
            with pytest.raises(accounts.LoginRefused, match="用户名或密码错误"):
                accounts.authenticate(db, "wangxm", "wrong password")
        assert accounts.authenticate(db, "wangxm", PASSWORD).id == agent  # never 5 in a row


def test_unknown_users_are_never_locked_and_inactive_accounts_are_refused(
    database_url: str, agent: int
) -> None:
    with session_factory(database_url)() as db:
        for _ in range(7):
            with pytest.raises(accounts.LoginRefused) as refused:
                accounts.authenticate(db, "ghost", PASSWORD)
            assert refused.value.text == accounts.BAD_CREDENTIALS
        db.get(StaffUser, agent).active = False
        db.commit()
        with pytest.raises(accounts.LoginRefused, match="用户名或密码错误"):
            accounts.authenticate(db, "wangxm", "wrong password")
        with pytest.raises(accounts.LoginRefused, match="账号已停用"):
            accounts.authenticate(db, "wangxm", PASSWORD)


# --- CSRF ---------------------------------------------------------------------------------------


async def test_login_without_or_with_a_forged_token_is_refused(
    client: TestClient, agent: int
) -> None:
    await csrf_of(client)  # the browser has a session with a token
    form = {"username": "wangxm", "password": PASSWORD}
    missing = await client.post("/staff/login", data=form, allow_redirects=False)
    forged = await client.post(
        "/staff/login", data={**form, "csrf_token": "x" * 43}, allow_redirects=False
    )
    assert missing.status == forged.status == 403
    assert "页面已过期" in await forged.text()  # the form again, with a fresh token
    assert CSRF_FIELD.search(await forged.text())
    assert (await client.get("/staff", allow_redirects=False)).status == 302


async def test_forms_refuse_missing_forged_and_cross_site_tokens(
    client: TestClient, admin: int, database_url: str
) -> None:
    token = await logged_in(client, "lihua")
    with session_factory(database_url)() as db:
        db.add(Conversation(id="c-csrf"))
        db.flush()
        ticket = Ticket(conversation_id="c-csrf", phone="13800000000", message="请回电")
        db.add(ticket)
        db.commit()
        ticket_id = ticket.id
    posts = [
        ("/staff/logout", {}),
        (f"/staff/tickets/{ticket_id}", {"status": "called_back"}),
        ("/staff/admin/canned", {"action": "add", "title": "问候", "text": "您好"}),
    ]
    for path, form in posts:
        for bad in ({}, {"csrf_token": ""}, {"csrf_token": token[:-2] + "zz"}):
            response = await client.post(path, data={**form, **bad}, allow_redirects=False)
            assert response.status == 403, (path, bad)
        # The right token from another site's page is refused too.
        response = await client.post(
            path,
            data={**form, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert response.status == 403, path
    with session_factory(database_url)() as db:
        assert db.get(Ticket, ticket_id).status == "open"
        assert db.execute(select(CannedReply)).first() is None
    # Still signed in (logout was refused every time) and the real token works.
    assert (await client.get("/staff", allow_redirects=False)).status == 200
    done = await client.post(
        "/staff/admin/canned",
        data={"action": "add", "title": "问候", "text": "您好", "csrf_token": token},
        allow_redirects=False,
    )
    assert done.status == 303


# --- roles and sessions -------------------------------------------------------------------------


async def test_agents_get_403_on_admin_pages(client: TestClient, agent: int) -> None:
    token = await logged_in(client, "wangxm")
    tickets = await client.get("/staff/tickets")
    assert "会话记录" not in await tickets.text()  # no admin links in an agent's nav
    for method, path in [
        ("GET", "/staff/admin/transcripts"),
        ("GET", "/staff/admin/transcripts.csv"),
        ("GET", "/staff/admin/canned"),
        ("POST", "/staff/admin/canned"),
    ]:
        data = {"csrf_token": token, "action": "add", "title": "t", "text": "x"}
        response = await client.request(method, path, data=data if method == "POST" else None)
        assert response.status == 403, (method, path)
        assert "仅管理员" in await response.text()


async def test_admins_see_admin_pages(client: TestClient, admin: int) -> None:
    await logged_in(client, "lihua")
    for path, heading in [
        ("/staff/admin/transcripts", "会话记录"),
        ("/staff/admin/canned", "快捷回复"),
        ("/staff/tickets", "留言工单"),
    ]:
        response = await client.get(path)
        assert response.status == 200, path
        assert f"<h1>{heading}</h1>" in await response.text()


async def test_login_starts_a_new_session(client: TestClient, agent: int) -> None:
    """Session fixation: what a browser held before login is worth nothing after it."""
    before_token = await csrf_of(client)
    before_cookie = session_cookie(client)
    assert before_cookie
    await logged_in(client, "wangxm")
    after_cookie = session_cookie(client)
    assert after_cookie and after_cookie != before_cookie
    # The pre-login token no longer works in the signed-in session ...
    response = await client.post(
        "/staff/logout", data={"csrf_token": before_token}, allow_redirects=False
    )
    assert response.status == 403
    # ... and the pre-login cookie (which an attacker could have planted) is not signed in.
    use_only_cookie(client, before_cookie)
    assert (await client.get("/staff", allow_redirects=False)).status == 302


async def test_logout_ends_the_session_even_for_a_copied_cookie(
    client: TestClient, agent: int
) -> None:
    token = await logged_in(client, "wangxm")
    copied = session_cookie(client)
    response = await client.post("/staff/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/staff/login"
    assert (await client.get("/staff", allow_redirects=False)).status == 302
    use_only_cookie(client, copied)  # a copy of the cookie taken before logout
    assert (await client.get("/staff/tickets", allow_redirects=False)).status == 302
    assert (await client.get("/staff/admin/transcripts.csv")).status == 401


async def test_deactivated_or_expired_sessions_lose_access_at_once(
    client: TestClient, agent: int, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await logged_in(client, "wangxm")
    assert (await client.get("/staff", allow_redirects=False)).status == 200
    import bot.staff.auth as auth

    now = auth.time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + STAFF_SESSION_MAX_AGE + 1)
    assert (await client.get("/staff", allow_redirects=False)).status == 302
    monkeypatch.undo()
    assert (await client.get("/staff", allow_redirects=False)).status == 200
    with session_factory(database_url)() as db:
        db.execute(update(StaffUser).where(StaffUser.id == agent).values(active=False))
        db.commit()
    assert (await client.get("/staff", allow_redirects=False)).status == 302


# --- accounts and the command line --------------------------------------------------------------


def test_account_rules(database_url: str) -> None:
    with session_factory(database_url)() as db:
        for username, name, password, role, reason in [
            ("ab", "张三", PASSWORD, "agent", "用户名须为"),
            ("zhang san", "张三", PASSWORD, "agent", "用户名须为"),
            ("_zhang", "张三", PASSWORD, "agent", "用户名须为"),
            ("zhangsan", " ", PASSWORD, "agent", "显示名"),
            ("zhangsan", "张三", "short1234", "agent", "至少需要 10 个字符"),
            ("zhangsan", "张三", PASSWORD, "boss", "角色只能是"),
        ]:
            with pytest.raises(accounts.AccountError, match=reason):
                accounts.create_account(db, username, name, password, role, hasher=FAST_HASHER)
        created = accounts.create_account(db, "Zhang.San", " 张三 ", PASSWORD, "admin")
        assert (created.username, created.display_name, created.role) == (
            "zhang.san",
            "张三",
            "admin",
        )
        with pytest.raises(accounts.AccountError, match="已存在"):
            accounts.create_account(db, "ZHANG.SAN", "张三", PASSWORD, "agent")
        assert PASSWORD not in created.password_hash
        assert [a.username for a in accounts.list_accounts(db)] == ["zhang.san"]


def test_hashes_are_argon2id_and_rehashed_when_the_parameters_rise(database_url: str) -> None:
    assert PRODUCT_HASHER.type is Type.ID
    assert PRODUCT_HASHER.memory_cost >= 64 * 1024 and PRODUCT_HASHER.time_cost >= 3
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    with session_factory(database_url)() as db:
        account = accounts.create_account(db, "old.hash", "老账号", PASSWORD, hasher=weak)
        old_hash = account.password_hash
        assert old_hash.startswith("$argon2id$") and "m=512,t=1,p=1" in old_hash
        accounts.authenticate(db, "old.hash", PASSWORD, hasher=weak)
        assert db.get(StaffUser, account.id).password_hash == old_hash  # unchanged parameters
        accounts.authenticate(db, "old.hash", PASSWORD, hasher=FAST_HASHER)
        new_hash = db.get(StaffUser, account.id).password_hash
        assert new_hash != old_hash and "m=1024,t=1,p=1" in new_hash
        assert accounts.authenticate(db, "old.hash", PASSWORD, hasher=FAST_HASHER).id == account.id


def test_cli_adds_and_lists_staff(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli(["staff", "add", "zhaoliu", "--name", "赵六", "--password-stdin"]) == 1
    assert "too short" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        cli(["staff", "add", "zhaoliu", "--name", "赵六", "--role", "admin", "--password-stdin"])
        == 0
    )
    assert "Created admin account zhaoliu (赵六)" in capsys.readouterr().out

    prompts = iter([PASSWORD, PASSWORD + "x"])  # typed twice, differently
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert cli(["staff", "add", "sunqi", "--name", "孙七"]) == 1
    assert "differ" in capsys.readouterr().err

    assert cli(["staff", "list"]) == 0
    listing = capsys.readouterr().out
    assert "zhaoliu\t赵六\tadmin\tactive" in listing
    assert "sunqi" not in listing
    with session_factory(database_url)() as db:
        account = accounts.authenticate(db, "zhaoliu", PASSWORD)
        assert account.password_hash.startswith("$argon2id$")
