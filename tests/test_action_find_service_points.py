"""action_find_service_points with a real database, through rasa-sdk's own Tracker."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.service_points import ActionFindServicePoints


def tracker(intent: str, district: str | None = None, slots: dict | None = None) -> Tracker:
    entities = [{"entity": "district", "value": district}] if district else []
    return Tracker(
        sender_id="test",
        slots=slots or {},
        latest_message={"intent": {"name": intent, "confidence": 0.99}, "entities": entities},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ActionFindServicePoints().run(dispatcher, t, {})
    return dispatcher.messages, events


def cards(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for m in messages if m.get("custom") for item in m["custom"]["items"]]


@pytest.fixture(autouse=True)
def use_database(seeded_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", seeded_database_url)


async def test_no_district_asks_with_district_buttons() -> None:
    messages, events = await run(tracker("find_brand_station"))
    assert "哪个区县" in messages[0]["text"]
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert len(titles) == 10 and "鄞州区" in titles and "象山县" in titles
    assert (
        messages[0]["buttons"][titles.index("鄞州区")]["payload"] == '/inform{"district": "鄞州区"}'
    )
    assert {
        "event": "slot",
        "name": "service_type",
        "value": "商标品牌指导站",
        "timestamp": None,
    } in events


async def test_district_with_a_station_shows_its_card() -> None:
    messages, _ = await run(tracker("find_brand_station", "慈溪市"))
    assert messages[0]["text"].startswith("慈溪市的商标品牌指导站有 1 个")
    [card] = cards(messages)
    assert card["name"] == "慈溪市周巷镇品牌建设工作指导站"
    assert card["district"] == "慈溪市" and card["address"] is None
    assert card["source"] == "据公开报道（新闻）"
    # The address is unknown, so the bot says so and offers a person.
    assert any("待核实" in (m.get("text") or "") for m in messages)
    assert any(b["payload"] == "/request_human" for m in messages for b in m.get("buttons", []))


async def test_bare_district_answer_continues_the_remembered_search() -> None:
    messages, _ = await run(tracker("inform", "北仑区", slots={"service_type": "商标品牌指导站"}))
    assert {c["name"] for c in cards(messages)} == {
        "北仑区小港街道品牌指导站",
        "北仑区新碶街道品牌指导站",
    }


async def test_district_without_a_station_says_so_and_lists_the_city() -> None:
    messages, _ = await run(tracker("find_brand_station", "鄞州区"))
    assert "鄞州区目前没有收录已核实的商标品牌指导站" in messages[0]["text"]
    assert "宁波市知识产权协会品牌指导服务站" in {c["name"] for c in cards(messages)}
    assert all(c["district"] != "鄞州区" for c in cards(messages))


async def test_unknown_district_asks_again() -> None:
    messages, _ = await run(tracker("find_brand_station", "<script>alert(1)</script>"))
    assert "不在宁波市的区县" in messages[0]["text"]
    assert len(messages[0]["buttons"]) == 10


async def test_dead_database_gives_an_apology_and_a_person(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    messages, _ = await run(tracker("find_brand_station", "慈溪市"))
    assert messages == [
        {
            "text": None,
            "buttons": [{"title": "转人工", "payload": "/request_human"}],
            "elements": [],
            "custom": {},
            "template": "utter_knowledge_unavailable",
            "response": "utter_knowledge_unavailable",
            "image": None,
            "attachment": None,
        }
    ]
