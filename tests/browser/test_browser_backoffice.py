"""The back office in two browsers: a citizen in the web chat, staff in the console.

With a stand-in Rasa (runs on any branch): a lead arrives live on the leads page, is claimed and
marked contacted, and the citizen looks it up by reference ("已联系"); a bot-only conversation
ends with the bot's rating request, the citizen rates 不满意 with a comment, the follow-up is due
in 5 working days, an admin closes it and 满意率 changes.

Against the real stack (gateway, Rasa, action server): the same two stories from the consultation
form and from "谢谢". The second needs the dialogue's `{"rating_request": …}` message (issue 15).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from bot.db.conversations import Conversation
from bot.db.engine import session_factory
from bot.db.leads import store_lead
from bot.domain.workdays import WorkCalendar
from tests.browser.test_browser_rich_messages import Gateway
from tests.support.browser import PHONE
from tests.support.running_stack import RunningStack
from tests.support.staff_login import PASSWORD, add_account

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 800}
TIMEOUT_MS = 30_000
CONTACT_PHONE = "13912345678"


def open_chat(browser: Browser, url: str, contexts: list[BrowserContext]) -> Page:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    contexts.append(context)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def sign_in(
    browser: Browser, base: str, username: str, contexts: list[BrowserContext], path: str
) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    contexts.append(context)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(base + "/staff/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=password]").press("Enter")
    expect(page).to_have_url(re.compile(r"/staff$"))
    page.goto(base + path)
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def claim_and_contact(leads_page: Page, reference: str) -> None:
    """From the live row to "已联系": open the lead, claim it, note the call."""
    row = leads_page.locator("#leads tbody tr", has_text=reference)
    expect(row).to_be_visible()  # pushed live, no reload
    expect(row).to_contain_text("139****5678")  # not owned yet: masked
    expect(leads_page.locator("#live-note")).to_contain_text(reference)
    row.get_by_role("link", name=reference).click()
    leads_page.get_by_role("button", name="认领").click()
    expect(leads_page.locator("#lead-phone")).to_contain_text(CONTACT_PHONE)
    leads_page.locator("#note").fill("已电话联系，介绍了专利执行保险")
    leads_page.get_by_role("button", name="标记已联系").click()
    expect(leads_page.locator("#lead-status")).to_have_text("已联系")


def look_up(citizen: Page, reference: str, by_button: bool = False) -> None:
    if by_button:  # the button under the lead's confirmation
        citizen.get_by_role("button", name=f"查询 {reference}").click()
    else:
        ask(citizen, f"查询 {reference}")
    expect(citizen.locator(".msg--bot", has_text="后四位")).to_be_visible()
    ask(citizen, CONTACT_PHONE[-4:])
    expect(
        citizen.locator(".msg--bot", has_text=f"编号 {reference} 的办理状态：已联系")
    ).to_be_visible()


def rate_bad_and_close_follow_up(
    browser: Browser, base: str, citizen: Page, admin: str, contexts: list[BrowserContext]
) -> None:
    """The card after thanks → 不满意 with a comment → the follow-up due in 5 working days →
    an admin closes it; 满意率 changes (from none to 0.0% on a fresh database)."""
    ratings_page = sign_in(browser, base, admin, contexts, "/staff/admin/ratings")
    before = ratings_page.locator("#satisfaction").inner_text()
    card = citizen.locator(".handoff-card--rating")
    expect(card).to_contain_text("请对本次咨询服务进行评价")
    card.get_by_role("button", name="不满意", exact=True).click()
    card.locator("textarea").fill("回答太笼统，没有说清楚要带哪些材料")
    card.get_by_role("button", name="提交").click()
    expect(citizen.locator(".handoff-card__done")).to_have_text("感谢您的评价")

    due = WorkCalendar().add_workdays(datetime.now(ZoneInfo("Asia/Shanghai")).date(), 5)
    follow_ups = ratings_page
    follow_ups.goto(base + "/staff/followups")
    row = follow_ups.locator("#follow-ups tbody tr", has_text="回答太笼统")
    expect(row).to_contain_text(due.isoformat())
    expect(row).to_contain_text("未留电话")
    row.locator("select[name=contact_outcome]").select_option("no_phone")
    row.locator("textarea[name=fix_note]").fill("补充了商标注册材料清单的答案")
    row.get_by_role("button", name="办结").click()
    expect(follow_ups.locator(".flash")).to_contain_text("已办结")
    follow_ups.goto(base + "/staff/admin/ratings")
    expect(follow_ups.locator("#satisfaction")).not_to_have_text(before)
    if before == "—":
        expect(follow_ups.locator("#satisfaction")).to_have_text("0.0%")
    expect(follow_ups.locator("#rating-list")).to_contain_text("已办结")


# ---- with a stand-in Rasa ------------------------------------------------------------------------


def latest_conversation(database_url: str) -> str:
    with session_factory(database_url)() as db:
        query = select(Conversation.id).order_by(Conversation.created_at.desc()).limit(1)
        return str(db.execute(query).scalar_one())


def test_a_lead_arrives_live_is_contacted_and_the_citizen_looks_it_up(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        database_url = gateway.settings.database_url
        agent, other = f"a{tmp_path.name[-6:]}", f"b{tmp_path.name[-6:]}"
        add_account(database_url, agent, "agent", "王小明")
        add_account(database_url, other, "agent", "赵磊")
        base = gateway.url.rstrip("/")
        leads_page = sign_in(browser, base, agent, contexts, "/staff/leads")
        gateway.rasa.reply = [{"text": "好的，请问贵公司的名称是？"}]
        citizen = open_chat(browser, gateway.url, contexts)
        ask(citizen, "我想登记保险咨询")
        expect(citizen.locator(".msg--bot", has_text="贵公司的名称")).to_be_visible()
        with session_factory(database_url)() as db:  # what the action server stores at the end
            reference = store_lead(
                db, company="宁波甬江科技有限公司", contact_name="陈先生", phone=CONTACT_PHONE,
                products="专利执行保险", conversation_id=latest_conversation(database_url),
            ).reference  # fmt: skip
        claim_and_contact(leads_page, reference)
        lead_url = leads_page.url
        expect(leads_page.locator("table.transcript")).to_contain_text("我想登记保险咨询")

        # the list opens on 待联系; this lead is already 已联系
        intruder = sign_in(browser, base, other, contexts, "/staff/leads?status=all")
        expect(intruder.locator("#leads")).to_contain_text("139****5678")
        expect(intruder.locator("#leads")).not_to_contain_text(CONTACT_PHONE)
        response = intruder.goto(lead_url)
        assert response is not None and response.status == 403

        look_up(citizen, reference)


def test_a_bot_only_conversation_is_rated_bad_and_the_follow_up_closed(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        admin = f"adm{tmp_path.name[-6:]}"
        add_account(gateway.settings.database_url, admin, "admin", "李华")
        gateway.rasa.reply = [
            {"text": "不客气，很高兴能帮到您。"},
            {"custom": {"rating_request": {"after": "thank"}}},
        ]
        citizen = open_chat(browser, gateway.url, contexts)
        ask(citizen, "谢谢")
        expect(citizen.locator(".msg--bot", has_text="不客气")).to_be_visible()
        rate_bad_and_close_follow_up(browser, gateway.url.rstrip("/"), citizen, admin, contexts)


# ---- against the real stack -----------------------------------------------------------------


@pytest.mark.e2e
def test_real_stack_consultation_form_lead_contacted_and_looked_up(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    agent = f"lead{datetime.now():%H%M%S%f}"
    add_account(stack.settings.database_url, agent, "agent", "王小明")
    leads_page = sign_in(browser, stack.gateway_url, agent, contexts, "/staff/leads")
    citizen = open_chat(browser, stack.gateway_url + "/", contexts)
    ask(citizen, "有没有专利保险")
    citizen.get_by_role("button", name="预约保险咨询").click()
    expect(citizen.locator(".msg--bot", has_text="公司").last).to_be_visible()
    ask(citizen, "宁波甬江科技有限公司")
    expect(citizen.locator(".msg--bot", has_text="联系人").last).to_be_visible()
    ask(citizen, "陈先生")
    expect(citizen.locator(".msg--bot", has_text="联系电话").last).to_be_visible()
    ask(citizen, CONTACT_PHONE)
    citizen.get_by_role("button", name="专利执行保险").last.click()
    done = citizen.locator(".msg--bot", has_text="已登记您的保险咨询")
    expect(done).to_be_visible()
    found = re.search(r"编号 (ZX-[2-9A-Z]{6})", done.inner_text())
    assert found, done.inner_text()
    claim_and_contact(leads_page, found.group(1))
    look_up(citizen, found.group(1), by_button=True)


@pytest.mark.e2e
def test_real_stack_bot_only_conversation_ends_with_thanks_and_is_rated_bad(
    browser: Browser, stack: RunningStack, contexts: list[BrowserContext]
) -> None:
    """Needs the dialogue branch (issue 15): the bot asks for a rating after thanks."""
    admin = f"adm{datetime.now():%H%M%S%f}"
    add_account(stack.settings.database_url, admin, "admin", "李华")
    citizen = open_chat(browser, stack.gateway_url + "/", contexts)
    ask(citizen, "商标受理窗口在哪")
    expect(citizen.locator(".msg--bot").nth(1)).to_be_visible()
    ask(citizen, "谢谢")
    rate_bad_and_close_follow_up(browser, stack.gateway_url, citizen, admin, contexts)
