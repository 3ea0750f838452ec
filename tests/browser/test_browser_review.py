"""Answer feedback and the review inbox against the real stack (gateway, Rasa, action server) in
headless Chromium: a citizen's 👎 with a reason (given with the keyboard) is stored with the
answer; the question shows up in the editor's inbox; the editor turns its group into a knowledge
item, publishes it, and the next citizen asking gets that answer. An agent cannot open the inbox.
"""

from __future__ import annotations

import re
import uuid

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from bot.db import review
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.staff import accounts
from tests.support.running_stack import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1366, "height": 800}
TIMEOUT_MS = 30_000
PASSWORD = "review-test-password"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# Today the bot answers this patent question with the trademark certificate's item: wrong.
QUESTION = "专利证书丢了怎么办"
WRONG_ANSWER = "补发商标注册证"
NEW_ANSWER = "专利证书遗失的，可向国家知识产权局请求出具专利登记簿副本代替证书（测试答案）。"


def add_staff(stack: RunningStack, name: str, role: str) -> str:
    username = f"r{uuid.uuid4().hex[:10]}"
    with session_factory(stack.settings.database_url)() as db:
        accounts.create_account(db, username, name, PASSWORD, role=role, hasher=CHEAP_HASHER)
    return username


def watched(context: BrowserContext, problems: list[str]) -> Page:
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and "favicon" not in m.location.get("url", "")
            else None
        ),
    )
    return page


def citizen(browser: Browser, stack: RunningStack, contexts: list, problems: list[str]) -> Page:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    contexts.append(context)
    page = watched(context, problems)
    page.goto(stack.gateway_url + "/")
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def sign_in(page: Page, stack: RunningStack, username: str) -> None:
    page.goto(stack.gateway_url + "/staff/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).not_to_have_url(re.compile(r"/staff/login$"))


def feedback_of(stack: RunningStack, text_part: str) -> list[tuple[str | None, str | None]]:
    with session_factory(stack.settings.database_url)() as db:
        rows = db.execute(
            select(Message.feedback, Message.feedback_reason).where(
                Message.role == "bot", Message.text.contains(text_part)
            )
        ).all()
    return [tuple(r) for r in rows]


def test_a_thumbs_down_reaches_the_inbox_and_becomes_the_next_citizens_answer(
    browser: Browser, stack: RunningStack, contexts: list
) -> None:
    problems: list[str] = []
    first = citizen(browser, stack, contexts, problems)
    ask(first, QUESTION)
    answer = first.locator(".msg--bot", has_text=WRONG_ANSWER).first
    expect(answer).to_be_visible(timeout=TIMEOUT_MS)  # the real bot, on a busy machine
    bar = answer.get_by_role("group", name="这条回答对您有帮助吗")
    down = bar.get_by_role("button", name="没有帮助")
    expect(down).to_have_attribute("aria-pressed", "false")
    down.focus()
    first.keyboard.press("Enter")  # keyboard only: Enter on 👎, Tab to a reason, Space
    expect(down).to_have_attribute("aria-pressed", "true")
    reasons = answer.get_by_role("group", name="没有帮助的原因（选填）")
    expect(reasons).to_be_visible()
    first.keyboard.press("Tab")
    expect(reasons.get_by_role("button", name="没回答我的问题")).to_be_focused()
    first.keyboard.press("Tab")
    first.keyboard.press("Space")
    expect(reasons.get_by_role("button", name="信息有误")).to_have_attribute("aria-pressed", "true")
    expect(first.locator("#announcer")).to_have_text("感谢您的反馈")
    assert ("down", "wrong") in feedback_of(stack, WRONG_ANSWER)
    first.reload()  # the choice is shown again from the stored message
    expect(
        first.locator(".msg--bot", has_text=WRONG_ANSWER)
        .first.get_by_role("button", name="没有帮助")
    ).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)  # fmt: skip

    editor_context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    editor_context.set_default_timeout(TIMEOUT_MS)
    contexts.append(editor_context)
    editor = watched(editor_context, problems)
    sign_in(editor, stack, add_staff(stack, "赵丽", "editor"))
    editor.get_by_role("link", name="待改进问题").click()
    group = editor.locator(".review-group", has=editor.get_by_role("heading", name=QUESTION))
    expect(group).to_have_count(1, timeout=TIMEOUT_MS)
    expect(group.locator(".review-reason", has_text="市民点了“没有帮助”")).to_be_visible()
    group.get_by_role("link", name="新建知识条目").click()
    expect(editor.locator("#question")).to_have_value(QUESTION)
    expect(editor.locator("#phrasings")).to_have_value(QUESTION)
    editor.locator("#key").fill("patent-certificate-lost")
    editor.locator("#topic").select_option("general")
    editor.locator("#answer").fill(NEW_ANSWER)
    editor.locator("#source_title").fill("国家知识产权局")
    editor.get_by_role("button", name="保存").click()
    expect(editor.locator(".flash")).to_contain_text("待改进问题中的 1 个问题已记为由此条目解答")
    editor.get_by_role("button", name="发布", exact=True).click()
    expect(editor.locator(".flash")).to_contain_text("已发布")
    editor.goto(stack.gateway_url + "/staff/knowledge/review")
    expect(editor.get_by_role("heading", name=QUESTION)).to_have_count(0)
    expect(editor.locator(".review-decisions tbody")).to_contain_text("patent-certificate-lost")

    second = citizen(browser, stack, contexts, problems)
    ask(second, QUESTION)
    expect(second.locator(".msg--bot", has_text=NEW_ANSWER)).to_be_visible(timeout=2 * TIMEOUT_MS)
    with session_factory(stack.settings.database_url)() as db:
        query = select(review.ReviewDecision)
        decisions = db.execute(
            query.where(review.ReviewDecision.detail == "patent-certificate-lost")
        ).scalars()
        assert [(d.action, d.message_count) for d in decisions] == [("knowledge", 1)]
    assert problems == []


def test_an_agent_cannot_open_the_inbox(
    browser: Browser, stack: RunningStack, contexts: list
) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    contexts.append(context)
    page = context.new_page()
    sign_in(page, stack, add_staff(stack, "王小明", "agent"))
    expect(page.locator(".topbar__nav")).not_to_contain_text("待改进问题")
    response = page.goto(stack.gateway_url + "/staff/knowledge/review")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("仅管理员和内容编辑可以访问知识库")
