"""Office hours on the administrator's calendar in the running gateway, and the rating offered to a
citizen who comes back to an idle conversation (stand-in Rasa)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.app import create_app
from bot.conversation.calendar import beijing_today
from bot.conversation.hours import WorkingHours, opening_text
from bot.db.calendar_days import set_calendar_day, work_calendar
from bot.db.conversations import Conversation
from bot.db.engine import session_factory
from tests.support.fake_rasa import FakeRasa, exchange, message, settings_for

HANDOFF = {"recipient_id": "x", "custom": {"handoff": {"reason": "user", "intents": []}}}
# A knowledge answer as the action server sends it: the answer, then its note (actions/outcome.py).
ANSWERED = [
    {"recipient_id": "x", "text": "商标受理窗口在市行政服务中心。"},
    {"recipient_id": "x", "custom": {"meta": {"outcome": "answered", "key": "tm-window"}}},
]
FORM_QUESTION = {"recipient_id": "x", "text": "请问贵公司的名称是？"}


def two_idle_hours_pass(settings) -> None:
    with session_factory(settings.database_url)() as db:
        db.execute(update(Conversation).values(last_message_at=datetime(2020, 1, 1)))
        db.commit()


@pytest.fixture()
def settings(tmp_path: Path, fake_rasa: FakeRasa):
    return settings_for(tmp_path, fake_rasa.port, handoff_hours="1-7 00:00-23:59")


@pytest.fixture()
async def client(settings, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings))


async def test_a_local_closure_today_sends_citizens_to_a_ticket_with_the_next_opening(
    client: TestClient, fake_rasa: FakeRasa, settings
) -> None:
    fake_rasa.reply = [HANDOFF]
    with session_factory(settings.database_url)() as db:
        set_calendar_day(db, beijing_today(), False, "停电检修", None)
        calendar = work_calendar(db)
    frames = await exchange(client, message("转人工", payload="/request_human"))
    notice = next(f for f in frames if f.get("type") == "system")
    hours = WorkingHours.parse(settings.handoff_hours)
    opening = opening_text(hours.next_opening(datetime.now(timezone.utc), calendar))
    assert opening.startswith(f"{(beijing_today() + timedelta(days=1)).month}月")
    assert notice["text"].endswith(f"下一个工作时间：{opening}。")
    handoff = next(f for f in frames if f.get("type") == "handoff")
    assert (handoff["state"], handoff["reason"], handoff["next_opening"]) == (
        "offline", "hours", opening,
    )  # fmt: skip


async def test_coming_back_to_an_idle_conversation_offers_the_rating_once(
    client: TestClient, fake_rasa: FakeRasa, settings
) -> None:
    fake_rasa.reply = ANSWERED
    first = await exchange(client, message("商标受理窗口在哪"))
    assert not [f for f in first if f.get("type") == "rating_request"]
    two_idle_hours_pass(settings)
    back = await exchange(client, message("还有个问题"))
    kinds = [f["type"] for f in back if f["type"] not in ("ack", "typing")]
    assert kinds == ["bot", "rating_request"]  # after the answer, not instead of it
    [offer] = [f for f in back if f["type"] == "rating_request"]
    assert offer["trigger"] == "idle"
    two_idle_hours_pass(settings)
    again = await exchange(client, message("再问一个"))
    assert not [f for f in again if f.get("type") == "rating_request"]


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([FORM_QUESTION], id="the message starts a form"),
        pytest.param([*ANSWERED, FORM_QUESTION], id="a form asks again after the answer"),
        pytest.param([{"recipient_id": "x", "text": "您好"}], id="no knowledge answer"),
    ],
)
async def test_no_idle_rating_card_unless_the_turn_ends_with_an_answer(
    client: TestClient, fake_rasa: FakeRasa, settings, replies: list[dict]
) -> None:
    fake_rasa.reply = ANSWERED
    await exchange(client, message("商标受理窗口在哪"))
    two_idle_hours_pass(settings)
    fake_rasa.reply = replies
    back = await exchange(client, message("我想咨询知识产权保险"))
    assert [f["text"] for f in back if f["type"] == "bot"] == [
        r["text"] for r in replies if "text" in r
    ]
    assert not [f for f in back if f.get("type") == "rating_request"]
