"""What the browser tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext


@pytest.fixture()
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser profiles opened by a test (each is one person), closed after it."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()
