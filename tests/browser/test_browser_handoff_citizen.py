"""The citizen's side of the human handoff in the web chat, in headless Chromium (360×640).

Real gateway, Rasa and action server (the session `stack`). The staff side is a real staff member
signed in through /staff/login and speaking the live console's websocket (/staff/ws) from Python,
so every frame the citizen's page gets comes from the real server. Outcomes (tickets, ratings)
are read back from the stack's database.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import func, select

from bot.db.engine import session_factory
from bot.db.handoffs import Handoff, Ticket
from bot.settings import PROJECT_ROOT
from tests.support.running_stack import RunningStack
from tests.support.staff_client import Frame, StaffClient, add_staff_account

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE = {"width": 360, "height": 640}
TIMEOUT_MS = 30_000
RESULTS = PROJECT_ROOT / "results"
BOT_TITLE = "宁波知识产权服务助手"
# A cheap hash: each login is fast; the parameters travel with the hash, nothing else changes.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# ---- the staff side -----------------------------------------------------------------------------


@pytest.fixture()
def staff(stack: RunningStack) -> Iterator[StaffClient]:
    """王小明, online in the live console for the test (driven from the test's thread)."""
    username = add_staff_account(stack.settings.database_url, "王小明", hasher=CHEAP_HASHER)
    client = StaffClient.in_thread(stack.gateway_url, username)
    yield client
    client.close()


def of(conversation_id: str, kind: str) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == kind and f.get("conversation_id") == conversation_id


# ---- the citizen side ---------------------------------------------------------------------------


def open_citizen(browser: Browser, stack: RunningStack, contexts: list[BrowserContext]) -> Page:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    contexts.append(context)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(stack.gateway_url + "/")
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def database(stack: RunningStack):
    return session_factory(stack.settings.database_url)()


def latest_handoff(stack: RunningStack) -> Handoff:
    with database(stack) as db:
        return db.execute(select(Handoff).order_by(Handoff.id.desc()).limit(1)).scalar_one()


def waiting_count(stack: RunningStack) -> int:
    with database(stack) as db:
        query = select(func.count()).select_from(Handoff).where(Handoff.status == "waiting")
        return db.execute(query).scalar_one()


def request_person(page: Page, stack: RunningStack, *, typed: bool) -> Handoff:
    """Ask for a person (typed "转人工" through the NLU, or the header button); the new handoff."""
    before = latest_handoff_id(stack)
    if typed:
        ask(page, "转人工")
    else:
        page.locator("#request-human").click()
    expect(page.locator(".msg--user", has_text="转人工").last).to_have_attribute(
        "data-state", "sent"
    )
    for _ in range(100):
        if latest_handoff_id(stack) != before:
            return latest_handoff(stack)
        time.sleep(0.1)
    raise AssertionError("no handoff was started")


def latest_handoff_id(stack: RunningStack) -> int | None:
    with database(stack) as db:
        return db.execute(select(func.max(Handoff.id))).scalar_one()


def ticket_card(page: Page):
    return page.locator(".handoff-card--ticket")


def rating_card(page: Page):
    return page.locator(".handoff-card--rating")


# ---- tests --------------------------------------------------------------------------------------


def test_queue_position_then_a_person_then_closed_rated_and_restored_on_reload(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext], staff: StaffClient
) -> None:
    ahead = waiting_count(stack)  # 0 unless an earlier test left someone waiting
    first, second = open_citizen(browser, stack, contexts), open_citizen(browser, stack, contexts)

    # The first citizen types "转人工": the waiting notice with the place in the queue.
    mine = request_person(first, stack, typed=True)
    assert (mine.status, mine.reason) == ("waiting", "user")
    conversation = mine.conversation_id
    expect(first.locator("#banner")).to_have_text(f"正在为您转接人工客服，您前面还有 {ahead} 位")
    expect(first.locator("#banner")).to_have_attribute("data-position", str(ahead + 1))
    expect(first.locator(".system", has_text="正在为您转接人工客服")).to_be_visible()
    expect(first.locator("#request-human")).to_be_disabled()
    staff.wait_for(lambda f: f["type"] == "new_handoff" and f["handoff"]["handoff_id"] == mine.id)

    # A second citizen (the header's 转人工 button) queues behind; their place moves up later.
    behind = request_person(second, stack, typed=False)
    expect(second.locator("#banner")).to_have_text(
        f"正在为您转接人工客服，您前面还有 {ahead + 1} 位"
    )

    # 王小明 accepts the first: the header names him, a system notice in the log (a live region).
    staff.send({"type": "accept", "handoff_id": mine.id})
    staff.wait_for(lambda f: f["type"] == "accepted" and f["handoff_id"] == mine.id)
    joined = first.locator("#log .system", has_text="人工客服 王小明 已接入")
    expect(joined).to_be_visible()
    expect(first.locator("#log")).to_have_attribute("aria-live", "polite")
    expect(first.locator("#title")).to_have_text("人工客服 王小明")
    expect(first.locator("#banner")).to_be_hidden()
    expect(second.locator("#banner")).to_have_text(f"正在为您转接人工客服，您前面还有 {ahead} 位")

    # Staff typing, then a reply: on the left, his name above it, a person's avatar (not "知").
    staff.send({"type": "typing", "conversation_id": conversation, "on": True})
    expect(first.locator("#typing-text")).to_have_text("对方正在输入…")
    expect(first.locator("#typing .avatar--staff")).to_be_visible()
    reply = "您好，我是王小明。<b>不是粗体</b> 请问您想咨询什么？"
    staff.send({"type": "reply", "conversation_id": conversation, "id": "r1", "text": reply})
    staff.wait_for(lambda f: f["type"] == "ack" and f["client_id"] == "r1")
    bubble = first.locator(".msg--staff").last
    expect(bubble.locator(".msg__bubble")).to_have_text(reply)  # markup stays text
    expect(bubble.locator("b")).to_have_count(0)
    expect(bubble.locator(".msg__name")).to_have_text("王小明")
    expect(bubble.locator(".avatar--staff")).to_have_text("")
    expect(first.locator("#typing")).to_be_hidden()
    name_box = bubble.locator(".msg__name").bounding_box()
    bubble_box = bubble.locator(".msg__bubble").bounding_box()
    avatar_box = bubble.locator(".avatar").bounding_box()
    assert name_box["y"] + name_box["height"] <= bubble_box["y"] + 1  # the name is above
    assert avatar_box["x"] < 20 and bubble_box["x"] > avatar_box["x"] + avatar_box["width"]
    assert first.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The citizen typing: at most one "on" per 2 s, "off" after 3 s idle, and "off" on send.
    first.locator("#text").press_sequentially("我想问一下商标续展", delay=250)  # ~2.3 s
    typed = staff.frames_until(lambda f: of(conversation, "typing")(f) and not f["on"], 8)
    ons = [f for f in typed if of(conversation, "typing")(f) and f["on"]]
    assert 1 <= len(ons) <= 2, typed
    first.locator("#text").press_sequentially("要多久")
    first.locator("#text").press("Enter")
    sent = staff.frames_until(
        lambda f: of(conversation, "message")(f) and f["message"].get("type") == "user"
    )
    typing_frames = [f["on"] for f in sent if of(conversation, "typing")(f)]
    assert typing_frames[-2:] == [True, False], sent  # "off" went before the message
    assert sent[-1]["message"]["text"] == "我想问一下商标续展要多久"
    RESULTS.mkdir(exist_ok=True)
    first.screenshot(path=str(RESULTS / "webchat-handoff-360x640.png"))

    # 王小明 closes: the rating card; the header is the bot's again.
    staff.send({"type": "close", "conversation_id": conversation})
    expect(first.locator(".system", has_text="本次人工服务已结束")).to_be_visible()
    expect(rating_card(first)).to_be_visible()
    expect(first.locator("#title")).to_have_text(BOT_TITLE)
    expect(first.locator("#request-human")).to_be_enabled()
    levels = rating_card(first).locator(".rating__level")
    expect(levels).to_have_text(["非常满意", "满意", "基本满意", "不满意", "非常不满意"])
    first.screenshot(path=str(RESULTS / "webchat-handoff-rating-360x640.png"))

    # A reload restores the closed-unrated state from the history frame: the card, the transcript.
    first.reload()
    expect(rating_card(first)).to_be_visible()
    expect(first.locator(".msg--staff .msg__name")).to_have_text("王小明")
    expect(first.locator(".system", has_text="人工客服 王小明 已接入")).to_have_count(1)
    expect(first.locator("#title")).to_have_text(BOT_TITLE)

    rating_card(first).get_by_role("button", name="提交").click()
    expect(rating_card(first).locator(".handoff-card__error")).to_have_text("请选择满意程度")
    rating_card(first).get_by_role("button", name="非常满意").click()
    expect(rating_card(first).get_by_role("button", name="非常满意")).to_have_attribute(
        "aria-pressed", "true"
    )
    rating_card(first).get_by_label("其他意见（选填）").fill("王小明回答得很清楚")
    rating_card(first).get_by_role("button", name="提交").click()
    expect(first.locator(".handoff-card__done")).to_have_text("感谢您的评价")
    with database(stack) as db:
        rated = db.get(Handoff, mine.id)
        assert (rated.status, rated.rating, rated.rating_comment) == (
            "closed",
            5,
            "王小明回答得很清楚",
        )
        assert rated.rated_at is not None
    first.reload()  # rated: no card any more
    expect(first.locator(".system", has_text="本次人工服务已结束")).to_be_visible()
    expect(rating_card(first)).to_have_count(0)

    # The second citizen: accepted, then handed back to the bot (header and button restored).
    staff.send({"type": "accept", "handoff_id": behind.id})
    expect(second.locator("#title")).to_have_text("人工客服 王小明")
    expect(second.locator("#request-human")).to_be_disabled()
    staff.send({"type": "handback", "conversation_id": behind.conversation_id})
    expect(second.locator(".system", has_text="您可以继续向智能助手提问")).to_be_visible()
    expect(second.locator("#title")).to_have_text(BOT_TITLE)
    expect(second.locator("#request-human")).to_be_enabled()
    expect(rating_card(second)).to_have_count(0)


