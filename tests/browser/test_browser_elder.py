"""长辈版 and accessibility of the web chat and the staff console, measured in Chromium at 360×640.

A real gateway (SQLite) in front of a stand-in for Rasa, so the page shows answers with quick
replies, cards, the leave-a-message form and the rating card within seconds. The 长辈版 numbers
(text size, line height, contrast computed from the colours, target size, no animation) are read
from computed styles; axe-core (vendored from npm) checks every page for serious or critical
violations. Screenshots of both modes at phone size are saved under results/ (webchat-*-360x640.png)
to look at.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select

from bot.db import handoffs
from bot.db.conversations import Conversation
from bot.db.engine import session_factory
from bot.settings import PROJECT_ROOT, WechatConfig
from bot.staff import accounts
from bot.wechat.quota import MESSAGE_WINDOW_SECONDS
from tests.browser.test_browser_rich_messages import INSURANCE, SERVICE_POINTS, Gateway
from tests.support.axe import axe_violations
from tests.support.browser import PHONE
from tests.support.fake_wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWechat,
    new_openid,
    sign,
    text_xml,
)
from tests.support.staff_login import FAST_HASHER, PASSWORD

pytestmark = pytest.mark.browser

ANSWER = [
    {
        "text": "商标注册可以网上办理，也可以到**商标受理窗口**办理，详见 https://sbj.cnipa.gov.cn/",
        "buttons": [
            {"title": "要带什么材料", "payload": "/ask_materials"},
            {"title": "要多少钱", "payload": "/ask_fees"},
            {"title": "转人工", "payload": "/request_human"},
        ],
    },
    {"text": "可参考以下保险：", "custom": INSURANCE},
    {"custom": SERVICE_POINTS},
]
# A Chinese voice for speechSynthesis (headless Chromium has none), and a record of what is spoken.
CHINESE_VOICE = """
window.__spoken = [];
if (window.speechSynthesis) {
  const voice = {lang: "zh-CN", name: "测试中文", voiceURI: "test-zh", default: true};
  speechSynthesis.getVoices = () => [voice];
  speechSynthesis.speak = (u) => { window.__spoken.push({text: u.text, lang: u.lang}); };
}
"""
ENGLISH_ONLY = """
if (window.speechSynthesis) {
  speechSynthesis.getVoices = () => [{lang: "en-US", name: "English", voiceURI: "en"}];
}
"""
ELDER_ON = "try { localStorage.setItem('ipbot.elder', '1'); } catch (e) {}"

# The 长辈版 numbers checked in the page (see the script); returns the problems found.
MEASURE = (Path(__file__).parent / "elder_measure.js").read_text("utf-8")
# Screenshots at phone size, to look at (git-ignored).
RESULTS = PROJECT_ROOT / "results"


def open_chat(
    browser: Browser,
    url: str,
    contexts: list[BrowserContext],
    *scripts: str,
    bypass_csp: bool = False,
) -> Page:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=1, locale="zh-CN", bypass_csp=bypass_csp
    )
    contexts.append(context)
    context.set_default_timeout(10_000)
    for script in scripts:
        context.add_init_script(script)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(url)
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def is_elder(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.classList.contains('elder')"))


def show_answer(page: Page, gateway: Gateway) -> None:
    gateway.rasa.reply = ANSWER
    ask(page, "怎么注册商标")
    expect(page.locator(".card", has_text="测试站")).to_be_visible()
    page.locator("#log").evaluate("log => log.scrollTop = 0")


def measure(page: Page) -> list[str]:
    return list(page.evaluate(MEASURE))


# The header at 360 px: the title whole, every control inside the page and none over another.
HEADER_FITS = """() => {
  const problems = [];
  const header = document.querySelector(".chat__header");
  const title = header.querySelector("h1");
  const text = document.createRange();
  text.selectNodeContents(title);
  if (text.getBoundingClientRect().width > title.clientWidth + 0.5) problems.push("title cut");
  const parts = Array.from(header.querySelectorAll("button, h1"));
  const boxes = parts.map((e) => [e.id || e.tagName, e.getBoundingClientRect()]);
  for (const [name, r] of boxes) {
    if (r.left < 0 || r.right > innerWidth) problems.push(name + " outside the page");
  }
  boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, q]) => {
    const apart = r.right <= q.left || q.right <= r.left || r.bottom <= q.top || q.bottom <= r.top;
    if (!apart) problems.push(a + " over " + b);
  }));
  return problems;
}"""


def scroll_to(page: Page, element: Locator, block: str = "start") -> None:
    """Scroll this element into view at the top (block "start") or the bottom ("end") of the log,
    as the browser does for a search in the page or a screen reader: the log scrolls, never the
    page (its header stays in view)."""
    element.evaluate(f"e => e.scrollIntoView({{block: '{block}'}})")
    assert page.locator(".chat__header").evaluate("e => e.getBoundingClientRect().top") == 0
    edge = "top" if block == "start" else "bottom"
    mine = element.evaluate(f"e => e.getBoundingClientRect().{edge}")
    log = page.locator("#log").evaluate(f"e => e.getBoundingClientRect().{edge}")
    assert abs(mine - log) <= 1, (mine, log)


def screenshot(page: Page, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / name))


# ---- 长辈版 -------------------------------------------------------------------------------------


def test_elder_mode_meets_the_numbers_and_is_remembered(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts, CHINESE_VOICE)
        show_answer(page, gateway)
        standard = measure(page)  # the standard page is smaller: the measure can fail
        assert any("font 14px" in p for p in standard), standard
        assert any(" target " in p for p in standard), standard
        expect(page.locator(".read-aloud:visible")).to_have_count(0)  # 朗读 is part of 长辈版
        scroll_to(page, page.locator(".msg--user", has_text="怎么注册商标"))
        screenshot(page, "webchat-standard-answer-360x640.png")

        # An older reader has to find the switch first: a full target with its word in large
        # type on the standard page too, and the header still whole at 360 px.
        toggle = page.get_by_role("switch", name="长辈版")
        expect(toggle).to_have_attribute("aria-checked", "false")
        style = toggle.evaluate(
            "e => { const s = getComputedStyle(e); return {height: parseFloat(s.height), "
            "font: parseFloat(s.fontSize), border: parseFloat(s.borderTopWidth)}; }"
        )
        assert style["height"] >= 44 and style["font"] >= 16 and style["border"] >= 2, style
        assert page.evaluate(HEADER_FITS) == []
        toggle.click()
        expect(toggle).to_have_attribute("aria-checked", "true")
        assert is_elder(page)
        page.reload()  # remembered by the browser
        expect(page.locator("#state-text")).to_have_text("在线")
        assert is_elder(page)
        # Its name stays "长辈版" (the tick is not read out): aria-checked says it is on.
        switch = page.get_by_role("switch", name="长辈版", exact=True)
        expect(switch).to_have_attribute("aria-checked", "true")
        expect(page.locator(".card", has_text="测试站")).to_be_visible()
        for top in (0, 10_000):  # the start and the end of the conversation
            page.locator("#log").evaluate(f"log => log.scrollTop = {top}")
            assert measure(page) == []
        assert page.evaluate(HEADER_FITS) == []
        scroll_to(page, page.locator(".msg--user", has_text="怎么注册商标"))
        screenshot(page, "webchat-elder-answer-360x640.png")
        scroll_to(page, page.locator(".msg--bot", has_text="可参考以下保险"))
        screenshot(page, "webchat-elder-cards-360x640.png")
        body = page.locator(".msg__bubble").first
        assert body.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") >= 20

        # No motion: the typing dots stand still while the bot is answering.
        gateway.rasa.delay = 1.5
        gateway.rasa.reply = [{"text": "好的"}]
        ask(page, "慢一点")
        expect(page.locator("#typing")).to_be_visible()
        assert page.evaluate("document.getAnimations().length") == 0
        assert (
            page.locator(".typing__dots i").first.evaluate("e => getComputedStyle(e).animationName")
            == "none"
        )
        expect(page.locator(".msg--bot", has_text="好的")).to_be_visible()

        # 朗读 on every bot message; it speaks the message in Chinese.
        bot_messages = page.locator(".msg--bot")
        expect(page.locator(".msg--bot .read-aloud")).to_have_count(bot_messages.count())
        answer = page.locator(".msg--bot", has_text="可参考以下保险")
        answer.get_by_role("button", name="朗读这条消息").click()
        spoken = page.evaluate("window.__spoken")
        assert len(spoken) == 1 and spoken[0]["lang"] == "zh-CN"
        assert "可参考以下保险" in spoken[0]["text"] and "专利执行保险" in spoken[0]["text"]

        # Back to the standard page, and remembered too.
        page.get_by_role("switch", name="长辈版").click()
        assert not is_elder(page)
        page.reload()
        expect(page.locator("#state-text")).to_have_text("在线")
        assert not is_elder(page)


def test_elder_mode_with_animations_in_the_standard_page(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    """The standard page animates the typing dots: the 长辈版 check above can fail."""
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts)
        gateway.rasa.delay = 1.5
        ask(page, "慢一点")
        expect(page.locator("#typing")).to_be_visible()
        assert page.evaluate("document.getAnimations().length") > 0


def test_read_aloud_is_hidden_without_a_chinese_voice(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts, ENGLISH_ONLY, ELDER_ON)
        assert is_elder(page)
        ask(page, "你好")
        expect(page.locator(".msg--bot")).to_have_count(2)
        expect(page.locator(".read-aloud")).to_have_count(0)


def test_typing_changbeiban_switches_without_sending(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts)
        ask(page, "长辈版")
        expect(page.locator(".notice", has_text="已切换到长辈版")).to_be_visible()
        assert is_elder(page)
        expect(page.locator("#text")).to_have_value("")
        expect(page.locator(".msg--user")).to_have_count(0)  # not a message to the bot
        ask(page, "标准版")
        expect(page.locator(".notice", has_text="已切换到标准版")).to_be_visible()
        assert not is_elder(page)
        ask(page, "大字")
        expect(page.locator(".notice", has_text="已切换到长辈版")).to_have_count(2)
        assert is_elder(page)
        ask(page, "大字的商标怎么注册")  # a question that merely contains the word goes to the bot
        expect(page.locator(".msg--user", has_text="大字的商标怎么注册")).to_have_count(1)
        expect(page.locator(".msg--bot")).to_have_count(2)  # the welcome and the answer
        assert [m["message"] for m in gateway.rasa.received] == ["大字的商标怎么注册"]


# ---- axe-core -----------------------------------------------------------------------------------


def conversation_of(gateway: Gateway) -> str:
    with session_factory(gateway.settings.database_url)() as db:
        query = select(Conversation.id).order_by(Conversation.created_at.desc()).limit(1)
        return str(db.execute(query).scalar_one())


def close_a_handoff(gateway: Gateway, conversation_id: str) -> None:
    """A person served this conversation and closed it: the page then asks for a rating."""
    with session_factory(gateway.settings.database_url)() as db:
        handoff = handoffs.create_handoff(db, conversation_id, "user", [], handoffs.ACTIVE)
        assert handoffs.end(db, handoff.id, handoffs.CLOSED, handoff.agent_id)


def assert_no_serious_violations(page: Page, where: str) -> None:
    found = axe_violations(page)
    assert found == [], f"{where}: {found}"


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_chat_page_has_no_serious_axe_violation(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext], elder: bool
) -> None:
    scripts = [CHINESE_VOICE] + ([ELDER_ON] if elder else [])
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts, *scripts, bypass_csp=True)
        assert is_elder(page) == elder
        assert_no_serious_violations(page, "welcome")
        show_answer(page, gateway)
        assert_no_serious_violations(page, "answer with quick replies and cards")
        gateway.rasa.reply = []  # nobody online: the leave-a-message form
        page.locator("#request-human").click()
        expect(page.locator(".handoff-card--ticket")).to_be_visible()
        page.locator(".handoff-card--ticket button[type=submit]").click()  # its error shown too
        expect(page.locator(".handoff-card__error")).to_be_visible()
        assert_no_serious_violations(page, "leave-a-message form")
        if elder:  # the field with the mistake is marked in the error's red
            phone = page.locator(".handoff-card--ticket input[name=phone]")
            expect(phone).to_have_css("border-top-color", "rgb(140, 17, 17)")
            scroll_to(page, page.locator(".handoff-card--ticket"), block="end")
            screenshot(page, "webchat-elder-form-360x640.png")
        close_a_handoff(gateway, conversation_of(gateway))
        page.reload()
        expect(page.locator(".handoff-card--rating")).to_be_visible()
        assert_no_serious_violations(page, "rating card")
        if elder:
            assert measure(page) == []
            scroll_to(page, page.locator(".handoff-card--rating"))
            screenshot(page, "webchat-elder-rating-360x640.png")


def test_staff_login_and_console_have_no_serious_axe_violation(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    with Gateway(tmp_path) as gateway:
        username = f"a{uuid.uuid4().hex[:8]}"
        with session_factory(gateway.settings.database_url)() as db:
            accounts.create_account(
                db, username, "王小明", PASSWORD, role="agent", hasher=FAST_HASHER
            )
        context = browser.new_context(viewport={"width": 1366, "height": 800}, bypass_csp=True)
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(gateway.url + "staff")
        expect(page).to_have_url(re.compile(r"/staff/login"))
        assert_no_serious_violations(page, "staff login")
        page.locator("input[name=username]").fill(username)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("input[name=password]").press("Enter")
        expect(page).to_have_url(gateway.url + "staff")
        expect(page.locator("#conn-state")).to_have_text("在线")
        assert_no_serious_violations(page, "staff console")


# ---- the keyboard alone -------------------------------------------------------------------------

FOCUS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {id: el.id, tag: el.tagName, text: (el.textContent || "").trim(), cls: el.className,
          outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
          visible: el.matches(":focus-visible")};
}"""


