"""The web chat in headless Chromium (Debian's /usr/bin/chromium) against the real stack.

A phone-sized window (360×640), the way a citizen opens it from WeChat: ask, click quick replies,
see cards, reload, lose the connection, lose Rasa, and carry on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.db.conversations import Message, utcnow
from bot.db.engine import session_factory
from bot.settings import PROJECT_ROOT
from tests.support.browser import PHONE
from tests.support.running_stack import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ANSWER_TIMEOUT_MS = 30_000
RESULTS = PROJECT_ROOT / "results"
USER_GREEN = "rgb(149, 236, 105)"
BOT_WHITE = "rgb(255, 255, 255)"


@pytest.fixture()
def page(browser: Browser, stack: RunningStack) -> Iterator[Page]:
    """A new browser profile (a new citizen) on a phone-sized window, with the chat open."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.set_default_timeout(ANSWER_TIMEOUT_MS)
    page = context.new_page()
    page.goto(stack.gateway_url + "/")
    expect(page.locator("#state-text")).to_have_text("在线")
    yield page
    context.close()


def bot_messages(page: Page):
    return page.locator(".msg--bot")


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def stored(stack: RunningStack, text: str, since: datetime) -> list[Message]:
    """User messages with this text stored since `since` (other tests share the stack's DB)."""
    with session_factory(stack.settings.database_url)() as session:
        query = select(Message).where(
            Message.role == "user", Message.text == text, Message.created_at >= since
        )
        return list(session.execute(query).scalars())


def test_first_open_hot_question_and_a_card(page: Page) -> None:
    welcome = bot_messages(page).first
    expect(welcome).to_contain_text("宁波知识产权公共服务助手")
    expect(welcome).to_contain_text("猜你想问")
    welcome.get_by_role("button", name="鄞州有品牌指导站吗").click()

    question = page.locator(".msg--user").last
    expect(question).to_have_text(re.compile("鄞州有品牌指导站吗"))
    expect(page.locator(".msg--bot").last).to_be_visible()
    answer = page.locator(".msg--bot", has_text="鄞州区目前没有收录已核实的商标品牌指导站")
    expect(answer).to_be_visible()
    card = page.locator(".card", has_text="宁波市知识产权协会品牌指导服务站")
    expect(card).to_be_visible()
    expect(card).to_contain_text("来源")
    expect(page.locator(".card__unverified").first).to_have_text(re.compile("地址待核实"))
    # The hot questions were used: they are no longer clickable.
    expect(welcome.get_by_role("button", name="鄞州有品牌指导站吗")).to_be_disabled()

    # WeChat's look: green user bubbles on the right, white bot bubbles with an avatar on the left.
    user_bubble = question.locator(".msg__bubble")
    bot_bubble = answer.locator(".msg__bubble").first
    assert user_bubble.evaluate("e => getComputedStyle(e).backgroundColor") == USER_GREEN
    assert bot_bubble.evaluate("e => getComputedStyle(e).backgroundColor") == BOT_WHITE
    expect(answer.locator(".avatar")).to_be_visible()
    user_box, bot_box = user_bubble.bounding_box(), bot_bubble.bounding_box()
    assert user_box["x"] + user_box["width"] > PHONE["width"] - 30  # flush right
    assert bot_box["x"] > 40  # after the avatar
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The question, its answer and the first card in one screen, for review.
    question.evaluate(
        "e => { e.parentElement.scrollTop = e.offsetTop - e.parentElement.offsetTop; }"
    )
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "webchat-360x640.png"))


def test_typed_question_then_a_quick_reply(page: Page) -> None:
    ask(page, "品牌指导站在哪")
    question = page.locator(".msg--bot", has_text="哪个区县")
    expect(question.get_by_role("button")).to_have_count(10)
    question.get_by_role("button", name="北仑区").click()
    expect(page.locator(".card", has_text="北仑区小港街道品牌指导站")).to_be_visible()
    expect(page.locator(".card", has_text="北仑区新碶街道品牌指导站")).to_be_visible()
    expect(question.get_by_role("button", name="北仑区")).to_be_disabled()
    expect(question.get_by_role("button", name="鄞州区")).to_be_disabled()


