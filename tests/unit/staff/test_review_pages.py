"""The review inbox (/staff/knowledge/review) and the dashboard (/staff/dashboard) through the real
app and aiohttp's test client, SQLite and PostgreSQL: who may open them, grouping, every decision
recorded, training examples written to a copy of the project's data that `rasa data validate`
accepts, a knowledge item prefilled from a group, and the CSV of a chart."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.db import conversations, review
from bot.db.engine import session_factory
from bot.settings import PROJECT_ROOT, Settings
from tests.support.staff_login import add_account, csrf_of, login

QUESTIONS = ("商标注册证丢了怎么补办", "商标注册证丢了如何补办？", "社保怎么交")


@pytest.fixture()
def project_copy(tmp_path: Path) -> Path:
    """The model's inputs copied: a test never writes into the repository's data/."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "data", copy / "data")
    for name in ("domain.yml", "config.yml"):
        shutil.copy(PROJECT_ROOT / name, copy / name)
    return copy


@pytest.fixture()
def review_app(database_url: str, tmp_path: Path, project_copy: Path) -> web.Application:
    settings = Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_auth_token="t",
        session_secret="review-test-secret",
        rasa_port=1,
        action_port=1,
        review_training_dir=project_copy / "data" / "nlu",
    )
    return create_app(settings)


@pytest.fixture()
async def review_client(review_app: web.Application, aiohttp_client) -> TestClient:
    return await aiohttp_client(review_app)


@pytest.fixture()
def flagged(database_url: str) -> list[int]:
    """Three unanswered questions: two ways to ask one thing, and something else."""
    ids = []
    with session_factory(database_url)() as db:
        for number, text in enumerate(QUESTIONS):
            stored = conversations.store_user_message(db, f"c{number}", f"m{number}", text, None)
            conversations.store_replies(db, f"c{number}", stored.id, [{"text": "抱歉"}])
            review.record_outcome(db, stored.id, {"outcome": "not_found"})
            ids.append(stored.id)
    return ids


async def sign_in(client: TestClient, username: str) -> str:
    response = await login(client, username)
    assert response.status == 303, await response.text()
    return await csrf_of(client, "/staff/knowledge" if username != "wangxm" else "/staff/tickets")


def signals(database_url: str) -> list[review.ReviewSignal]:
    with session_factory(database_url)() as db:
        return list(db.execute(select(review.ReviewSignal)).scalars())


async def test_only_admins_and_editors_open_the_inbox_only_admins_the_dashboard(
    review_client: TestClient, database_url: str
) -> None:
    add_account(database_url, "wangxm", "agent", "王小明")
    add_account(database_url, "zhaoli", "editor", "赵丽")
    add_account(database_url, "lihua", "admin", "李华")
    expected = {"wangxm": (403, 403), "zhaoli": (200, 403), "lihua": (200, 200)}
    for username, (inbox, board) in expected.items():
        await sign_in(review_client, username)
        response = await review_client.get("/staff/knowledge/review")
        assert response.status == inbox, username
        if inbox == 403:
            assert "待改进问题" not in await response.text()
        assert (await review_client.get("/staff/dashboard")).status == board, username
        review_client.session.cookie_jar.clear()
    anonymous = await review_client.get("/staff/knowledge/review", allow_redirects=False)
    assert anonymous.status == 302


async def test_similar_questions_form_one_group_and_a_dismissal_is_recorded(
    review_client: TestClient, database_url: str, flagged: list[int]
) -> None:
    add_account(database_url, "zhaoli", "editor", "赵丽")
    token = await sign_in(review_client, "zhaoli")
    page = unescape(await (await review_client.get("/staff/knowledge/review")).text())
    assert "共 3 个待处理问题，分为 2 组" in page
    first_group = page.index("商标注册证丢了")
    assert first_group < page.index("社保怎么交")  # the bigger group first
    response = await review_client.post(
        "/staff/knowledge/review/dismiss",
        data={"csrf_token": token, "ids": str(flagged[2]), "reason": ""},
        allow_redirects=False,
    )
    assert response.status == 303
    assert all(s.decision_id is None for s in signals(database_url))  # no reason, no decision
    response = await review_client.post(
        "/staff/knowledge/review/dismiss",
        data={"csrf_token": token, "ids": str(flagged[2]), "reason": "与知识产权无关"},
    )
    page = unescape(await response.text())
    assert "已忽略 1 个问题（原因：与知识产权无关）" in page
    assert "共 2 个待处理问题，分为 1 组" in page
    assert "与知识产权无关" in page.split("decisions-title")[-1]  # the decision, with its reason
    decided = [s for s in signals(database_url) if s.decision_id is not None]
    assert [s.message_id for s in decided] == [flagged[2]]


