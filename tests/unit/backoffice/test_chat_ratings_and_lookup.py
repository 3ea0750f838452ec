"""The citizen's side of the back office in the web chat, with a stand-in Rasa: the bot's rating
request becomes the rating card (once per conversation), a bad rating opens a follow-up, and a
status look-up is answered before Rasa, only after the right last four digits."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import create_app
from bot.db.engine import session_factory
from bot.db.leads import store_lead
from bot.db.ratings import FollowUp, Rating
from tests.support.fake_rasa import FakeRasa, exchange, message, settings_for

RATING_REQUEST = {"recipient_id": "x", "custom": {"rating_request": {"after": "thank"}}}


@pytest.fixture()
def settings(tmp_path: Path, fake_rasa: FakeRasa):
    return settings_for(tmp_path, fake_rasa.port)


@pytest.fixture()
async def client(settings, aiohttp_client) -> TestClient:
    return await aiohttp_client(create_app(settings))


def of_type(frames: list[dict], kind: str) -> list[dict]:
    return [f for f in frames if f.get("type") == kind]


async def test_rating_request_becomes_the_card_once_and_a_bad_rating_opens_a_follow_up(
    client: TestClient, fake_rasa: FakeRasa, settings
) -> None:
    fake_rasa.reply = [{"recipient_id": "x", "text": "不客气，祝您顺利！"}, RATING_REQUEST]
    frames = await exchange(client, message("谢谢"))
    bots = of_type(frames, "bot")
    assert [b.get("text") for b in bots] == ["不客气，祝您顺利！"]  # the payload is no bubble
    assert of_type(frames, "rating_request") == [
        {"type": "rating_request", "scope": "conversation", "trigger": "thank"}
    ]
    # At most once per conversation: the bot asking again shows nothing more.
    again = await exchange(client, message("谢谢啦"))
    assert of_type(again, "rating_request") == []

    async with client.ws_connect("/ws") as ws:  # a reload shows the unanswered card again
        history = await ws.receive_json(timeout=2)
        assert history["rating_request"]["scope"] == "conversation"

    saved = await exchange(
        client, {"type": "rating", "scope": "conversation", "score": 2, "comment": "答非所问"}
    )
    assert saved == [{"type": "rating_saved", "scope": "conversation"}]
    twice = await exchange(client, {"type": "rating", "scope": "conversation", "score": 5})
    assert twice[0]["code"] == "bad_rating" and "已经评价" in twice[0]["text"]

    with session_factory(settings.database_url)() as db:
        rating = db.execute(select(Rating)).scalar_one()
        assert (rating.score, rating.comment, rating.trigger) == (2, "答非所问", "thank")
        assert rating.channel == "webchat" and rating.handoff_id is None
        follow_up = db.execute(select(FollowUp)).scalar_one()
        assert follow_up.rating_id == rating.id and follow_up.status == "open"
        assert follow_up.phone is None  # nobody left a number: recorded as such on the page


async def test_a_good_rating_opens_no_follow_up_and_an_unoffered_one_is_refused(
    client: TestClient, fake_rasa: FakeRasa, settings
) -> None:
    refused = await exchange(client, {"type": "rating", "scope": "conversation", "score": 5})
    assert refused[0]["code"] == "bad_rating"
    # The request may come inside the text's own message: the text stays, the card follows.
    fake_rasa.reply = [{"recipient_id": "x", "text": "再见", **RATING_REQUEST}]
    frames = await exchange(client, message("再见"))
    assert [f.get("text") for f in of_type(frames, "bot")] == ["再见"]
    assert "custom" not in of_type(frames, "bot")[0]
    assert len(of_type(frames, "rating_request")) == 1
    await exchange(client, {"type": "rating", "scope": "conversation", "score": 4})
    with session_factory(settings.database_url)() as db:
        assert db.execute(select(Rating.score)).scalar_one() == 4
        assert db.execute(select(FollowUp)).first() is None


def add_lead(database_url: str, phone: str = "13912345678") -> str:
    with session_factory(database_url)() as db:
        return store_lead(
            db, company="宁波某某科技有限公司", contact_name="李", phone=phone
        ).reference


def bot_texts(frames: list[dict]) -> list[str]:
    return [f.get("text", "") for f in of_type(frames, "bot")]


async def test_status_look_up_needs_the_last_four_digits(
    client: TestClient, fake_rasa: FakeRasa, settings
) -> None:
    reference = add_lead(settings.database_url)
    asked = bot_texts(await exchange(client, message(f"查询 {reference}")))
    assert len(asked) == 1 and "后四位" in asked[0]
    wrong = bot_texts(await exchange(client, message("0000")))
    assert "不正确" in wrong[0] and "已受理" not in wrong[0]
    right = bot_texts(await exchange(client, message(f"查询{reference.lower()} 5678")))
    assert f"编号 {reference} 的办理状态：已受理，等待工作人员联系" in right[0]
    assert fake_rasa.received == []  # none of it reached the bot
    # Four digits with no look-up waiting are an ordinary message.
    await exchange(client, message("5678"))
    assert [m["message"] for m in fake_rasa.received] == ["5678"]


async def test_unknown_reference_and_wrong_digits_answer_alike_and_tries_are_limited(
    client: TestClient, settings
) -> None:
    reference = add_lead(settings.database_url)
    unknown = bot_texts(await exchange(client, message("查询 ZX-ZZZZZZ 5678")))
    wrong = bot_texts(await exchange(client, message(f"查询 {reference} 1111")))
    assert unknown[0].split("（")[0] == wrong[0].split("（")[0]
    for _ in range(5):
        last = bot_texts(await exchange(client, message(f"查询 {reference} 2222")))
    assert "尝试次数过多" in last[0]
    # Even the right digits are refused now: guessing cannot go on.
    blocked = bot_texts(await exchange(client, message(f"查询 {reference} 5678")))
    assert "尝试次数过多" in blocked[0] and "办理状态" not in blocked[0]
