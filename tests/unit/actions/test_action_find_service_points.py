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


# --- Distances: the seed has no coordinates, so these tests import located stations first. ------

LOCATED_CSV = """service_type,name,district,latitude,longitude,phone,source
商标品牌指导站,测试江北站,江北区,29.90,121.55,0574-87000001,测试数据
商标品牌指导站,测试海曙站,海曙区,29.87,121.54,0574-87000002,测试数据
商标品牌指导站,测试镇海站,镇海区,29.95,121.71,,测试数据
商标品牌指导站,测试象山站,象山县,29.48,121.87,,测试数据
商标受理窗口,测试鄞州窗口,鄞州区,29.82,121.56,,测试数据
"""


@pytest.fixture()
def located(seeded_database_url: str, tmp_path) -> None:
    from bot.db.engine import session_factory
    from bot.kb.importer import import_file

    path = tmp_path / "located.csv"
    path.write_text(LOCATED_CSV, encoding="utf-8")
    with session_factory(seeded_database_url)() as session:
        assert import_file(session, path).inserted == 5


def event_values(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def shared_location_tracker(latitude: float, longitude: float) -> Tracker:
    t = tracker("find_brand_station")
    t.latest_message["metadata"] = {"location": {"latitude": latitude, "longitude": longitude}}
    return t


@pytest.mark.usefixtures("located")
async def test_shared_location_gives_the_nearest_three_with_distances() -> None:
    # Near the Haishu test station (29.87, 121.54).
    messages, events = await run(shared_location_tracker(29.871, 121.541))
    names = [c["name"] for c in cards(messages)]
    assert names == ["测试海曙站", "测试江北站", "测试镇海站"]
    assert "离您最近的3个商标品牌指导站" in messages[0]["text"]
    assert "测试海曙站约0.1公里" in messages[0]["text"]
    assert cards(messages)[0]["distance_km"] == 0.1
    assert event_values(events)["latitude"] == 29.871


@pytest.mark.usefixtures("located")
async def test_location_in_the_slots_is_used_too() -> None:
    messages, _ = await run(
        tracker("find_brand_station", slots={"latitude": 29.48, "longitude": 121.87})
    )
    assert cards(messages)[0]["name"] == "测试象山站"


async def test_shared_location_without_located_stations_lists_the_city() -> None:
    messages, _ = await run(shared_location_tracker(29.87, 121.54))
    assert "位置信息还没有核实" in messages[0]["text"]
    assert len(cards(messages)) == 5


async def test_location_outside_ningbo_is_ignored() -> None:
    messages, _ = await run(shared_location_tracker(39.9, 116.4))  # Beijing
    assert "哪个区县" in messages[0]["text"]


@pytest.mark.usefixtures("located")
async def test_none_in_district_offers_the_nearest_elsewhere_by_distance() -> None:
    # No brand station in 鄞州区, but the 鄞州 test window gives the district a position.
    messages, _ = await run(tracker("find_brand_station", "鄞州区"))
    text = messages[0]["text"]
    assert text.startswith("鄞州区目前没有收录已核实的商标品牌指导站")
    assert "最近的3个" in text
    assert [c["name"] for c in cards(messages)] == ["测试海曙站", "测试江北站", "测试镇海站"]
    assert all(c["district"] != "鄞州区" for c in cards(messages))


@pytest.mark.usefixtures("located")
async def test_district_without_any_position_falls_back_to_the_city_list() -> None:
    messages, _ = await run(tracker("find_brand_station", "奉化区"))
    assert "以下是全市已公开报道的" in messages[0]["text"]
    assert len(cards(messages)) == 9  # 5 seeded + 4 imported


async def test_service_type_entity_wins_over_the_intent() -> None:
    t = tracker("find_brand_station", "慈溪市")
    t.latest_message["entities"].append({"entity": "service_type", "value": "商标受理窗口"})
    messages, events = await run(t)
    assert event_values(events)["service_type"] == "商标受理窗口"
    assert "慈溪市目前没有收录已核实的商标受理窗口" in messages[0]["text"]
    assert [c["name"] for c in cards(messages)] == ["宁波市商标受理窗口"]


@pytest.mark.usefixtures("located")
async def test_location_in_the_user_event_metadata() -> None:
    t = tracker("find_brand_station")
    t.events.append({"event": "user", "metadata": {"latitude": 29.95, "longitude": 121.71}})
    messages, _ = await run(t)
    assert cards(messages)[0]["name"] == "测试镇海站"
