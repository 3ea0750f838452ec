"""What the pipeline does for the review inbox, with a fake Rasa and a real database (SQLite and
PostgreSQL): the action server's `meta` note is stored with the question and never shown,
"都不是" and a handoff flag the citizen's typed question before them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.conversation.hours import WorkingHours
from bot.conversation.pipeline import Pipeline
from bot.conversation.store import ChatStore
from bot.db import review
from bot.db.conversations import Message
from bot.db.engine import session_factory
from bot.rasa.pool import RasaPool
from tests.support.fake_rasa import FakeRasa
from tests.unit.conversation.test_handoff_desk import RecordingChannel

META = {"meta": {"outcome": "suggested", "topic": "ask_ip_insurance", "score": 0.42}}


@pytest.fixture()
async def pipeline(database_url: str, fake_rasa: FakeRasa):
    async with aiohttp.ClientSession() as http:
        rasa = RasaPool(http, [f"http://127.0.0.1:{fake_rasa.port}"], timeout=5, token="t")
        chat = Pipeline(ChatStore(database_url, timeout=5.0), rasa, WorkingHours.parse("always"))
        chat.register_channel(RecordingChannel())
        yield chat


async def say(chat: Pipeline, text: str, payload: str | None = None) -> list[dict[str, Any]]:
    received = await chat.receive("c1", "webchat", f"id{abs(hash(text))}", text, payload)
    return await asyncio.wait_for(received.done, 10)


def flagged(database_url: str) -> dict[str, set[str]]:
    with session_factory(database_url)() as db:
        rows = db.execute(
            select(Message.text, review.ReviewSignal.reason).join(
                review.ReviewSignal, review.ReviewSignal.message_id == Message.id
            )
        ).all()
    found: dict[str, set[str]] = {}
    for text, reason in rows:
        found.setdefault(text, set()).add(reason)
    return found


async def test_the_meta_note_is_stored_with_the_question_and_never_shown(
    pipeline: Pipeline, fake_rasa: FakeRasa, database_url: str
) -> None:
    fake_rasa.reply = [{"text": "您是想问：", "buttons": []}, {"custom": META}]
    sent = await say(pipeline, "保险怎么买")
    assert [f.get("text") for f in sent if f["type"] == "bot"] == ["您是想问："]
    assert not any("meta" in (f.get("custom") or {}) for f in sent)
    with session_factory(database_url)() as db:
        question = db.execute(select(Message).where(Message.role == "user")).scalar_one()
        shown = db.execute(select(Message).where(Message.role == "bot")).scalars().all()
    assert (question.outcome, question.topic, question.score) == (
        "suggested",
        "ask_ip_insurance",
        0.42,
    )
    assert [m.text for m in shown] == ["您是想问："]
    assert flagged(database_url) == {"保险怎么买": {"low_score"}}


async def test_none_of_these_and_a_handoff_flag_the_question_before_them(
    pipeline: Pipeline, fake_rasa: FakeRasa, database_url: str
) -> None:
    fake_rasa.reply = [{"text": "抱歉，我不太确定您的意思。"}]
    await say(pipeline, "我那个东西被人家用了")
    fake_rasa.reply = [{"text": "好的，麻烦您换个说法再说一次"}]
    await say(pipeline, "都不是", "/out_of_scope")
    fake_rasa.reply = [{"custom": {"handoff": {"reason": "user", "intents": []}}}]
    await say(pipeline, "转人工", "/request_human")
    assert flagged(database_url) == {"我那个东西被人家用了": {"none_of_these", "handoff"}}
