"""Admin transcripts (search, CSV, masking), ticket status flow and canned replies, through the
staff pages on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from html import unescape

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.conversations import Conversation, Message
from bot.db.engine import session_factory
from bot.db.handoffs import Ticket
from bot.db.staff import CannedReply
from tests.support.staff_login import logged_in

PHONE, ID_CARD = "13812345678", "33020319900101123X"
PHONE_MASKED, ID_MASKED = "138****5678", "330203********123X"


@pytest.fixture()
def transcripts(database_url: str) -> None:
    """Two conversations: one with personal numbers on 2026-11-20 (Beijing), one a day later."""
    at = datetime(2026, 11, 20, 1, 0)  # 09:00 Beijing time
    late = datetime(2026, 11, 20, 17, 30)  # 2026-11-21 01:30 Beijing time
    with session_factory(database_url)() as db:
        db.add_all([Conversation(id="conv-a", created_at=at, last_message_at=at)])
        db.add(Conversation(id="conv-b", channel="wechat", created_at=late, last_message_at=late))
        db.flush()
        db.add_all(
            [
                Message(conversation_id="conv-a", role="user", created_at=at,
                        text=f"商标注册要带什么？我的电话{PHONE}，身份证{ID_CARD}"),
                Message(conversation_id="conv-a", role="bot", created_at=at,
                        text="请携带营业执照复印件，到商标受理窗口办理。"),
                Message(conversation_id="conv-a", role="staff", created_at=at,
                        text=f"已记下您的电话 {PHONE}，稍后回电。"),
                Message(conversation_id="conv-a", role="user", created_at=at,
                        text="=HYPERLINK(\"http://evil.example\") 100%满意"),
                Message(conversation_id="conv-b", role="user", created_at=late,
                        text="专利预审怎么申请"),
            ]
        )  # fmt: skip
        db.commit()


def rows_of(html: str) -> list[list[str]]:
    """The transcript table's rows as lists of cell texts."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


async def test_transcript_search_shows_masked_messages_with_roles(
    client: TestClient, admin: int, transcripts: None
) -> None:
    await logged_in(client, "lihua")
    html = await (await client.get("/staff/admin/transcripts", params={"q": "电话"})).text()
    assert PHONE not in html and ID_CARD not in html
    rows = rows_of(html)
    assert [(r[2], r[3]) for r in rows] == [  # newest first; time, conversation, role, text
        ("客服", f"已记下您的电话 {PHONE_MASKED}，稍后回电。"),
        ("市民", f"商标注册要带什么？我的电话{PHONE_MASKED}，身份证{ID_MASKED}"),
    ]
    assert rows[0][0] == "2026-11-20 09:00"  # Beijing time

    # One conversation, in order, every role.
    html = await (await client.get("/staff/admin/transcripts?conversation=conv-a")).text()
    assert [r[2] for r in rows_of(html)] == ["市民", "机器人", "客服", "市民"]

    # "%" is a character to find, not a wildcard; a search that matches nothing says so.
    html = await (await client.get("/staff/admin/transcripts", params={"q": "100%"})).text()
    assert [r[3] for r in rows_of(html)] == ['=HYPERLINK("http://evil.example") 100%满意']
    html = await (await client.get("/staff/admin/transcripts", params={"q": "_"})).text()
    assert rows_of(html) == [] and "没有符合条件的消息" in html


async def test_transcript_dates_are_beijing_days(
    client: TestClient, admin: int, transcripts: None
) -> None:
    await logged_in(client, "lihua")

    async def texts(**params: str) -> list[str]:
        response = await client.get("/staff/admin/transcripts", params=params)
        assert response.status == 200
        return [r[3] for r in rows_of(await response.text())]

    # 17:30 UTC on the 20th is 01:30 on the 21st in Beijing.
    assert await texts(**{"from": "2026-11-21", "to": "2026-11-21"}) == ["专利预审怎么申请"]
    assert "专利预审怎么申请" not in await texts(**{"to": "2026-11-20"})
    assert len(await texts(**{"from": "2026-11-20", "to": "2026-11-20"})) == 4
    assert await texts(**{"from": "2026-11-22"}) == []
    bad = await client.get("/staff/admin/transcripts", params={"from": "20.11.2026"})
    assert bad.status == 400 and "日期格式应为 YYYY-MM-DD" in await bad.text()
    reversed_range = await client.get(
        "/staff/admin/transcripts", params={"from": "2026-11-21", "to": "2026-11-20"}
    )
    assert "开始日期不能晚于结束日期" in await reversed_range.text()


