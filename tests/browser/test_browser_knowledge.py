"""A content editor in headless Chromium (1280×800): signs in, finishes a draft answer, checks the
citizen's preview, saves and publishes it. The real gateway app (bot.app.create_app) runs in a
background thread on a seeded SQLite database; nothing here needs Rasa or the action server.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import select

from bot.app import create_app
from bot.db import knowledge as kdb
from bot.db.engine import session_factory
from bot.db.migrate import upgrade
from bot.kb.seed import seed_if_empty
from bot.settings import PROJECT_ROOT, Settings
from bot.staff import accounts
from tests.support.running_stack import free_port
from tests.support.staff_login import FAST_HASHER, PASSWORD

pytestmark = pytest.mark.browser

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000
SCREENSHOT = PROJECT_ROOT / "results" / "knowledge-editor.png"
KEY = "ip-week-dates"
QUESTION = "全国知识产权宣传周是什么时候？"
NEW_ANSWER = (
    "每年4月20日至26日是全国知识产权宣传周，4月26日是世界知识产权日（来源：国家知识产权局）。"
)


class Gateway:
    """The gateway app served from its own event loop in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    async def _serve(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.gateway_port).start()

    def __enter__(self) -> Gateway:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        async def cleanup() -> None:
            if self.runner is not None:
                await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"


@pytest.fixture()
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """A seeded database with a content editor and one draft item, and the gateway on it."""
    database_url = f"sqlite:///{tmp_path / 'kb.db'}"
    upgrade(database_url)
    with session_factory(database_url)() as db:
        seed_if_empty(db)
        accounts.create_account(db, "zhaoli", "赵丽", PASSWORD, "editor", hasher=FAST_HASHER)
        kdb.save_item(
            db,
            {
                "key": KEY,
                "topic": "general",
                "question": QUESTION,
                "phrasings": ["知识产权宣传周是哪几天", "426是什么日子"],
                "answer": "待补充",
                "holds_for": "2026",
                "source_title": "国家知识产权局",
                "source_kind": "official",
                "last_verified": "2026-11-20",
                "unknown": False,
                "related": ["trademark-fee-online"],
                "status": kdb.DRAFT,
            },
            "seed",
        )
        db.commit()
    settings = Settings(
        var_dir=tmp_path,
        database_url=database_url,
        gateway_port=free_port(),
        rasa_port=1,  # nothing listens: the staff pages never reach Rasa
        action_port=1,
        rasa_auth_token="t",
        session_secret="knowledge-browser-test",
    )
    with Gateway(settings) as running:
        yield running


def stored(gateway: Gateway) -> kdb.KnowledgeItem:
    with session_factory(gateway.settings.database_url)() as db:
        return db.execute(
            select(kdb.KnowledgeItem).where(kdb.KnowledgeItem.key == KEY)
        ).scalar_one()


def sign_in(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/staff")
    expect(page).to_have_url(re.compile(r"/staff/login$"))
    page.locator("#username").fill("zhaoli")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/staff/knowledge$"))  # an editor's start page


def test_an_editor_edits_previews_saves_and_publishes_an_answer(
    browser: Browser, gateway: Gateway
) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url', '')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        sign_in(page, gateway)
        expect(page.locator(".topbar__nav a")).to_have_text(["知识库", "待改进问题"])  # editors

        # Find the draft by a word of its question, open it.
        page.locator("#q").fill("宣传周")
        page.get_by_role("button", name="筛选").click()
        page.get_by_role("link", name=QUESTION).click()
        expect(page.locator("h1")).to_have_text(QUESTION)
        expect(page.locator(".kb-status .badge")).to_have_text("草稿")

        # Type the answer: the counter follows as it is typed (knowledge.js).
        answer = page.locator("#answer")
        answer.fill(NEW_ANSWER)
        expect(page.locator("#answer-counter")).to_have_text(f"已写 {len(NEW_ANSWER)} / 120 字")
        answer.fill(NEW_ANSWER + "多" * 80)
        expect(page.locator("#answer-counter")).to_contain_text("超出")
        answer.fill(NEW_ANSWER)

        # 预览: the citizen's bubbles show the typed text; nothing is saved yet.
        page.get_by_role("button", name="预览").click()
        bubbles = page.locator(".kb-preview .kb-msg--in .kb-msg__bubble")
        expect(bubbles.first).to_have_text(NEW_ANSWER)
        expect(page.locator(".kb-preview .kb-msg--out .kb-msg__bubble")).to_have_text(QUESTION)
        expect(bubbles.nth(1)).to_have_text(
            "来源：国家知识产权局；信息时间：2026；核实于2026-11-20"
        )
        expect(page.locator(".kb-preview .kb-chip")).to_have_count(1)  # the related question
        assert stored(gateway).answer == "待补充"

        page.get_by_role("button", name="保存").click()
        expect(page.locator(".flash")).to_have_text("已保存（草稿，市民看不到）。")
        assert stored(gateway).answer == NEW_ANSWER

        page.get_by_role("button", name="发布", exact=True).click()
        expect(page.locator(".flash")).to_contain_text("已发布，市民现在就能看到这条答案。")
        expect(page.locator(".kb-status .badge")).to_have_text("已发布")
        expect(bubbles.first).to_have_text(NEW_ANSWER)
        expect(bubbles.nth(1)).to_contain_text("核实于2026-11-20")  # the stored item's preview
        item = stored(gateway)
        assert (item.status, item.answer, item.updated_by) == ("published", NEW_ANSWER, "zhaoli")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

        # The 试一试 box finds the published answer at once.
        page.get_by_role("link", name="← 返回知识库").click()
        page.locator("#try").fill("知识产权宣传周是哪几天")
        page.get_by_role("button", name="试一试").click()
        expect(page.locator(".kb-hits tbody tr").first).to_contain_text(KEY)
        assert problems == []  # no CSP violations or script errors
    finally:
        context.close()