def tab_to(page: Page, matches: Any, backwards: bool = False, limit: int = 40) -> dict[str, Any]:
    """Press Tab (Shift+Tab) until the focused element satisfies `matches`; its focus must show."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = page.evaluate(FOCUS)
        if focused["tag"] != "BODY":
            assert focused["visible"] and focused["outline"] != "none" and focused["width"] >= 2, (
                focused
            )
        if matches(focused):
            return focused
    raise AssertionError("not reached with the keyboard")


@pytest.mark.parametrize("elder", [False, True], ids=["standard", "elder"])
def test_a_whole_conversation_with_the_keyboard_alone(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext], elder: bool
) -> None:
    with Gateway(tmp_path) as gateway:
        page = open_chat(browser, gateway.url, contexts, *([ELDER_ON] if elder else []))
        gateway.rasa.reply = ANSWER
        tab_to(page, lambda f: f["id"] == "text")
        page.keyboard.type("怎么注册商标")
        page.keyboard.press("Enter")
        expect(page.locator(".card", has_text="测试站")).to_be_visible()
        # The answer arrives in the log, the one live region it is announced by.
        live = page.locator(".msg--bot", has_text="网上办理").evaluate(
            "e => { let n = 0; for (let a = e; a; a = a.parentElement) "
            "if ((a.getAttribute('aria-live') || 'off') !== 'off') n++; return n; }"
        )
        assert live == 1
        expect(page.locator("#announcer")).to_have_text("")

        # Back from the composer to the card's phone link, then to a quick reply.
        tab_to(page, lambda f: f["tag"] == "A" and "0574" in f["text"], backwards=True)
        gateway.rasa.reply = [{"text": "需要身份证明和商标图样"}]
        tab_to(page, lambda f: f["text"] == "要带什么材料", backwards=True)
        page.keyboard.press("Enter")
        expect(page.locator(".msg--user", has_text="要带什么材料")).to_be_visible()
        expect(page.locator(".msg--bot", has_text="需要身份证明")).to_be_visible()
        assert gateway.rasa.received[-1]["message"] == "/ask_materials"

        # 长辈版 and back, 转人工 and 新对话 from the keyboard.
        tab_to(page, lambda f: f["id"] == "elder-toggle")
        page.keyboard.press("Space")
        assert is_elder(page) != elder
        page.keyboard.press("Enter")
        assert is_elder(page) == elder
        gateway.rasa.reply = []
        tab_to(page, lambda f: f["id"] == "request-human", backwards=True)
        page.keyboard.press("Enter")
        expect(page.locator(".msg--user", has_text="转人工")).to_be_visible()
        expect(page.locator(".handoff-card--ticket")).to_be_visible()
        tab_to(page, lambda f: f["id"] == "new-conversation")
        page.keyboard.press("Enter")
        expect(page.locator(".msg--user")).to_have_count(0)
        expect(page.locator(".msg--bot").first).to_contain_text("您好")


# ---- WeChat's allowance in the console ----------------------------------------------------------

# The console shows times in the browser's zone: fixed, so that the test can name the time.
CONSOLE_ZONE = "Asia/Shanghai"


@contextmanager
def wechat_gateway(tmp_path: Path) -> Iterator[tuple[Gateway, FakeWechat]]:
    """A gateway serving WeChat in front of the local fake of WeChat's API, which counts the
    customer-service messages as WeChat does (5 within 48 hours of a citizen's message)."""
    fake = FakeWechat(enforce_quotas=True).start()
    config = WechatConfig(
        token=TOKEN, app_id=APP_ID, app_secret=APP_SECRET, aes_key=AES_KEY, api_base=fake.url
    )
    try:
        with Gateway(tmp_path, wechat=config, handoff_hours="always") as gateway:
            yield gateway, fake
    finally:
        fake.stop()


def console_with_a_wechat_handoff(
    browser: Browser,
    gateway: Gateway,
    fake: FakeWechat,
    contexts: list[BrowserContext],
    bypass_csp: bool = False,
    accept: bool = True,
) -> tuple[Page, str]:
    """An agent signed in to the console who has opened (and accepted, unless told not to) a
    WeChat citizen's request for a person: the console, and the citizen's openid."""
    username = f"a{uuid.uuid4().hex[:8]}"
    with session_factory(gateway.settings.database_url)() as db:
        accounts.create_account(db, username, "王小明", PASSWORD, role="agent", hasher=FAST_HASHER)
    context = browser.new_context(
        viewport={"width": 1366, "height": 800}, timezone_id=CONSOLE_ZONE, bypass_csp=bypass_csp
    )
    contexts.append(context)
    context.set_default_timeout(10_000)
    console = context.new_page()
    console.on("dialog", lambda dialog: dialog.accept())
    console.goto(gateway.url + "staff")
    console.locator("input[name=username]").fill(username)
    console.locator("input[name=password]").fill(PASSWORD)
    console.locator("input[name=password]").press("Enter")
    expect(console.locator("#conn-state")).to_have_text("在线")

    openid = new_openid()
    gateway.rasa.reply = []  # the gateway starts the handoff itself
    push_text(gateway, fake, openid, "转人工")
    waiting = console.locator(f'#queue-waiting .qitem[data-conversation-id="wx-{openid}"]')
    waiting.click()
    expect(console.locator("#transcript")).to_contain_text("转人工")
    if accept:
        console.locator("#accept").click()
        expect(console.locator("#transcript")).to_contain_text("已接入")
    return console, openid


def reply(console: Page, text: str) -> None:
    console.locator("#reply").fill(text)
    console.locator("#reply").press("Enter")


def closing_time(wrote_at: float) -> str:
    """How the console names the end of the 48-hour window opened by a message at `wrote_at`."""
    closes = datetime.fromtimestamp(wrote_at + MESSAGE_WINDOW_SECONDS, ZoneInfo(CONSOLE_ZONE))
    return f"{closes.month}月{closes.day}日 {closes:%H:%M} 前有效"


def assert_closes_48_hours_after(limit: Locator, start: float, end: float) -> None:
    """The allowance line names when the window closes: 48 hours after the citizen's message,
    which WeChat delivered between `start` and `end`."""
    text = limit.inner_text()
    expected = {closing_time(t) for t in range(int(start), int(end) + 2)}
    assert any(time in text for time in expected), (text, expected)


def test_the_console_shows_wechats_allowance_and_refuses_past_it(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    """A WeChat citizen asks for a person; the agent sees how many replies can still reach them
    and until when, and the sixth message after the citizen's is refused with the reason."""
    with wechat_gateway(tmp_path) as (gateway, fake):
        start = time.time()
        console, openid = console_with_a_wechat_handoff(browser, gateway, fake, contexts)
        end = time.time()
        limit = console.locator("#delivery-limit")
        expect(limit).to_contain_text("还可发送 4 条")  # "已接入" used one of five
        assert_closes_48_hours_after(limit, start, end)
        for n in range(4):
            reply(console, f"第{n}条回复")
            expect(limit).to_contain_text(f"还可发送 {3 - n} 条" if n < 3 else "额度已用完")
        reply(console, "第4条回复")
        expect(console.locator("#toasts")).to_contain_text("5条")
        refused = console.locator(".line--staff", has_text="第4条回复")
        expect(refused).to_have_attribute("data-state", "failed")  # shown 未送达, not sending
        assert len(fake.sent_to(openid)) == 5 and fake.refused == []
        start = time.time()
        push_text(gateway, fake, openid, "好的")  # the citizen writes: five more, 48 hours more
        end = time.time()
        expect(limit).to_contain_text("还可发送 5 条")
        assert_closes_48_hours_after(limit, start, end)


def test_console_with_a_wechat_conversation_open_has_no_serious_axe_violation(
    browser: Browser, tmp_path: Path, contexts: list[BrowserContext]
) -> None:
    """The console as an agent works in it: a WeChat citizen's request open (with its hint), then
    accepted with its messages and WeChat's allowance line; then the allowance spent (the line in
    red), a refused reply marked 未送达 and the refusal's message."""
    with wechat_gateway(tmp_path) as (gateway, fake):
        console, _ = console_with_a_wechat_handoff(
            browser, gateway, fake, contexts, bypass_csp=True, accept=False
        )
        expect(console.locator("#composer-hint")).to_have_text("点击“接入”后即可回复")
        assert_no_serious_violations(console, "console with a waiting WeChat conversation open")
        console.locator("#accept").click()
        limit = console.locator("#delivery-limit")
        reply(console, "您好，我是王小明，请问有什么可以帮您？")
        expect(console.locator("#transcript")).to_contain_text("请问有什么可以帮您")
        expect(limit).to_contain_text("还可发送 3 条")
        expect(limit).to_contain_text("前有效")
        assert_no_serious_violations(console, "console with a WeChat conversation open")
        for n in range(4):
            reply(console, f"第{n}条回复")
        expect(limit).to_contain_text("额度已用完")
        expect(console.locator("#toasts")).to_contain_text("5条")
        refused = console.locator(".line--staff", has_text="第3条回复")
        expect(refused).to_have_attribute("data-state", "failed")
        assert_no_serious_violations(console, "console with WeChat's allowance spent")


def push_text(gateway: Gateway, fake: FakeWechat, openid: str, text: str) -> None:
    """A WeChat user's message, signed and encrypted as WeChat's servers send it."""
    xml = text_xml(openid, text)
    fake.saw_push(xml)
    signed = sign(xml, "safe")
    response = post(gateway.url + "wechat", signed.params, signed.body)
    assert response == 200


def post(url: str, params: dict[str, str], body: bytes) -> int:
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{url}?{query}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)