def test_nobody_online_leave_a_message_with_a_checked_phone(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    page = open_citizen(browser, stack, contexts)
    offline = request_person(page, stack, typed=False)
    assert offline.status == "offline"
    expect(page.locator(".system", has_text="人工客服暂时都不在线")).to_be_visible()
    card = ticket_card(page)
    expect(card).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#title")).to_have_text(BOT_TITLE)

    # Checked in the page before anything is sent: nothing is stored.
    message = f"想咨询商标续展的材料（{uuid.uuid4().hex[:6]}）"
    card.get_by_label("留言内容").fill(message)
    for phone, problem in [
        ("1380013800", "手机号应为11位，您输入的是10位"),
        ("12800138000", "手机号的第二位应为3至9"),
        ("0574", "固定电话应带区号，例如0574-87654321"),
    ]:
        card.get_by_label("联系电话").fill(phone)
        card.get_by_role("button", name="提交").click()
        expect(card.locator(".handoff-card__error")).to_have_text(problem)
        expect(card.get_by_label("联系电话")).to_have_attribute("aria-invalid", "true")
    with database(stack) as db:
        assert db.execute(select(Ticket).where(Ticket.message == message)).first() is None

    # A reload before submitting brings the form back (the history frame's offline state).
    page.reload()
    card = ticket_card(page)
    expect(card).to_be_visible()
    card.get_by_label("联系电话").fill("138 0013 8000")  # spaces are fine
    card.get_by_label("留言内容").fill(message)
    card.get_by_role("button", name="提交").click()
    expect(card.locator(".handoff-card__done")).to_have_text(re.compile(r"^留言已收到（编号 \d+）"))
    with database(stack) as db:
        [ticket] = db.execute(select(Ticket).where(Ticket.message == message)).scalars()
        assert (ticket.phone, ticket.status) == ("13800138000", "open")
        assert (ticket.conversation_id, ticket.handoff_id) == (offline.conversation_id, offline.id)
    expect(card.locator(".handoff-card__done")).to_contain_text(f"编号 {ticket.id}")

    # Left: a reload no longer offers the form.
    page.reload()
    expect(page.locator(".system", has_text="人工客服暂时都不在线")).to_be_visible()
    expect(ticket_card(page)).to_have_count(0)


def test_out_of_hours_the_form_names_the_working_hours(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    # Open only tomorrow (Shanghai time): now is out of hours, whatever the time of day.
    tomorrow = datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday() % 7 + 1
    stack.stop("gateway")
    stack.extra_env["HANDOFF_HOURS"] = f"{tomorrow}-{tomorrow} 09:00-17:00"
    try:
        stack.start("gateway")
        page = open_citizen(browser, stack, contexts)
        offline = request_person(page, stack, typed=False)
        assert offline.status == "offline"
        day = "一二三四五六日"[tomorrow - 1]
        expect(page.locator(".system", has_text="现在是非工作时间")).to_be_visible()
        expect(ticket_card(page)).to_contain_text(f"人工客服工作时间：每周{day} 9:00-17:00")
        expect(ticket_card(page).get_by_label("联系电话")).to_be_editable()
    finally:
        stack.stop("gateway")
        del stack.extra_env["HANDOFF_HOURS"]
        stack.start("gateway")
