"""The console's knowledge-base pages (/staff/knowledge) on the seed knowledge, SQLite and
PostgreSQL: editing with revisions and restore, roles, Excel import/export, 试一试 and the
待复核 ordering, through the real app (bot.app.create_app) and aiohttp's test client."""

from __future__ import annotations

import datetime as dt
import io
import re
from html import unescape
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import select, update

from bot.db import knowledge as kdb
from bot.db.engine import session_factory
from bot.kb.knowledge_file import COLUMNS
from bot.knowledge.live import entry_of
from bot.knowledge.reply import answer_messages
from tests.support.staff_login import add_account, csrf_of, login

KEY = "trademark-fee-online"
NEW_ANSWER = (
    "网上申请商标注册，每个类别官费270元（10个商品或服务以内），"
    "2025年起执行（来源：国家知识产权局）。"
)


@pytest.fixture()
def editor(seeded_database_url: str) -> int:
    return add_account(seeded_database_url, "zhaoli", "editor", "赵丽")


@pytest.fixture()
def seeded_agent(seeded_database_url: str) -> int:
    return add_account(seeded_database_url, "wangxm", "agent", "王小明")


@pytest.fixture()
def seeded_admin(seeded_database_url: str) -> int:
    return add_account(seeded_database_url, "lihua", "admin", "李华")


async def signed_in(client: TestClient, username: str) -> str:
    """Sign in as a knowledge editor or admin; the session's CSRF token."""
    response = await login(client, username)
    assert response.status == 303, await response.text()
    return await csrf_of(client, "/staff/knowledge")


def item_of(database_url: str, key: str) -> kdb.KnowledgeItem:
    with session_factory(database_url)() as db:
        [item] = db.execute(select(kdb.KnowledgeItem).where(kdb.KnowledgeItem.key == key)).scalars()
        return item


def revisions_of(database_url: str, item_id: int) -> list[kdb.KnowledgeRevision]:
    with session_factory(database_url)() as db:
        return kdb.history(db, item_id)


def form_of(item: kdb.KnowledgeItem, token: str, **changes: Any) -> dict[str, str]:
    """The edit form as the page fills it in, with `changes` typed over it."""
    form = {
        "csrf_token": token,
        "question": item.question,
        "topic": item.topic,
        "phrasings": "\n".join(item.phrasings),
        "answer": item.answer,
        "details": item.details or "",
        "holds_for": item.holds_for or "",
        "source_title": item.source_title or "",
        "source_url": item.source_url or "",
        "source_kind": item.source_kind or "",
        "last_verified": item.last_verified.isoformat() if item.last_verified else "",
        "related": "\n".join(item.related),
        "stamp": item.updated_at.isoformat(),
        "do": "save",
    }
    if item.unknown:
        form["unknown"] = "1"
    return {**form, **changes}


def text_of(html: str) -> str:
    """The page's visible text, tags removed, whitespace collapsed."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def cell_text(html: str) -> str:
    """A diff cell's text, without the words only screen readers hear (（删除）, （新增）)."""
    html = re.sub(r'<span class="visually-hidden">.*?</span>', "", html)
    return unescape(re.sub(r"<[^>]+>", "", html))


def preview_bubbles(html: str) -> list[str]:
    preview = html.split('id="preview-title"', 1)[1]
    return [unescape(b) for b in re.findall(r'class="kb-msg__bubble">(.*?)</div>', preview, re.S)]


