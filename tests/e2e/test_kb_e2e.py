"""Staff import a CSV of stations; the running bot answers about them. Then the consultation form.

Real processes (the session's `stack`), real model, the stack's SQLite database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.engine import session_factory
from bot.db.leads import lead_by_reference
from bot.db.models import ConsultationRequest
from bot.settings import PROJECT_ROOT
from tests.support.chat_client import ChatClient, buttons, cards, texts
from tests.support.running_stack import RunningStack

pytestmark = pytest.mark.e2e

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