async def test_a_group_sent_to_training_is_written_and_passes_rasa_validation(
    review_client: TestClient, database_url: str, flagged: list[int], project_copy: Path
) -> None:
    add_account(database_url, "zhaoli", "editor", "赵丽")
    token = await sign_in(review_client, "zhaoli")
    response = await review_client.post(
        "/staff/knowledge/review/training",
        data={"csrf_token": token, "ids": f"{flagged[0]},{flagged[1]}",
              "intent": "ask_trademark_window"},
    )  # fmt: skip
    assert "review_ask_trademark_window.yml 新增 2 条" in unescape(await response.text())
    written = project_copy / "data" / "nlu" / "review_ask_trademark_window.yml"
    document = yaml.safe_load(written.read_text(encoding="utf-8"))
    [block] = document["nlu"]
    assert block["intent"] == "ask_trademark_window"
    assert sorted(block["examples"].splitlines()) == sorted(f"- {q}" for q in QUESTIONS[:2])
    assert not (PROJECT_ROOT / "data" / "nlu" / written.name).exists()
    assert {s.decision_id is not None for s in signals(database_url)} == {True, False}
    validated = subprocess.run(
        [str(Path(sys.executable).with_name("rasa")), "data", "validate",
         "--data", "data/nlu", "data/rules", "data/stories",
         "--domain", "domain.yml", "--config", "config.yml", "--fail-on-warnings"],
        cwd=project_copy, capture_output=True, text=True, timeout=600,
        env={"PATH": "/usr/bin:/bin", "RASA_TELEMETRY_ENABLED": "false", "HOME": str(project_copy)},
    )  # fmt: skip
    assert validated.returncode == 0, validated.stdout[-3000:] + validated.stderr[-3000:]


async def test_a_new_knowledge_item_is_prefilled_from_a_group_and_records_the_decision(
    review_client: TestClient, database_url: str, flagged: list[int]
) -> None:
    add_account(database_url, "zhaoli", "editor", "赵丽")
    token = await sign_in(review_client, "zhaoli")
    ids = f"{flagged[0]},{flagged[1]}"
    page = unescape(await (await review_client.get(f"/staff/knowledge/new?review={ids}")).text())
    assert 'id="question" name="question" type="text" value="商标注册证丢了' in page
    assert (
        QUESTIONS[0] in page and QUESTIONS[1] in page and f'name="review_ids" value="{ids}"' in page
    )
    response = await review_client.post(
        "/staff/knowledge/new",
        data={
            "csrf_token": token, "review_ids": ids, "key": "lost-certificate",
            "topic": "ask_trademark_window", "question": QUESTIONS[0],
            "phrasings": QUESTIONS[1], "answer": "商标注册证遗失可向国家知识产权局申请补发。",
            "source_kind": "official", "do": "save",
        },
    )  # fmt: skip
    text = unescape(await response.text())
    assert "待改进问题中的 2 个问题已记为由此条目解答" in text
    with session_factory(database_url)() as db:
        [decision] = db.execute(select(review.ReviewDecision)).scalars()
    assert (decision.action, decision.detail, decision.message_count) == (
        "knowledge", "lost-certificate", 2,
    )  # fmt: skip


async def test_a_chart_downloads_as_csv_with_the_numbers_of_its_table(
    review_client: TestClient, database_url: str, flagged: list[int]
) -> None:
    add_account(database_url, "lihua", "admin", "李华")
    await sign_in(review_client, "lihua")
    response = await review_client.get("/staff/dashboard/unanswered.csv")
    assert response.status == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="unanswered-')
    rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))
    day = rows[1][0]
    assert rows == [["日期", "市民提问数", "未解答数", "未解答率(%)"], [day, "3", "3", "100.0"]]
    assert (await review_client.get("/staff/dashboard/nothing.csv")).status == 404
    bad = await review_client.get("/staff/dashboard/unanswered.csv?from=2026-13-01")
    assert bad.status == 400
