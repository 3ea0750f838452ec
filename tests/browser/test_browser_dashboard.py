"""The operations dashboard in headless Chromium, on a wall screen (1920×1080) and a laptop
(1366×768): known data written through the product's own functions on two days, the range
chosen covers one of them. Every chart is drawn (a canvas, no page errors), and every table
view shows the numbers the database holds for that range, none from the day outside it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from sqlalchemy import text

from bot.db.engine import session_factory
from bot.db.handoffs import Ticket
from bot.db.migrate import upgrade
from bot.db.models import ConsultationRequest
from bot.settings import PROJECT_ROOT, Settings
from bot.staff import accounts
from tests.browser.test_browser_knowledge import Gateway
from tests.support.running_stack import free_port
from tests.support.staff_login import FAST_HASHER, PASSWORD
from tests.unit.db.test_review_and_dashboard import DAY_A, DAY_B, Clock, seed_two_days

pytestmark = pytest.mark.browser

WALL: ViewportSize = {"width": 1920, "height": 1080}
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
RANGE = "from=2026-11-09&to=2026-11-11"  # DAY_A (2026-11-10) in, DAY_B (2026-11-12) out
SINCE, UNTIL = dt.datetime(2026, 11, 8, 16), dt.datetime(2026, 11, 11, 16)  # as UTC
SCREENSHOT = PROJECT_ROOT / "results" / "dashboard-1920.png"
IN_RANGE = "created_at >= :a AND created_at < :b"
# What the tables hold for the range, counted without the dashboard's code.
DIRECT = {
    "conversations": f"SELECT count(*) FROM conversations WHERE {IN_RANGE}",
    "handed": "SELECT count(DISTINCT h.conversation_id) FROM handoffs h"
    " JOIN conversations c ON c.id = h.conversation_id"
    " WHERE c.created_at >= :a AND c.created_at < :b",
    "questions": f"SELECT count(*) FROM messages WHERE role = 'user' AND {IN_RANGE}",
    "flagged": f"SELECT count(DISTINCT message_id) FROM review_signals WHERE {IN_RANGE}",
    "handoffs": "SELECT count(*) FROM handoffs WHERE requested_at >= :a AND requested_at < :b",
    "tickets": f"SELECT count(*) FROM tickets WHERE status = 'open' AND {IN_RANGE}",
    "leads": f"SELECT count(*) FROM consultation_requests WHERE status = 'new' AND {IN_RANGE}",
    "rated_4": "SELECT count(*) FROM handoffs WHERE rating = 4"
    " AND rated_at >= :a AND rated_at < :b",
}


@pytest.fixture()
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    database_url = f"sqlite:///{tmp_path / 'board.db'}"
    upgrade(database_url)
    with session_factory(database_url)() as db, monkeypatch.context() as patch:
        seed_two_days(db, Clock(patch))
        accounts.create_account(db, "lihua", "李华", PASSWORD, "admin", hasher=FAST_HASHER)
        for day, status in ((DAY_A, "open"), (DAY_A, "closed"), (DAY_B, "open")):
            db.add(Ticket(conversation_id=f"y{day.day}", phone="13800000000", message="回电",
                          status=status, created_at=day, updated_at=day))  # fmt: skip
            db.add(ConsultationRequest(reference=f"ZX-{day.day}{status}", company="某公司",
                                       contact_name="张", phone="13800000000", status="new",
                                       conversation_id=f"w{day.day}", created_at=day))  # fmt: skip
        db.commit()
    settings = Settings(
        var_dir=tmp_path, database_url=database_url, gateway_port=free_port(), rasa_port=1,
        action_port=1, rasa_auth_token="t", session_secret="dashboard-browser-test",
    )  # fmt: skip
    with Gateway(settings) as running:
        yield running


def count(gateway: Gateway, sql: str) -> int:
    with session_factory(gateway.settings.database_url)() as db:
        return int(db.execute(text(sql), {"a": SINCE, "b": UNTIL}).scalar_one())


def table(page: Page, chart: str) -> list[list[str]]:
    section = page.locator(f"#chart-{chart}")
    section.get_by_role("button", name="表格").click()
    rows = section.locator("tbody tr")
    expect(rows.first).to_be_visible()
    return [[c.strip() for c in row.locator("td").all_inner_texts()] for row in rows.all()]


def open_board(browser: Browser, gateway: Gateway, viewport: ViewportSize) -> tuple[Page, list]:
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url', '')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(gateway.url + "/staff/login")
    page.locator("#username").fill("lihua")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/staff$"))
    page.get_by_role("link", name="运营看板").click()
    page.goto(gateway.url + "/staff/dashboard?" + RANGE)
    return page, problems


def test_every_chart_is_drawn_and_its_table_holds_the_databases_numbers(
    browser: Browser, gateway: Gateway
) -> None:
    page, problems = open_board(browser, gateway, WALL)
    sections = page.locator(".board-chart")
    expect(sections).to_have_count(11)
    for index in range(11):
        expect(sections.nth(index).locator(".board-chart__canvas canvas")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= WALL["width"]
    expect(page.locator(".board-grid")).to_have_css(
        "grid-template-columns", re.compile(r"^\S+ \S+ \S+$")
    )  # three columns on the wall screen
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    numbers = {name: count(gateway, sql) for name, sql in DIRECT.items()}
    conversations, handed, questions = (
        numbers[k] for k in ("conversations", "handed", "questions")
    )
    flagged, handoffs = numbers["flagged"], numbers["handoffs"]
    tickets_open, leads_new, rated_4 = numbers["tickets"], numbers["leads"], numbers["rated_4"]
    assert (conversations, handed, questions, flagged, handoffs) == (3, 1, 4, 2, 1)  # fmt: skip

    day = "2026-11-10"
    assert table(page, "conversations") == [[day, str(conversations)]]
    rate = round(100 * (conversations - handed) / conversations, 1)
    assert table(page, "containment") == [
        [day, str(conversations), str(handed), str(conversations - handed), str(rate)]
    ]
    assert table(page, "unanswered") == [
        [day, str(questions), str(flagged), str(round(100 * flagged / questions, 1))]
    ]
    assert table(page, "topics") == [
        ["商标受理窗口", "2"],
        ["专利预审快速通道", "1"],
        ["超出范围", "1"],
    ]
    assert table(page, "items") == [["k1", "k1", "1"], ["k2", "k2", "1"]]
    assert table(page, "handoffs") == [[day, str(handoffs), str(handoffs)]]
    assert table(page, "wait") == [["中位数 p50", "40.0"], ["p95", "40.0"]]
    assert table(page, "agents") == [["王小明", "1"]]
    assert ["满意", str(rated_4)] in table(page, "ratings")
    assert ["新线索", str(leads_new)] in table(page, "leads")
    assert ["待处理", str(tickets_open)] in table(page, "tickets")
    expect(page.locator("#chart-ratings .board-chart__note")).to_contain_text("满意率 100.0%")
    expect(page.locator(".board-kpis")).to_contain_text("会话数3")
    assert "2026-11-12" not in page.locator(".board-grid").inner_text()  # outside the range
    assert problems == []


def test_the_laptop_layout_has_two_columns_and_no_sideways_scrolling(
    browser: Browser, gateway: Gateway
) -> None:
    page, problems = open_board(browser, gateway, LAPTOP)
    expect(page.locator(".board-chart__canvas canvas")).to_have_count(11)
    expect(page.locator(".board-grid")).to_have_css(
        "grid-template-columns", re.compile(r"^\S+ \S+$")
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    page.locator("#chart-topics").get_by_role("button", name="表格").click()
    expect(page.locator("#chart-topics .board-chart__canvas")).to_be_hidden()
    expect(page.locator("#chart-topics").get_by_role("button", name="表格")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert problems == []
