"""The page's rendering of rich and hostile bot messages, and its flood back-off, in Chromium.

A real gateway in a background thread in front of a stand-in for Rasa, so the bot can say exactly
what a test needs (markup, links, insurance cards, unknown card kinds) in a couple of seconds.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect

from bot.app import create_app
from tests.support.browser import PHONE
from tests.support.fake_rasa import FakeRasa, settings_for
from tests.support.running_stack import free_port

pytestmark = pytest.mark.browser

INSURANCE = {
    "kind": "insurance_products",
    "items": [
        {
            "name": "专利执行保险",
            "insurance_type": "专利执行保险",
            "coverage": "专利维权的调查费、诉讼费和律师费",
            "audience": "拥有有效专利的企业",
            "limits": None,
            "premium": None,
            "insurer": None,
            "source": "《中国市场监管报》2022",
        }
    ],
}
SERVICE_POINTS = {
    "kind": "service_points",
    "items": [
        {
            "name": "测试站",
            "district": "海曙区",
            "address": None,
            "opening_hours": None,
            "phone": "0574-8765 4321",
            "services": "商标咨询",
            "note": None,
            "source": "https://example.org/source",
            "last_verified": "2022-06-01",
            "distance_km": 2.3,
        }
    ],
}
HOSTILE = "请看 **重点** 和 https://example.org/a?b=1 ，<img src=x onerror=alert(1)>"


class Gateway:
    """The gateway app and a FakeRasa served from one event loop in a thread."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.rasa = FakeRasa()
        self.rasa.port = free_port()
        self.port = free_port()
        self.settings = settings_for(tmp_path, self.rasa.port, gateway_port=self.port, **settings)
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners.append(runner)

    def __enter__(self) -> Gateway:
        self.thread.start()
        for app, port in (
            (self.rasa.app(), self.rasa.port),
            (create_app(self.settings), self.port),
        ):
            asyncio.run_coroutine_threadsafe(self._serve(app, port), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def cleanup() -> None:
            for runner in reversed(self.runners):
                await runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def open_chat(browser: Browser, url: str) -> Page:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.goto(url)
    expect(page.locator("#state-text")).to_have_text("在线")
    return page


def ask(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def test_rich_messages_are_rendered_safely(browser: Browser, tmp_path: Path) -> None:
    with Gateway(tmp_path) as gateway:
        gateway.rasa.reply = [
            {"text": HOSTILE},
            {"text": "可参考以下保险：", "custom": INSURANCE},
            {"text": "这是一张新卡片", "custom": {"kind": "weather", "items": [{"name": "晴"}]}},
            {"custom": SERVICE_POINTS},
        ]
        page = open_chat(browser, gateway.url)
        ask(page, "你好")
        hostile = page.locator(".msg--bot", has_text="请看")
        expect(hostile.locator("strong")).to_have_text("重点")
        link = hostile.get_by_role("link", name="https://example.org/a?b=1")
        expect(link).to_have_attribute("href", "https://example.org/a?b=1")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(hostile).to_contain_text("<img src=x onerror=alert(1)>")
        expect(page.locator(".chat__log img")).to_have_count(0)

        insurance = page.locator(".card--insurance")
        expect(insurance.locator("h3")).to_have_text("专利执行保险")
        expect(insurance).to_contain_text("专利维权的调查费、诉讼费和律师费")
        expect(insurance).to_contain_text("拥有有效专利的企业")
        expect(insurance.locator("p", has_text="保费")).to_contain_text("待核实")
        expect(insurance).to_contain_text("来源：《中国市场监管报》2022")

        expect(page.locator(".msg--bot", has_text="这是一张新卡片")).to_be_visible()
        expect(page.locator(".card", has_text="晴")).to_have_count(0)  # unknown kind: text only

        station = page.locator(".card", has_text="测试站")
        expect(station.get_by_role("link", name="0574-8765 4321")).to_have_attribute(
            "href", "tel:0574-87654321"
        )
        expect(station.locator(".card__unverified")).to_have_text(re.compile("地址待核实"))
        expect(station.get_by_role("link", name="https://example.org/source")).to_be_visible()
        expect(station).to_contain_text("2022-06-01")
        expect(station).to_contain_text("约 2.3 公里")
        expect(page.locator(".time")).to_have_count(1)  # one time stamp for the whole exchange
        page.context.close()


def test_quick_replies_stay_usable_until_one_is_chosen(browser: Browser, tmp_path: Path) -> None:
    with Gateway(tmp_path) as gateway:
        gateway.rasa.reply = [
            {"text": "选一个区", "buttons": [{"title": "海曙区", "payload": "/inform"}]}
        ]
        page = open_chat(browser, gateway.url)
        ask(page, "一")
        expect(page.locator(".msg--bot", has_text="选一个区")).to_have_count(1)
        ask(page, "二")  # typing something else does not use up the first buttons
        expect(page.locator(".msg--bot", has_text="选一个区")).to_have_count(2)
        first, second = page.locator(".msg--bot", has_text="选一个区").all()
        expect(first.get_by_role("button", name="海曙区")).to_be_enabled()
        first.get_by_role("button", name="海曙区").click()
        expect(first.get_by_role("button", name="海曙区")).to_be_disabled()
        expect(second.get_by_role("button", name="海曙区")).to_be_enabled()
        expect(page.locator(".msg--user", has_text="海曙区")).to_have_count(1)
        expect(page.locator(".msg--bot", has_text="选一个区")).to_have_count(3)  # answered
        assert gateway.rasa.received[-1]["message"] == "/inform"
        # The typing indicator shows while the bot is answering.
        gateway.rasa.delay = 1.0
        ask(page, "慢一点")
        expect(page.locator("#typing")).to_be_visible()
        expect(page.locator("#typing")).to_be_hidden()
        gateway.rasa.delay = 0.0
        # Keyboard: the composer is reachable and Enter sends.
        page.locator("#text").focus()
        page.keyboard.type("三")
        page.keyboard.press("Enter")
        expect(page.locator(".msg--user", has_text="三")).to_have_count(1)
        page.context.close()


def test_a_flood_is_slowed_and_every_message_still_arrives_once(
    browser: Browser, tmp_path: Path
) -> None:
    with Gateway(tmp_path, chat_rate_limit=3, chat_rate_window=3) as gateway:
        page = open_chat(browser, gateway.url)
        for n in range(6):
            ask(page, f"第{n}条")
        expect(page.locator(".notice", has_text="太快")).to_be_visible()
        expect(page.locator('.msg--user[data-state="sent"]')).to_have_count(6)
        answers = page.locator(".msg--bot .msg__bubble").filter(has_text=re.compile("^您好$"))
        expect(answers).to_have_count(6)  # each answered once
        assert sorted(m["message"] for m in gateway.rasa.received) == [f"第{n}条" for n in range(6)]
        page.context.close()


def test_a_message_not_routed_after_its_ack_is_sent_again(browser: Browser, tmp_path: Path) -> None:
    """Issue 14, #10: the handoff state cannot be read just after the message was acknowledged:
    the gateway answers not_stored (it might be staff's, not the bot's) and the page sends the
    same message again, which is then answered once."""
    from bot.web.keys import PIPELINE

    with Gateway(tmp_path) as gateway:
        desk = gateway.runners[-1].app[PIPELINE].desk
        real_read = desk.routing_state
        failures = [1]

        async def fails_once(conversation_id: str) -> Any:
            if failures:
                failures.pop()
                raise TimeoutError("database call timed out")
            return await real_read(conversation_id)

        desk.routing_state = fails_once
        gateway.rasa.reply = [{"text": "商标注册可以在网上办理。"}]
        page = open_chat(browser, gateway.url)
        ask(page, "商标怎么注册")
        answer = page.locator(".msg--bot", has_text="商标注册可以在网上办理")
        expect(answer).to_have_count(1, timeout=15_000)
        assert not failures  # the first attempt did fail
        asked = [m["message"] for m in gateway.rasa.received]
        assert asked == ["商标怎么注册"]  # asked once: after the resend, not before
        expect(page.locator(".msg--user", has_text="商标怎么注册")).to_have_count(1)