def test_html_typed_by_a_user_stays_text(page: Page) -> None:
    ask(page, "<b>商标</b><img src=x onerror=alert(1)>")
    bubble = page.locator(".msg--user .msg__bubble").last
    expect(bubble).to_have_text("<b>商标</b><img src=x onerror=alert(1)>")
    expect(page.locator(".msg--user b, .msg--user img")).to_have_count(0)


def test_reload_and_another_tab_restore_the_conversation_then_new_conversation(
    page: Page,
) -> None:
    ask(page, "慈溪那边的商标品牌指导站在哪里")
    expect(page.locator(".card", has_text="慈溪市周巷镇品牌建设工作指导站")).to_be_visible()

    page.evaluate("sessionStorage.clear()")  # the history must come from the server
    page.reload()
    expect(page.locator(".msg--user", has_text="慈溪那边的商标品牌指导站在哪里")).to_have_count(1)
    expect(page.locator(".card", has_text="慈溪市周巷镇品牌建设工作指导站")).to_be_visible()
    expect(page.locator(".msg--bot", has_text="猜你想问")).to_have_count(0)

    other_tab = page.context.new_page()
    other_tab.goto(page.url)
    expect(other_tab.locator(".card", has_text="慈溪市周巷镇品牌建设工作指导站")).to_be_visible()
    # A message in one tab shows up in the other, and the hidden tab counts it as unread.
    other_tab.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})"
    )
    ask(page, "你好")
    expect(other_tab.locator(".msg--user", has_text="你好")).to_have_count(1)
    expect(other_tab).to_have_title(re.compile(r"^\(\d+\) 宁波知识产权服务助手$"))

    page.get_by_role("button", name="新对话").click()
    expect(page.locator(".msg--bot", has_text="猜你想问")).to_be_visible()
    expect(page.locator(".msg--user")).to_have_count(0)
    expect(other_tab.locator(".msg--user")).to_have_count(0)  # the other tab follows
    other_tab.close()


def test_messages_typed_while_offline_are_sent_once_on_reconnect(
    page: Page, stack: RunningStack
) -> None:
    started = utcnow()
    stack.stop("gateway")
    try:
        expect(page.locator("#state-text")).to_have_text("连接中…")
        ask(page, "商标受理窗口在哪")
        ask(page, "专利预审怎么申请")
        expect(page.locator('.msg--user[data-state="pending"]')).to_have_count(2)
    finally:
        stack.start("gateway")
    expect(page.locator("#state-text")).to_have_text("在线", timeout=30_000)
    expect(page.locator('.msg--user[data-state="sent"]')).to_have_count(2)
    expect(page.locator(".msg--user")).to_have_count(2)
    # Both answered (the welcome is the first bot message), each question stored exactly once.
    page.wait_for_function("() => document.querySelectorAll('.msg--bot').length >= 3")
    expect(page.locator("#typing")).to_be_hidden()
    page.wait_for_timeout(1000)  # any duplicate would have arrived by now
    expect(page.locator(".msg--user")).to_have_count(2)
    assert [m.status for m in stored(stack, "商标受理窗口在哪", started)] == ["answered"]
    assert [m.status for m in stored(stack, "专利预审怎么申请", started)] == ["answered"]


def test_rasa_down_gives_a_friendly_error_then_the_chat_continues(
    page: Page, stack: RunningStack
) -> None:
    started = utcnow()
    stack.stop("rasa")
    try:
        ask(page, "我想投诉有人仿冒我的商标")
        error = page.locator(".msg--error", has_text="系统繁忙")
        expect(error).to_be_visible(timeout=10_000)
        expect(error.get_by_role("button", name="转人工")).to_be_enabled()
        [kept] = stored(stack, "我想投诉有人仿冒我的商标", started)
        assert kept.status == "failed"  # kept for staff
    finally:
        stack.start("rasa")
    ask(page, "慈溪那边的商标品牌指导站在哪里")
    expect(page.locator(".card", has_text="慈溪市周巷镇品牌建设工作指导站")).to_be_visible(
        timeout=60_000
    )