def list_rows(html: str) -> list[tuple[str, str]]:
    """The knowledge table's rows: (key, the row's text)."""
    table = html.split('class="table kb-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    keys = [re.search(r'class="kb-key">(.*?)<', row) for row in rows]
    return [
        (key.group(1) if key else "", text_of(row)) for key, row in zip(keys, rows, strict=True)
    ]


def flash_of(html: str) -> str:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', html, re.S)
    return unescape(found.group(1)) if found else ""


def cell(value: Any) -> Any:
    """As Excel holds it: lists one entry per line, 是/否."""
    if isinstance(value, list):
        return "\n".join(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def xlsx_of(rows: list[dict[str, Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([cell(row.get(name, "")) for name in COLUMNS])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(token: str, name: str, data: bytes) -> FormData:
    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


def new_row(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "key": key,
        "topic": "general",
        "question": f"测试问题 {key}",
        "phrasings": "测试问法一\n测试问法二",
        "answer": "这是测试答案（来源：测试）。",
        "source_title": "测试来源",
        "source_kind": "official",
        "last_verified": "2026-11-20",
        "unknown": "否",
        "status": "draft",
        **changes,
    }


# --- editing, revisions, restore --------------------------------------------------------------


async def test_an_editor_edits_an_answer_then_restores_the_old_text(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    token = await signed_in(client, "zhaoli")
    item = item_of(seeded_database_url, KEY)
    old_answer = item.answer
    page = await (await client.get(f"/staff/knowledge/{item.id}")).text()
    assert item.question in page and f"<code>{KEY}</code>" in page
    assert preview_bubbles(page)[0] == item.question  # the citizen's own question first
    assert preview_bubbles(page)[1] == old_answer  # then the stored answer, as sent
    with session_factory(seeded_database_url)() as db:
        related = {
            key: entry_of(other)
            for key, other in kdb.items_by_key(db, item.related).items()
            if other.status == kdb.PUBLISHED
        }
    sent = answer_messages(entry_of(item), related)
    assert preview_bubbles(page)[1:] == [m["text"] for m in sent]  # exactly what the bot sends

    response = await client.post(
        f"/staff/knowledge/{item.id}", data=form_of(item, token, answer=NEW_ANSWER)
    )
    page = await response.text()
    assert "已保存。此条目已发布，市民现在看到的就是新内容。" in flash_of(page)
    assert f">{NEW_ANSWER}</textarea>" in page
    assert preview_bubbles(page)[1] == NEW_ANSWER

    assert item_of(seeded_database_url, KEY).answer == NEW_ANSWER
    latest, *older = revisions_of(seeded_database_url, item.id)
    assert (latest.action, latest.changed_by, latest.content["answer"]) == (
        "edited",
        "zhaoli",
        NEW_ANSWER,
    )
    assert older and older[0].content["answer"] == old_answer

    # The history: newest first, who and what, only the changed field, old and new text.
    history = await (await client.get(f"/staff/knowledge/{item.id}/history")).text()
    first_card = history.split('class="card kb-rev', 2)[1]
    assert "修改" in first_card and "赵丽（zhaoli）" in first_card and "当前版本" in first_card
    assert [unescape(h) for h in re.findall(r'<th scope="row">(.*?)</th>', first_card)] == ["答案"]
    [before] = re.findall(r'<td class="kb-diff__old">(.*?)</td>', first_card, re.S)
    [after] = re.findall(r'<td class="kb-diff__new">(.*?)</td>', first_card, re.S)
    assert "<del" in before and "<ins" not in before and "<ins" in after and "<del" not in after
    assert cell_text(before) == old_answer and cell_text(after) == NEW_ANSWER
    assert "初始数据" in history  # the seed's revision

    # Restore the revision before the edit: the old text is back, as a new revision.
    restored = await client.post(
        f"/staff/knowledge/{item.id}/restore", data={"csrf_token": token, "revision": older[0].id}
    )
    page = await restored.text()
    assert "已恢复到所选版本" in flash_of(page) and "当前状态：已发布" in flash_of(page)
    assert preview_bubbles(page)[1] == old_answer
    assert item_of(seeded_database_url, KEY).answer == old_answer
    newest = revisions_of(seeded_database_url, item.id)[0]
    assert (newest.action, newest.changed_by, newest.content["answer"]) == (
        "restored",
        "zhaoli",
        old_answer,
    )
    history = await (await client.get(f"/staff/knowledge/{item.id}/history")).text()
    assert "恢复旧版本" in history.split('class="card kb-rev', 2)[1]


async def test_preview_shows_the_typed_text_without_saving_and_problems_keep_the_form(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    token = await signed_in(client, "zhaoli")
    item = item_of(seeded_database_url, KEY)
    typed = "预览用的答案：还没有保存（来源：测试）。"
    response = await client.post(
        f"/staff/knowledge/{item.id}", data=form_of(item, token, answer=typed, do="preview")
    )
    page = await response.text()
    assert response.status == 200 and preview_bubbles(page)[1] == typed
    assert item_of(seeded_database_url, KEY).answer == item.answer  # nothing saved

    too_long = "长" * 130
    response = await client.post(
        f"/staff/knowledge/{item.id}",
        data=form_of(
            item,
            token,
            answer=too_long,
            phrasings="",
            last_verified="2026-13-01",
            holds_for="年" * 41,  # longer than its database column
        ),
    )
    page = await response.text()
    assert response.status == 400
    text = text_of(page)
    assert "请修改以下 4 处后再保存" in text
    assert "信息时间：超过40字（现在41字）" in text
    assert "答案：answer 超过120字" not in text and "答案：超过120字（现在130字）" in text
    assert "常见问法：至少要有一种问法" in text
    assert "最后核实日期：须为日期" in text
    assert f">{too_long}</textarea>" in page  # what was typed is kept
    assert "已写 130 / 120 字" in text
    assert item_of(seeded_database_url, KEY).answer == item.answer

    # An unverified answer may not carry a figure; related keys must exist.
    response = await client.post(
        f"/staff/knowledge/{item.id}",
        data=form_of(item, token, unknown="1", related="no-such-item"),
    )
    text = text_of(await response.text())
    assert "答案：未核实（unknown）的条目，答案中不能出现数字" in text
    assert "相关问题：没有编号为 no-such-item 的条目" in text


async def test_a_new_item_is_a_draft_then_published_retired_and_back_to_draft(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    token = await signed_in(client, "zhaoli")
    form = {
        "csrf_token": token,
        "key": "test-new-item",
        "topic": "general",
        "question": "测试：知识产权宣传周是哪天？",
        "phrasings": "宣传周哪天\n知识产权宣传周什么时候",
        "answer": "每年4月20日至26日是全国知识产权宣传周（来源：测试）。",
        "source_kind": "official",
        "related": KEY,
        "do": "save",
    }
    page = await (await client.post("/staff/knowledge/new", data=form)).text()
    assert "已新建条目“测试：知识产权宣传周是哪天？”（草稿）" in flash_of(page)
    created = item_of(seeded_database_url, "test-new-item")
    assert (created.status, created.updated_by, created.related) == ("draft", "zhaoli", [KEY])
    assert preview_bubbles(page)[-1] == "您可能还想问："  # the related item's button follows
    chips = re.findall(r'<span class="kb-chip">(.*?)</span>', page)
    assert [unescape(c) for c in chips] == [item_of(seeded_database_url, KEY).question]

    again = await client.post("/staff/knowledge/new", data=form)
    assert again.status == 400
    assert "编号（key）：已被其他条目使用" in text_of(await again.text())

    version = content_version(seeded_database_url)
    for target, done, label in [
        ("published", "已发布，市民现在就能看到这条答案。", "已发布"),
        ("retired", "已下线，市民不会再看到这条答案。", "已下线"),
        ("draft", "已改为草稿，市民不会再看到这条答案。", "草稿"),
    ]:
        page = await (
            await client.post(
                f"/staff/knowledge/{created.id}/status",
                data={"csrf_token": token, "status": target},
            )
        ).text()
        assert done in flash_of(page)
        assert f'发布状态：<span class="badge badge--kb-{target}">{label}</span>' in page
        assert item_of(seeded_database_url, "test-new-item").status == target
    assert content_version(seeded_database_url) == version + 2  # published, then retired
    actions = [r.action for r in revisions_of(seeded_database_url, created.id)]
    assert actions == ["edited", "retired", "published", "created"]
    history = text_of(await (await client.get(f"/staff/knowledge/{created.id}/history")).text())
    assert "改为草稿" in history and "下线" in history and "发布" in history and "新建" in history


async def test_saving_over_a_colleagues_newer_edit_is_stopped_and_keeps_the_typing(
    client: TestClient, seeded_database_url: str, editor: int, seeded_admin: int
) -> None:
    token = await signed_in(client, "zhaoli")
    item = item_of(seeded_database_url, KEY)  # as the editor's page was opened
    theirs = "同事刚改好的答案（来源：测试）。"
    with session_factory(seeded_database_url)() as db:
        kdb.save_item(db, {"key": KEY, "answer": theirs}, "lihua")
        db.commit()
    response = await client.post(
        f"/staff/knowledge/{item.id}", data=form_of(item, token, answer=NEW_ANSWER)
    )
    page = await response.text()
    assert response.status == 409
    assert "保存没有完成：您打开此页后，李华（lihua）修改了这个条目" in text_of(page)
    assert f">{NEW_ANSWER}</textarea>" in page  # nothing typed is lost
    assert item_of(seeded_database_url, KEY).answer == theirs

    # Saving again from that page (it now knows the newer version) is the editor's choice.
    stamp = re.search(r'name="stamp" value="([^"]+)"', page)
    assert stamp is not None
    again = await client.post(
        f"/staff/knowledge/{item.id}",
        data=form_of(item, token, answer=NEW_ANSWER, stamp=stamp.group(1)),
    )
    assert "已保存" in flash_of(await again.text())
    assert item_of(seeded_database_url, KEY).answer == NEW_ANSWER

    missing = await client.get("/staff/knowledge/999999")
    assert missing.status == 404 and "没有这个知识条目" in await missing.text()


def content_version(database_url: str) -> int:
    with session_factory(database_url)() as db:
        return kdb.content_version(db)


async def test_forms_need_the_session_token(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    await signed_in(client, "zhaoli")
    item = item_of(seeded_database_url, KEY)
    for path, data in [
        (f"/staff/knowledge/{item.id}", form_of(item, "forged", answer=NEW_ANSWER)),
        (f"/staff/knowledge/{item.id}/status", {"csrf_token": "forged", "status": "retired"}),
        ("/staff/knowledge/import", upload("forged", "k.xlsx", xlsx_of([new_row("test-x")]))),
    ]:
        response = await client.post(path, data=data)
        assert response.status == 403, path
        assert "请求已过期或来源无效" in await response.text()
    unchanged = item_of(seeded_database_url, KEY)
    assert (unchanged.answer, unchanged.status) == (item.answer, "published")


# --- roles ------------------------------------------------------------------------------------


async def test_agents_get_403_on_every_knowledge_page(
    client: TestClient, seeded_database_url: str, seeded_agent: int
) -> None:
    response = await login(client, "wangxm")
    assert response.status == 303
    token = await csrf_of(client, "/staff/tickets")
    assert "知识库" not in await (await client.get("/staff/tickets")).text()  # no link either
    item = item_of(seeded_database_url, KEY)
    for method, path, data in [
        ("GET", "/staff/knowledge", None),
        ("GET", "/staff/knowledge?try=网上注册商标多少钱", None),
        ("GET", "/staff/knowledge/new", None),
        ("GET", f"/staff/knowledge/{item.id}", None),
        ("GET", f"/staff/knowledge/{item.id}/history", None),
        ("GET", "/staff/knowledge/export.xlsx", None),
        ("GET", "/staff/knowledge/export.csv", None),
        ("POST", f"/staff/knowledge/{item.id}", form_of(item, token, answer=NEW_ANSWER)),
        ("POST", f"/staff/knowledge/{item.id}/status", {"csrf_token": token, "status": "retired"}),
        ("POST", "/staff/knowledge/import", upload(token, "k.xlsx", xlsx_of([new_row("test-a")]))),
    ]:
        response = await client.request(method, path, data=data)
        assert response.status == 403, (method, path)
        assert "仅管理员和内容编辑可以访问知识库" in await response.text(), path
    unchanged = item_of(seeded_database_url, KEY)
    assert (unchanged.answer, unchanged.status) == (item.answer, "published")
    with session_factory(seeded_database_url)() as db:
        assert not kdb.keys_in_use(db, ["test-a"])


async def test_editors_see_only_the_knowledge_pages_and_admins_see_them_too(
    client: TestClient, seeded_database_url: str, editor: int, seeded_admin: int
) -> None:
    await signed_in(client, "zhaoli")
    console = await client.get("/staff", allow_redirects=False)
    assert console.status == 302 and console.headers["Location"] == "/staff/knowledge"
    page = await (await client.get("/staff/knowledge")).text()
    nav = page.split('<nav class="topbar__nav"', 1)[1].split("</nav>", 1)[0]
    assert text_of("<" + nav) == "知识库 待改进问题"  # the review inbox is theirs too
    assert "内容编辑" in text_of(page)  # the role's label beside the name
    for path in ["/staff/tickets", "/staff/admin/canned", "/staff/admin/transcripts", "/staff/ws"]:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 403, path
        assert "内容编辑只能使用知识库页面" in await response.text()

    client.session.cookie_jar.clear()
    await signed_in(client, "lihua")
    page = await (await client.get("/staff/knowledge")).text()
    assert "<h1>知识库</h1>" in page and 'href="/staff/knowledge" aria-current="page"' in page
    assert 'href="/staff/admin/canned"' in page


# --- import / export --------------------------------------------------------------------------


async def test_a_good_xlsx_imports_and_shows_the_counts(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    token = await signed_in(client, "zhaoli")
    existing = item_of(seeded_database_url, KEY)
    rows = [
        new_row("test-import-one"),
        new_row("test-import-two", related="test-import-one"),
        {**existing.content(), "answer": NEW_ANSWER},  # an update, by key
    ]
    response = await client.post(
        "/staff/knowledge/import", data=upload(token, "知识库.xlsx", xlsx_of(rows))
    )
    page = await response.text()
    assert "已导入“知识库.xlsx”：共 3 行，新增 2 条，更新 1 条，未变 0 条。" in flash_of(page)
    assert item_of(seeded_database_url, "test-import-two").related == ["test-import-one"]
    updated = item_of(seeded_database_url, KEY)
    assert (updated.answer, updated.updated_by) == (NEW_ANSWER, "zhaoli")
    assert revisions_of(seeded_database_url, updated.id)[0].action == "imported"

    # The same file again changes nothing.
    again = await client.post(
        "/staff/knowledge/import", data=upload(token, "知识库.xlsx", xlsx_of(rows))
    )
    assert "新增 0 条，更新 0 条，未变 3 条" in flash_of(await again.text())


async def test_a_file_with_one_bad_row_is_refused_whole_with_its_row_number(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    token = await signed_in(client, "zhaoli")
    existing = item_of(seeded_database_url, KEY)
    rows = [
        new_row("test-good-one"),  # Excel row 2
        {**existing.content(), "answer": NEW_ANSWER},  # row 3
        new_row("test-bad", answer="", topic="weather"),  # row 4: two reasons
        new_row("test-good-two"),  # row 5
    ]
    response = await client.post(
        "/staff/knowledge/import", data=upload(token, "有错.xlsx", xlsx_of(rows))
    )
    page = await response.text()
    assert response.status == 400
    text = text_of(page)
    assert "文件没有导入" in text and "整个文件都没有导入，知识库没有任何改动" in text
    errors = [unescape(e) for e in re.findall(r"<li>(第\d+行：.*?)</li>", page)]
    assert len(errors) == 1
    assert errors[0].startswith("第4行：") and "answer 不能为空" in errors[0]
    assert "topic 'weather' 不是已知主题" in errors[0]
    with session_factory(seeded_database_url)() as db:
        assert not kdb.keys_in_use(db, ["test-good-one", "test-good-two", "test-bad"])
    assert item_of(seeded_database_url, KEY).answer == existing.answer

    # Not a spreadsheet, or not a file at all: refused with a reason, nothing changes.
    for name, data, reason in [
        ("notes.txt", b"hello", "只能导入 Excel（.xlsx）或 CSV（.csv）文件"),
        ("broken.xlsx", b"not a zip", "无法读取文件"),
        ("big.csv", b"x" * (2 * 1024 * 1024 + 1), "文件超过 2 MB"),
    ]:
        response = await client.post("/staff/knowledge/import", data=upload(token, name, data))
        assert response.status in (400, 413), name
        assert reason in text_of(await response.text()), name


async def test_exports_open_in_excel_with_every_item_and_the_columns(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    await signed_in(client, "zhaoli")
    response = await client.get("/staff/knowledge/export.xlsx")
    assert response.status == 200
    assert 'filename="knowledge-' in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(await response.read()), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(COLUMNS)
    with session_factory(seeded_database_url)() as db:
        assert len(rows) - 1 == kdb.count_items(db)
    by_key = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]}
    assert by_key[KEY]["answer"] == item_of(seeded_database_url, KEY).answer
    assert by_key[KEY]["status"] == "published"

    csv_response = await client.get("/staff/knowledge/export.csv")
    body = await csv_response.read()
    assert body.startswith(b"\xef\xbb\xbf" + ",".join(COLUMNS).encode())  # a BOM for Excel
    assert KEY in body.decode("utf-8-sig")


# --- 试一试 and 待复核 ------------------------------------------------------------------------


async def test_the_try_box_shows_the_top_items_and_the_band(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    await signed_in(client, "zhaoli")
    page = await (await client.get("/staff/knowledge", params={"try": "网上注册商标多少钱"})).text()
    assert "机器人的判断：直接回答" in text_of(page)
    table = page.split('class="table table--compact kb-hits"', 1)[1].split("</table>", 1)[0]
    rows = [text_of(r) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]]
    assert len(rows) == 5
    assert rows[0].startswith("1 ") and KEY in rows[0]
    assert re.search(r"\d\.\d\d \d\.\d\d \d\.\d\d$", rows[0])  # score, coverage, similarity
    item = item_of(seeded_database_url, KEY)
    assert f'<a href="/staff/knowledge/{item.id}">' in table
    assert item.answer in unescape(page)  # what the citizen would read, under 查看

    page = await (await client.get("/staff/knowledge", params={"try": "今天天气怎么样"})).text()
    assert "机器人的判断：直接回答" not in text_of(page)


async def test_items_not_verified_for_long_are_listed_first_and_marked(
    client: TestClient, seeded_database_url: str, editor: int
) -> None:
    old, never = "trademark-fee-paper", "city-gi-count-2021"
    with session_factory(seeded_database_url)() as db:
        table = kdb.KnowledgeItem.__table__
        db.execute(
            update(table).where(table.c.key == old).values(last_verified=dt.date(2020, 1, 2))
        )
        db.execute(update(table).where(table.c.key == never).values(last_verified=None))
        db.commit()
    await signed_in(client, "zhaoli")
    page = await (await client.get("/staff/knowledge")).text()
    rows = list_rows(page)
    assert {rows[0][0], rows[1][0]} == {old, never}
    assert all("待复核" in text for _, text in rows[:2])
    assert not any("待复核" in text for _, text in rows[2:])
    assert "2020-01-02" in rows[0][1] + rows[1][1] and "未填写" in rows[0][1] + rows[1][1]
    assert "其中 2 条超过 180 天未核实（待复核），排在最前" in text_of(page)

    # Filters keep the order; the edit page says why it is due.
    page = await (
        await client.get("/staff/knowledge", params={"q": "商标", "status": "published"})
    ).text()
    first_key, first_text = list_rows(page)[0]
    assert first_key == old and "待复核" in first_text
    item = item_of(seeded_database_url, old)
    edit = text_of(await (await client.get(f"/staff/knowledge/{item.id}")).text())
    assert "最后核实于 2020-01-02，已超过 180 天" in edit
