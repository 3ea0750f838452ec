"""Staff import a CSV of stations; the running bot answers about them. Then the consultation form.

Real processes (the session's `stack`), real model, the stack's SQLite database.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from openpyxl import load_workbook
from sqlalchemy import select

from bot.db.engine import session_factory
from bot.db.leads import lead_by_reference
from bot.db.models import ConsultationRequest
from bot.settings import PROJECT_ROOT
from tests.support.chat_client import ChatClient, buttons, cards, texts
from tests.support.running_stack import RunningStack
from tests.support.staff_client import PASSWORD, add_staff_account

pytestmark = pytest.mark.e2e
SEED_ITEMS = yaml.safe_load((PROJECT_ROOT / "data/kb/knowledge.yml").read_text("utf-8"))

STATIONS_CSV = """service_type,name,district,address,phone,source,last_verified
商标品牌指导站,宁海县导入测试品牌指导站,宁海,宁海县测试路2号,0574-65000000,导入测试,2026-11-20
"""


def kb_import(stack: RunningStack, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": stack.settings.database_url}
    return subprocess.run(
        [sys.executable, "-m", "bot", "kb", "import", str(path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_imported_station_is_answered_by_the_running_bot(
    stack: RunningStack, tmp_path: Path
) -> None:
    path = tmp_path / "stations.csv"
    path.write_text(STATIONS_CSV, encoding="utf-8")
    result = kb_import(stack, path)
    assert result.returncode == 0, result.stderr
    assert "1 rows: 1 added" in result.stdout
    async with ChatClient(stack.gateway_url) as chat:
        answer = await chat.ask("宁海有品牌指导站吗")
    assert "宁海县的商标品牌指导站有 1 个" in texts(answer)
    [card] = cards(answer)
    assert card["name"] == "宁海县导入测试品牌指导站"
    assert card["address"] == "宁海县测试路2号" and card["phone"] == "0574-65000000"


async def test_consultation_form_with_a_wrong_phone_is_stored(stack: RunningStack) -> None:
    async with ChatClient(stack.gateway_url) as chat:
        offer = await chat.ask("有没有专利保险")
        products = [c["name"] for f in offer if "custom" in f for c in f["custom"]["items"]]
        assert "专利被侵权损失保险" in products
        consult = next(b for b in buttons(offer) if b["title"] == "预约保险咨询")
        assert "公司" in texts(await chat.ask(consult["title"], payload=consult["payload"]))
        assert "联系人" in texts(await chat.ask("宁波<b>甬新</b>电子有限公司"))
        assert "联系电话" in texts(await chat.ask("王先生"))
        wrong = await chat.ask("1381234")
        assert "手机号应为11位" in texts(wrong) and "联系电话" in texts(wrong)
        question = await chat.ask("13812345678")
        choice = next(b for b in buttons(question) if b["title"] == "专利执行保险")
        done = await chat.ask(choice["title"], payload=choice["payload"])
    reference = re.search(r"编号 (ZX-[2-9A-Z]{6})", texts(done))
    assert reference, texts(done)
    assert "公司：宁波<b>甬新</b>电子有限公司" in texts(done)
    with session_factory(stack.settings.database_url)() as session:
        lead = lead_by_reference(session, reference.group(1))
    assert lead is not None and lead.company == "宁波<b>甬新</b>电子有限公司"
    assert (lead.phone, lead.products) == ("13812345678", "专利执行保险")


async def test_consultation_form_can_be_stopped(stack: RunningStack) -> None:
    with session_factory(stack.settings.database_url)() as session:
        before = len(session.execute(select(ConsultationRequest)).all())
    async with ChatClient(stack.gateway_url) as chat:
        await chat.ask("预约保险咨询", payload="/request_insurance_consultation")
        await chat.ask("宁波明远模具有限公司")
        stopped = await chat.ask("算了")
    assert "已取消登记" in texts(stopped)
    with session_factory(stack.settings.database_url)() as session:
        assert len(session.execute(select(ConsultationRequest)).all()) == before


class ConsoleEditor:
    """A content editor signed in to the console over HTTP, as a browser would be."""

    def __init__(self, http: aiohttp.ClientSession, gateway_url: str) -> None:
        self.http = http
        self.url = gateway_url

    async def sign_in(self, username: str) -> None:
        async with self.http.get(f"{self.url}/staff/login") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert token
        form = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
        async with self.http.post(
            f"{self.url}/staff/login", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303

    async def export_xlsx(self) -> bytes:
        async with self.http.get(f"{self.url}/staff/knowledge/export.xlsx") as response:
            assert response.status == 200
            return await response.read()

    async def import_xlsx(self, data: bytes) -> str:
        async with self.http.get(f"{self.url}/staff/knowledge") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert token
        form = aiohttp.FormData()
        form.add_field("csrf_token", token.group(1))
        form.add_field("file", data, filename="知识库.xlsx")
        async with self.http.post(f"{self.url}/staff/knowledge/import", data=form) as response:
            return await response.text()


def with_answer(workbook: bytes, key: str, answer: str) -> bytes:
    book = load_workbook(io.BytesIO(workbook))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index("key")].value == key:
            row[header.index("answer")].value = answer
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def first_answer_within(chat: ChatClient, question: str, expected: str) -> float:
    """Ask until the first reply is `expected`; return the seconds it took (at most 5)."""
    started = time.monotonic()
    while True:
        reply = await chat.ask(question)
        if reply and reply[0].get("text") == expected:
            return time.monotonic() - started
        assert time.monotonic() - started < 5, reply
        await asyncio.sleep(0.2)


async def test_an_editor_changes_an_answer_in_excel_and_the_running_bot_says_it(
    stack: RunningStack,
) -> None:
    username = add_staff_account(stack.settings.database_url, "内容编辑小周", role="editor")
    question = "宁波2021年PCT国际专利申请有多少件"
    new_answer = "截至2021年，宁波PCT国际专利申请667件（测试：编辑改写的答案）。"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        editor = ConsoleEditor(http, stack.gateway_url)
        await editor.sign_in(username)
        original = await editor.export_xlsx()
        page = await editor.import_xlsx(with_answer(original, "city-pct-2021", new_answer))
        assert "更新 1" in page or "更新1" in page, page
        async with ChatClient(stack.gateway_url) as chat:
            assert await first_answer_within(chat, question, new_answer) < 5
            page = await editor.import_xlsx(original)  # staff put the old text back
            old = next(i for i in SEED_ITEMS if i["key"] == "city-pct-2021")["answer"]
            assert await first_answer_within(chat, question, old) < 5