async def test_transcript_csv_is_masked_excel_friendly_and_filtered(
    client: TestClient, admin: int, transcripts: None
) -> None:
    await logged_in(client, "lihua")
    response = await client.get("/staff/admin/transcripts.csv")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="transcripts-')
    body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows the Chinese correctly
    text = body.decode("utf-8-sig")
    assert PHONE not in text and ID_CARD not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["会话ID", "渠道", "时间（北京时间）", "角色", "内容"]
    assert rows[1] == [
        "conv-a",
        "webchat",
        "2026-11-20 09:00:00",
        "市民",
        f"商标注册要带什么？我的电话{PHONE_MASKED}，身份证{ID_MASKED}",
    ]
    assert [r[3] for r in rows[1:]] == ["市民", "机器人", "客服", "市民", "市民"]
    # A cell a spreadsheet would run as a formula is defused.
    assert rows[4][4] == '\'=HYPERLINK("http://evil.example") 100%满意'
    assert rows[5][:2] == ["conv-b", "wechat"]

    filtered = await client.get("/staff/admin/transcripts.csv", params={"q": "专利"})
    filtered_rows = list(csv.reader(io.StringIO((await filtered.read()).decode("utf-8-sig"))))
    assert [r[4] for r in filtered_rows[1:]] == ["专利预审怎么申请"]
    bad = await client.get("/staff/admin/transcripts.csv", params={"to": "yesterday"})
    assert bad.status == 400


def add_ticket(database_url: str, phone: str, message: str) -> int:
    with session_factory(database_url)() as db:
        if db.get(Conversation, "conv-t") is None:
            db.add(Conversation(id="conv-t"))
            db.flush()
        ticket = Ticket(conversation_id="conv-t", phone=phone, message=message, status="open")
        db.add(ticket)
        db.commit()
        return ticket.id


async def test_ticket_status_flow(client: TestClient, agent: int, database_url: str) -> None:
    first = add_ticket(database_url, "13900001111", "想咨询专利质押融资，请回电")
    second = add_ticket(database_url, "057487654321", "商标续展的问题")
    token = await logged_in(client, "wangxm")

    page = await (await client.get("/staff/tickets")).text()  # open tickets by default
    assert "13900001111" in page and "想咨询专利质押融资，请回电" in page  # staff call back
    assert "商标续展的问题" in page and 'aria-current="page">\n    待处理' in page

    async def move(ticket_id: int, status: str, back: str = "open") -> str:
        response = await client.post(
            f"/staff/tickets/{ticket_id}",
            data={"csrf_token": token, "status": status, "back": back},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.headers["Location"] == f"/staff/tickets?status={back}"
        return await (await client.get(response.headers["Location"])).text()

    page = await move(first, "called_back")
    assert "工单 #" + str(first) + " 已标记为“已回电”" in page
    assert "想咨询专利质押融资" not in page  # no longer open
    with session_factory(database_url)() as db:
        ticket = db.get(Ticket, first)
        assert (ticket.status, ticket.handled_by) == ("called_back", agent)
        assert ticket.updated_at >= ticket.created_at
    called_back = await (await client.get("/staff/tickets?status=called_back")).text()
    assert "想咨询专利质押融资" in called_back and "王小明" in called_back
    assert "商标续展的问题" not in called_back

    # Backwards or unknown moves are refused with a reason; nothing changes.
    page = await move(first, "open")
    assert "不能改为" in page
    page = await move(first, "deleted")
    assert "不能改为" in page
    page = await move(first, "closed", back="closed")
    assert "已标记为“已关闭”" in page and "想咨询专利质押融资" in page
    page = await move(first, "called_back")
    assert "当前为“已关闭”，不能改为“已回电”" in page
    page = await move(second, "closed", back="all")  # an open ticket may be closed directly
    assert "商标续展的问题" in page and "想咨询专利质押融资" in page
    missing = await move(9999, "closed")
    assert "工单不存在" in missing
    with session_factory(database_url)() as db:
        assert [t.status for t in db.execute(select(Ticket).order_by(Ticket.id)).scalars()] == [
            "closed",
            "closed",
        ]


async def test_canned_replies_add_and_delete(
    client: TestClient, admin: int, database_url: str
) -> None:
    token = await logged_in(client, "lihua")

    async def post(**form: str) -> str:
        response = await client.post(
            "/staff/admin/canned", data={"csrf_token": token, **form}, allow_redirects=False
        )
        assert response.status == 303
        return await (await client.get("/staff/admin/canned")).text()

    page = await post(action="add", title="受理窗口", text="商标受理窗口在市行政服务中心。")
    assert "已添加快捷回复“受理窗口”" in page and "商标受理窗口在市行政服务中心。" in page
    page = await post(action="add", title=" ", text="没有标题")
    assert "标题须为 1–100 个字符" in page and "没有标题" not in page
    page = await post(action="add", title="太长", text="字" * 1001)
    assert "回复内容须为 1–1000 个字符" in page
    with session_factory(database_url)() as db:
        replies = list(db.execute(select(CannedReply)).scalars())
    assert [(r.title, r.text) for r in replies] == [("受理窗口", "商标受理窗口在市行政服务中心。")]
    page = await post(action="delete", id=str(replies[0].id))
    assert "已删除快捷回复" in page and "商标受理窗口在市行政服务中心。" not in page
    page = await post(action="delete", id=str(replies[0].id))
    assert "该快捷回复已不存在" in page
