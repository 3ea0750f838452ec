"""Human handoff in two browsers against the real stack: a citizen in the web chat, staff in the
live console (/staff). Real gateway, Rasa and action server; the staff account, the canned reply
and the outcome (rating, comment, who accepted) live in the stack's database.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import pytest
import yaml
from argon2 import PasswordHasher
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.db.handoffs import Handoff
from bot.db.staff import CannedReply
from bot.settings import PROJECT_ROOT
from bot.staff import accounts
from tests.support.running_stack import RunningStack

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DESKTOP = {"width": 1366, "height": 800}
PHONE = {"width": 360, "height": 640}
TIMEOUT_MS = 30_000
RESULTS = PROJECT_ROOT / "results"
PASSWORD = "handoff-test-password"
# The hash's parameters travel with it: a cheap one makes each login fast, nothing else changes.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
TRADEMARK_WINDOW = next(
    point["name"]
    for point in yaml.safe_load((PROJECT_ROOT / "data/kb/service_points.yml").read_text("utf-8"))[
        "service_points"
    ]
    if point["service_type"] == "商标受理窗口"
)
# Counts what the console asks the browser for: notifications shown and beeps played.
ALERT_SPY = """
window.__notified = [];
window.__beeps = 0;
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = function (title, options) {
    window.__notified.push({ title: title, body: (options && options.body) || "" });
    return new Real(title, options);
  };
  window.Notification.requestPermission = Real.requestPermission.bind(Real);
  Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
}
const realOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__beeps += 1;
  return realOscillator.apply(this, arguments);
};
"""


@dataclass(frozen=True)
class Agent:
    id: int
    username: str
    display_name: str


def add_staff(stack: RunningStack, display_name: str, role: str = "agent") -> Agent:
    username = f"t{uuid.uuid4().hex[:10]}"
    with session_factory(stack.settings.database_url)() as db:
        account = accounts.create_account(
            db, username, display_name, PASSWORD, role=role, hasher=CHEAP_HASHER
        )
        return Agent(account.id, username, display_name)


def add_canned_reply(stack: RunningStack, title: str, text: str) -> None:
    with session_factory(stack.settings.database_url)() as db:
        db.add(CannedReply(title=title, text=text))
        db.commit()


def latest_handoff(stack: RunningStack) -> Handoff:
    with session_factory(stack.settings.database_url)() as db:
        return db.execute(select(Handoff).order_by(Handoff.id.desc()).limit(1)).scalar_one()


def handoff(stack: RunningStack, handoff_id: int) -> Handoff:
    with session_factory(stack.settings.database_url)() as db:
        return db.get(Handoff, handoff_id)


def user_texts(stack: RunningStack, conversation_id: str) -> list[str]:
    with session_factory(stack.settings.database_url)() as db:
        query = select(Message.text).where(
            Message.conversation_id == conversation_id, Message.role == "user"
        )
        return list(db.execute(query.order_by(Message.id)).scalars())


def open_citizen(browser: Browser, stack: RunningStack, contexts: list[BrowserContext]) -> Page:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    contexts.append(context)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(stack.gateway_url + "/")
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def open_console(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext], agent: Agent
) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    contexts.append(context)
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["notifications"], origin=stack.gateway_url)
    context.add_init_script(ALERT_SPY)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # 结束会话 asks confirm()
    page.goto(stack.gateway_url + "/staff")
    expect(page).to_have_url(re.compile(r"/staff/login"))  # no session: the login page
    page.locator("input[name=username]").fill(agent.username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page).to_have_url(stack.gateway_url + "/staff")
    expect(page.locator("#conn-state")).to_have_text("在线")
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def request_person(stack: RunningStack, citizen: Page, first_question: str) -> Handoff:
    """The citizen asks for a person; returns the new handoff (this conversation's, checked)."""
    ask(citizen, "我要转人工")
    expect(citizen.locator("#banner")).to_contain_text("正在为您转接人工客服")
    waiting = latest_handoff(stack)
    assert waiting.status == "waiting"
    assert first_question in user_texts(stack, waiting.conversation_id)
    return waiting


def queue_item(console: Page, group: str, conversation_id: str):
    return console.locator(f'#queue-{group} .qitem[data-conversation-id="{conversation_id}"]')


def test_citizen_and_staff_talk_then_back_to_the_bot_then_closed_and_rated(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    agent = add_staff(stack, "王小明")
    canned_text = f"您好，我是人工客服王小明，很高兴为您服务。（{uuid.uuid4().hex[:4]}）"
    add_canned_reply(stack, "开场问候", canned_text)
    console = open_console(browser, stack, contexts, agent)
    expect(console.locator("#queue-others")).to_have_count(0)  # an agent sees no one else's
    console.get_by_role("button", name="开启提醒").click()  # the gesture that unlocks sound
    expect(console.get_by_role("button", name="提醒已开启")).to_be_visible()

    citizen = open_citizen(browser, stack, contexts)
    ask(citizen, "有哪些知识产权保险")
    expect(citizen.locator(".card--insurance").first).to_be_visible()
    first = request_person(stack, citizen, "有哪些知识产权保险")
    conversation = first.conversation_id

    # The queue: how long, why, what the bot was asked before (as topics), the last words.
    waiting = queue_item(console, "waiting", conversation)
    expect(waiting).to_contain_text("知识产权保险")
    expect(waiting).to_contain_text("市民要求转人工")
    expect(waiting).to_contain_text("“我要转人工”")
    expect(waiting.locator(".qitem__wait")).to_have_text(re.compile(r"^已等待 (\d+秒|\d+分\d+秒)$"))
    console.wait_for_function(
        "() => window.__notified.some(n => n.title === '新的转人工请求'"
        " && n.body.includes('知识产权保险'))"
    )
    assert console.evaluate("window.__beeps") > 0

    waiting.click()
    transcript = console.locator("#transcript")
    expect(transcript.locator(".line--user", has_text="有哪些知识产权保险")).to_be_visible()
    expect(transcript.locator(".line--bot").first).to_be_visible()
    expect(console.locator("#reply")).to_be_disabled()  # not accepted yet
    console.locator("#accept").click()

    expect(citizen.locator(".system", has_text="人工客服 王小明 已接入")).to_be_visible()
    expect(citizen.locator("#title")).to_have_text("人工客服 王小明")
    expect(queue_item(console, "mine", conversation)).to_be_visible()
    expect(queue_item(console, "waiting", conversation)).to_have_count(0)
    expect(console.locator("#reply")).to_be_enabled()

    # Staff → citizen, with the typing indicator first; a canned reply from the picker.
    console.locator("#reply").press_sequentially("请问您", delay=30)
    expect(citizen.locator("#typing-text")).to_be_visible()
    console.locator("#reply").press_sequentially("是哪家企业？")
    console.locator("#reply").press("Enter")
    staff_line = transcript.locator(".line--staff", has_text="请问您是哪家企业？")
    expect(staff_line).to_have_attribute("data-state", "sent")
    reply = citizen.locator(".msg--staff", has_text="请问您是哪家企业？")
    expect(reply).to_be_visible()
    expect(reply).to_contain_text("王小明")
    expect(citizen.locator("#typing")).to_be_hidden()
    console.locator("#canned").select_option(label="开场问候")
    expect(console.locator("#reply")).to_have_value(canned_text)
    console.locator("#send").click()
    expect(citizen.locator(".msg--staff", has_text=canned_text)).to_be_visible()

    # Citizen → staff: typing, then the exact text; the bot stays quiet while a person answers.
    bot_answers = citizen.locator(".msg--bot").count()
    citizen.locator("#text").press_sequentially("宁波某某科技", delay=30)
    expect(console.locator("#citizen-typing")).to_be_visible()
    citizen.locator("#text").press_sequentially("有限公司，想问专利执行保险")
    citizen.locator("#text").press("Enter")
    expect(
        transcript.locator(".line--user", has_text="宁波某某科技有限公司，想问专利执行保险")
    ).to_be_visible()
    expect(console.locator("#citizen-typing")).to_be_hidden()
    console.locator("#reply").fill("好的，我把专利执行保险的资料发给您。")
    console.locator("#reply").press("Enter")
    expect(citizen.locator(".msg--staff", has_text="我把专利执行保险的资料发给您")).to_be_visible()
    expect(citizen.locator(".msg--bot")).to_have_count(bot_answers)

    # A private note: listed for staff, never shown to the citizen.
    console.locator("#note-text").fill("企业关注专利执行保险，需回访报价")
    console.locator("#add-note").click()
    note = console.locator("#notes .pnote", has_text="企业关注专利执行保险，需回访报价")
    expect(note).to_contain_text("王小明")
    expect(citizen.get_by_text("需回访报价")).to_have_count(0)

    RESULTS.mkdir(exist_ok=True)
    console.screenshot(path=str(RESULTS / "staff-console.png"))

    # Back to the bot: it answers again, from the knowledge base.
    console.locator("#handback").click()
    expect(citizen.locator("#title")).to_have_text("宁波知识产权服务助手")
    expect(queue_item(console, "mine", conversation)).to_have_count(0)
    expect(console.locator("#reply")).to_be_disabled()
    ask(citizen, "商标受理窗口在哪")
    expect(citizen.locator(".card", has_text=TRADEMARK_WINDOW)).to_be_visible()
    assert handoff(stack, first.id).status == "returned"

    # A second handoff: the queue now names both topics; staff close it and the citizen rates.
    second = request_person(stack, citizen, "商标受理窗口在哪")
    assert second.conversation_id == conversation and second.id != first.id
    waiting = queue_item(console, "waiting", conversation)
    expect(waiting).to_contain_text("知识产权保险、商标注册与受理窗口")
    waiting.click()
    expect(console.locator("#accept")).to_be_enabled()
    console.locator("#accept").click()
    expect(console.locator("#close")).to_be_enabled()
    expect(citizen.locator(".system", has_text="人工客服 王小明 已接入")).to_have_count(2)
    console.locator("#close").click()  # confirm() is accepted

    rating = citizen.locator(".handoff-card--rating")
    expect(rating).to_be_visible()
    rating.get_by_role("button", name="满意", exact=True).click()
    rating.get_by_label("其他意见（选填）").fill("回复很及时，谢谢王小明")
    rating.get_by_role("button", name="提交").click()
    expect(citizen.get_by_text("感谢您的评价")).to_be_visible()
    expect(queue_item(console, "mine", conversation)).to_have_count(0)

    rated = handoff(stack, second.id)
    assert (rated.status, rated.agent_id) == ("closed", agent.id)
    assert (rated.rating, rated.rating_comment) == (4, "回复很及时，谢谢王小明")
    assert rated.rated_at is not None


def test_two_staff_accept_at_once_exactly_one_wins_then_a_restart_and_a_transfer(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    staff = [add_staff(stack, "李娜", role="admin"), add_staff(stack, "张伟")]
    consoles = [open_console(browser, stack, contexts, a) for a in staff]
    citizen = open_citizen(browser, stack, contexts)
    ask(citizen, "专利预审怎么申请")
    expect(citizen.locator(".msg--bot").nth(1)).to_be_visible()
    requested = request_person(stack, citizen, "专利预审怎么申请")
    conversation = requested.conversation_id

    for console in consoles:
        item = queue_item(console, "waiting", conversation)
        expect(item).to_contain_text("专利预审快速通道")
        item.click()
        expect(console.locator("#accept")).to_be_enabled()
    # Both click 接入 at the same instant (one clock for both pages: the same browser).
    at = time.time() * 1000 + 400
    for console in consoles:
        console.evaluate(
            "at => setTimeout(() => document.getElementById('accept').click(), at - Date.now())",
            at,
        )

    expect(citizen.locator(".system", has_text="已接入")).to_have_count(1)
    winner_id = None
    for _ in range(50):
        winner_id = handoff(stack, requested.id).agent_id
        if winner_id is not None:
            break
        time.sleep(0.1)
    [winner] = [a for a in staff if a.id == winner_id]
    [loser] = [a for a in staff if a.id != winner_id]
    winning, losing = (consoles[staff.index(a)] for a in (winner, loser))

    expect(citizen.locator("#title")).to_have_text(f"人工客服 {winner.display_name}")
    expect(queue_item(winning, "mine", conversation)).to_be_visible()
    expect(losing.locator(".toast--error")).to_contain_text(
        f"该会话已由 {winner.display_name} 接入"
    )
    expect(queue_item(losing, "waiting", conversation)).to_have_count(0)
    expect(losing.locator("#conv-meta")).to_contain_text(f"客服：{winner.display_name}")
    expect(losing.locator("#accept")).to_be_disabled()
    if loser.id == staff[0].id:  # the admin sees who serves whom and may step in
        others = queue_item(losing, "others", conversation)
        expect(others).to_contain_text(f"客服：{winner.display_name}")
        expect(others).to_contain_text("专利预审快速通道")
        expect(losing.locator("#composer-hint")).to_contain_text("以管理员身份介入")
    else:
        expect(losing.locator("#queue-others")).to_have_count(0)
        expect(losing.locator("#reply")).to_be_disabled()
    assert handoff(stack, requested.id).status == "active"

    # The gateway restarts: the console reconnects and opens the same conversation again (its
    # transcript, emptied here, can only come back from that), with what the citizen typed
    # meanwhile (kept in the citizen's outbox and sent on their reconnect).
    winning.evaluate("document.getElementById('transcript').textContent = ''")
    stack.stop("gateway")
    try:
        expect(winning.locator("#conn-state")).to_have_text("连接中…")
        ask(citizen, "刚才网络断了，您还在吗")
    finally:
        stack.start("gateway")
    # Back-off: each page retries at most every 10 s.
    for console in consoles:
        expect(console.locator("#conn-state")).to_have_text("在线", timeout=TIMEOUT_MS)
    transcript = winning.locator("#transcript")
    expect(transcript.locator(".line--user", has_text="专利预审怎么申请")).to_be_visible()
    expect(transcript.locator(".line--user", has_text="刚才网络断了，您还在吗")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    expect(queue_item(winning, "mine", conversation)).to_be_visible()

    # 转接: the other one takes over, is told so, answers, and closes.
    choice = winning.locator(f'#transfer-agent option[value="{loser.id}"]')
    expect(choice).to_be_enabled()  # online again
    winning.locator("#transfer-agent").select_option(str(loser.id))
    winning.locator("#transfer").click()  # confirm() is accepted
    transferred = f"已为您转接至人工客服 {loser.display_name}"
    expect(citizen.locator(".system", has_text=transferred)).to_be_visible()
    expect(citizen.locator("#title")).to_have_text(f"人工客服 {loser.display_name}")
    expect(queue_item(winning, "mine", conversation)).to_have_count(0)
    if winner.id != staff[0].id:  # an agent no longer answers; an admin still may
        expect(winning.locator("#reply")).to_be_disabled()
    expect(losing.locator(".toast--info", has_text="有一个会话转接给您")).to_be_visible()
    queue_item(losing, "mine", conversation).click()
    expect(losing.locator("#reply")).to_be_enabled()
    losing.locator("#reply").fill(f"您好，我是{loser.display_name}，接着为您服务。")
    losing.locator("#reply").press("Enter")
    expect(citizen.locator(".msg--staff", has_text="接着为您服务")).to_contain_text(
        loser.display_name
    )
    losing.locator("#close").click()  # leaves no open handoff behind for other tests
    expect(citizen.locator(".handoff-card--rating")).to_be_visible()
    assert (handoff(stack, requested.id).status, handoff(stack, requested.id).agent_id) == (
        "closed",
        loser.id,
    )
