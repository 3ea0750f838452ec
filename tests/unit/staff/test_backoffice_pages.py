"""The back office's console pages on SQLite and PostgreSQL: leads (ownership, phone masking,
history, overdue on working days, exports), ratings with 满意率, follow-ups, the calendar."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from html import unescape

from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from bot.db.conversations import Conversation
from bot.db.engine import session_factory
from bot.db.leads import store_lead
from bot.db.models import ConsultationRequest
from bot.db.ratings import FollowUp, offer_bot_rating, save_bot_rating
from bot.db.staff import StaffUser
from bot.domain.workdays import WorkCalendar, known_years
from bot.staff.calendar_pages import first_missing_year
from bot.staff.pages import BEIJING
from tests.support.staff_login import add_account, logged_in

PHONE, MASKED = "13912345678", "139****5678"


def add_lead(database_url: str, conversation: str | None = None, **values: object) -> int:
    with session_factory(database_url)() as db:
        if conversation is not None:
            db.add(Conversation(id=conversation))
            db.commit()
        lead = store_lead(
            db, company="宁波甬江科技有限公司", contact_name="陈先生", phone=PHONE,
            products="专利执行保险", conversation_id=conversation,
        )  # fmt: skip
        for name, value in values.items():
            setattr(lead, name, value)
        db.commit()
        return lead.id


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def post(client: TestClient, path: str, csrf: str, **form: str):
    return await client.post(path, data={"csrf_token": csrf, **form}, allow_redirects=False)


async def test_an_agent_sees_the_phone_only_on_a_lead_they_own_and_cannot_open_anothers(
    client: TestClient, database_url: str, agent: int
) -> None:
    mine = add_lead(database_url, "conv-lead-1")
    theirs = add_lead(database_url)
    add_account(database_url, "zhaol", "agent", "赵磊")
    csrf = await logged_in(client, "wangxm")
    page = text_of(await (await client.get("/staff/leads")).text())
    assert PHONE not in page and page.count(MASKED) == 2  # nobody owns them yet

    assert (await post(client, f"/staff/leads/{mine}", csrf, action="claim")).status == 303
    detail = text_of(await (await client.get(f"/staff/leads/{mine}")).text())
    assert PHONE in detail and "王小明 认领" in detail
    moved = await post(client, f"/staff/leads/{mine}", csrf, action="status",
                       status="contacted", note="已电话联系，下周上门")  # fmt: skip
    assert moved.status == 303
    closing = await post(client, f"/staff/leads/{mine}", csrf, action="status", status="closed")
    assert closing.status == 303  # refused: closing needs an outcome
    detail = text_of(await (await client.get(f"/staff/leads/{mine}")).text())
    assert "办结时请填写处理结果" in detail
    assert "王小明 标记为“已联系”：已电话联系，下周上门" in detail
    with session_factory(database_url)() as db:
        lead = db.get(ConsultationRequest, mine)
        assert (lead.status, lead.owner_id) == ("contacted", agent)
        assert lead.contacted_at is not None and lead.closed_at is None

    # Another agent: the list masks the number, the lead itself is closed to them.
    other = await client.post("/staff/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert other.status == 303
    csrf = await logged_in(client, "zhaol")
    page = text_of(await (await client.get("/staff/leads")).text())
    assert PHONE not in page and "王小明" in page
    assert (await client.get(f"/staff/leads/{mine}")).status == 403
    refused = await post(client, f"/staff/leads/{mine}", csrf, action="status", status="closed",
                         note="x")  # fmt: skip
    assert refused.status == 403
    assert (await client.get(f"/staff/leads/{theirs}")).status == 200  # unowned: may claim it


async def test_an_admin_assigns_an_open_lead_to_an_active_account_only(
    client: TestClient, database_url: str, admin: int, agent: int
) -> None:
    lead = add_lead(database_url)
    closed = add_lead(database_url, status="closed")
    gone = add_account(database_url, "zhaol", "agent", "赵磊")
    with session_factory(database_url)() as db:
        db.get(StaffUser, gone).active = False
        db.commit()
    csrf = await logged_in(client, "lihua")
    path = f"/staff/leads/{lead}"
    for owner in (str(gone), "999999"):  # deactivated, unknown
        refused = await post(client, path, csrf, action="assign", owner_id=owner)
        assert refused.status == 303
    assert "线索当前状态不能这样修改" in text_of(await (await client.get(path)).text())
    assert (await post(client, path, csrf, action="assign", owner_id=str(agent))).status == 303
    await post(client, f"/staff/leads/{closed}", csrf, action="assign", owner_id=str(agent))
    with session_factory(database_url)() as db:
        assert db.get(ConsultationRequest, lead).owner_id == agent
        assert db.get(ConsultationRequest, closed).owner_id is None


async def test_exports_mask_phone_numbers(
    client: TestClient, database_url: str, admin: int
) -> None:
    add_lead(database_url)
    add_lead(database_url, company='=HYPERLINK("http://evil.example")')
    await logged_in(client, "lihua")
    response = await client.get("/staff/leads.csv")
    assert response.status == 200 and "attachment" in response.headers["Content-Disposition"]
    body = (await response.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][0] == "编号" and len(rows) == 3
    assert all(row[4] == MASKED for row in rows[1:]) and PHONE not in body
    assert rows[1][2].startswith("'=")  # no formula for Excel to run
    response = await client.get("/staff/leads.xlsx")
    book = load_workbook(io.BytesIO(await response.read()))
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    assert cells[0][4] == "电话（已脱敏）" and {r[4] for r in cells[1:]} == {MASKED}
    assert PHONE not in str(cells)


async def test_a_lead_is_overdue_after_two_working_days(
    client: TestClient, database_url: str, admin: int
) -> None:
    # Tuesday 2026-09-29 10:00 Beijing: due 2 working days later, i.e. 10-08 after National Day.
    old = add_lead(database_url, created_at=datetime(2026, 9, 29, 2, 0))
    add_lead(database_url, created_at=datetime.utcnow())
    await logged_in(client, "lihua")
    html = await (await client.get("/staff/leads")).text()
    rows = re.findall(r'<tr class="([^"]*)" data-lead-id="(\d+)">(.*?)</tr>', html, re.S)
    overdue = {int(lead_id) for cls, lead_id, _ in rows if "is-overdue" in cls}
    assert overdue == {old}
    assert "10月8日" in text_of(next(body for _, i, body in rows if int(i) == old))


async def test_a_bad_rating_on_the_eve_of_national_day_is_due_after_the_holiday(
    database_url: str,
) -> None:
    add_lead(database_url, "conv-rated")
    with session_factory(database_url)() as db:
        assert offer_bot_rating(db, "conv-rated", "thank") is not None
        assert offer_bot_rating(db, "conv-rated", "goodbye") is None  # once per conversation
        refused = save_bot_rating(
            db, "conv-rated", 1, "没解决", "ask_ip_insurance", date(2026, 9, 30), WorkCalendar(), 5
        )
        assert refused is None
        follow_up = db.execute(select(FollowUp)).scalar_one()
        assert follow_up.due_on == date(2026, 10, 13)
        assert follow_up.phone == PHONE  # the number left with the lead, to call back


def rated(database_url: str, conversation: str, score: int, comment: str = "") -> None:
    with session_factory(database_url)() as db:
        db.add(Conversation(id=conversation, channel="wechat"))
        db.commit()
        offer_bot_rating(db, conversation, "thank")
        save_bot_rating(db, conversation, score, comment, "ask_ip_insurance", date.today(),
                        WorkCalendar(), 5)  # fmt: skip


async def test_ratings_page_and_the_follow_up_loop(
    client: TestClient, database_url: str, admin: int, agent: int
) -> None:
    rated(database_url, "conv-good", 5)
    rated(database_url, "conv-bad", 2, "等了很久没人回")
    csrf = await logged_in(client, "lihua")
    page = text_of(await (await client.get("/staff/admin/ratings")).text())
    assert "50.0%" in page and "等了很久没人回" in page and "待回访" in page
    assert "知识产权保险" in page and "微信" in page
    with session_factory(database_url)() as db:
        follow_up_id = db.execute(select(FollowUp.id)).scalar_one()
    path = f"/staff/followups/{follow_up_id}"
    assigned = await post(client, path, csrf, action="assign", assignee_id=str(agent))
    assert assigned.status == 303
    await client.post("/staff/logout", data={"csrf_token": csrf})

    csrf = await logged_in(client, "wangxm")
    page = text_of(await (await client.get("/staff/followups")).text())
    assert "等了很久没人回" in page and "未留电话" in page
    missing = await post(client, path, csrf, action="close", contact_outcome="no_phone")
    assert missing.status == 303  # the fix is required
    closed = await post(client, path, csrf, action="close", contact_outcome="no_phone",
                        fix_note="增加了值班人员")  # fmt: skip
    assert closed.status == 303
    with session_factory(database_url)() as db:
        follow_up = db.get(FollowUp, follow_up_id)
        assert (follow_up.status, follow_up.closed_by) == ("closed", agent)
        assert follow_up.contact_outcome == "no_phone" and follow_up.fix_note == "增加了值班人员"
    assert (await client.get("/staff/admin/ratings")).status == 403  # admins only


async def test_calendar_page_sets_and_removes_a_local_closure(
    client: TestClient, database_url: str, admin: int
) -> None:
    csrf = await logged_in(client, "lihua")
    page = text_of(await (await client.get("/staff/admin/calendar")).text())
    missing = first_missing_year(datetime.now(BEIJING).date(), known_years()[1])
    if missing is not None:
        assert f"{missing} 年的放假和调休安排公布后" in page
    new_year = f"{known_years()[1] + 1}-01-01"  # a day the package does not know
    added = await post(client, "/staff/admin/calendar", csrf, action="set", day=new_year,
                       kind="closed", note="元旦")  # fmt: skip
    assert added.status == 303
    page = text_of(await (await client.get("/staff/admin/calendar")).text())
    assert new_year in page and "闭馆" in page
    bad = await post(client, "/staff/admin/calendar", csrf, action="set", day="2027-13-01",
                     kind="closed")  # fmt: skip
    assert bad.status == 303
    assert "日期格式应为" in text_of(await (await client.get("/staff/admin/calendar")).text())
    await post(client, "/staff/admin/calendar", csrf, action="delete", day=new_year)
    assert "没有登记的日期" in text_of(await (await client.get("/staff/admin/calendar")).text())


def test_the_calendar_warns_about_this_year_or_the_next_when_the_package_stops_short() -> None:
    assert first_missing_year(date(2026, 12, 1), 2026) == 2027
    assert first_missing_year(date(2027, 1, 4), 2026) == 2027  # not 2028: this year is unknown
    assert first_missing_year(date(2027, 6, 1), 2027) == 2028
    assert first_missing_year(date(2026, 12, 1), 2027) is None


async def test_lead_filters_by_product_owner_and_status(
    client: TestClient, database_url: str, admin: int, agent: int
) -> None:
    owned = add_lead(database_url, products="专利执行保险；地理标志保险", owner_id=agent)
    add_lead(database_url, products="海外侵权责任保险", status="closed")
    await logged_in(client, "lihua")

    def ids(html: str) -> set[int]:
        return {int(i) for i in re.findall(r'data-lead-id="(\d+)"', html)}

    by_product = await (await client.get("/staff/leads?product=地理标志保险")).text()
    assert ids(by_product) == {owned}
    by_owner = await (await client.get(f"/staff/leads?owner={agent}")).text()
    assert ids(by_owner) == {owned}
    nobody = await (await client.get("/staff/leads?owner=none&status=closed")).text()
    assert len(ids(nobody)) == 1 and owned not in ids(nobody)
    bad = await client.get("/staff/leads?from=2026-12-02&to=2026-12-01")
    assert bad.status == 400 and "开始日期不能晚于结束日期" in await bad.text()
