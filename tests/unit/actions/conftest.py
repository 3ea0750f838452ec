"""The action server reads its settings once; each test sets its own DATABASE_URL / DB_TIMEOUT."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actions.answers import live_knowledge
from actions.knowledge import action_settings


@pytest.fixture(autouse=True)
def fresh_action_settings() -> Iterator[None]:
    """Settings read anew in each test, after its environment is set."""
    action_settings.cache_clear()
    live_knowledge.cache_clear()
    yield
    action_settings.cache_clear()
    live_knowledge.cache_clear()
