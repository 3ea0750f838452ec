"""The web chat while Rasa is saturated (bot/rasa/queue.py): the waiting citizen reads
"正在排队，请稍候" where the typing dots were, then gets the answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from bot.conversation.frames import QUEUED_TEXT
from tests.browser.test_browser_rich_messages import Gateway, ask, open_chat

pytestmark = pytest.mark.browser


def test_a_waiting_citizen_is_told_and_then_answered(browser: Browser, tmp_path: Path) -> None:
    with Gateway(tmp_path, rasa_timeout=10, rasa_concurrency=1, rasa_queue_depth=5) as gateway:
        gateway.rasa.delay = 3.5
        first, second = open_chat(browser, gateway.url), open_chat(browser, gateway.url)
        ask(first, "商标受理窗口在哪")  # holds the replica's one place for 3.5 s
        expect(first.locator(".msg--user", has_text="商标受理窗口在哪")).to_be_visible()
        ask(second, "专利预审怎么申请")
        notice = second.locator("#typing-text")
        expect(notice).to_have_text(QUEUED_TEXT, timeout=4_000)
        expect(second.locator("#typing-dots")).to_be_hidden()
        expect(first.locator("#typing-text")).to_be_hidden()  # the first one never waited
        expect(second.locator(".msg--bot", has_text="您好")).to_be_visible(timeout=10_000)
        expect(second.locator("#typing")).to_be_hidden()
        assert [m["message"] for m in gateway.rasa.received] == [
            "商标受理窗口在哪",
            "专利预审怎么申请",
        ]
        for page in (first, second):
            page.context.close()
