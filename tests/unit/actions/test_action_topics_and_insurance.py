"""action_answer_topic and action_insurance_products with a real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.insurance import ActionInsuranceProducts
from actions.topics import ActionAnswerTopic
from bot.db.engine import session_factory
from bot.kb.importer import import_file
from tests.support.action_trackers import cards, run, texts, tracker

pytestmark = pytest.mark.usefixtures("actions_database_url")
HUMAN = {"title": "转人工", "payload": "/request_human"}
CONSULT = {"title": "预约保险咨询", "payload": "/request_insurance_consultation"}


def buttons(messages: list[dict]) -> list[dict]:
    return [b for m in messages for b in m.get("buttons") or []]


@pytest.mark.parametrize(
    ("intent", "response", "point"),
    [
        ("ask_trademark_window", "utter_trademark_window", "宁波市商标受理窗口"),
        ("ask_one_stop_service", "utter_one_stop_service", "宁波市知识产权综合体"),
        ("ask_patent_fast_track", "utter_patent_fast_track", "宁波市知识产权保护中心"),
    ],
)
async def test_topic_sends_its_facts_and_its_service_point_from_the_database(
    intent: str, response: str, point: str
) -> None:
    messages, _ = await run(ActionAnswerTopic(), tracker(intent))
    assert messages[0]["response"] == response
    assert [c["name"] for c in cards(messages)] == [point]
    assert cards(messages)[0]["address"] is None
    assert "待核实" in texts(messages) and HUMAN in buttons(messages)


async def test_topic_shows_an_imported_address(actions_database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "window.csv"
    path.write_text(
        "service_type,name,address,phone,source\n"
        "商标受理窗口,宁波市商标受理窗口,宁波市测试路8号,0574-87000000,测试核实\n",
        encoding="utf-8",
    )
    with session_factory(actions_database_url)() as session:
        assert import_file(session, path).updated == 1
    messages, _ = await run(ActionAnswerTopic(), tracker("ask_trademark_window"))
    [card] = cards(messages)
    assert card["address"] == "宁波市测试路8号" and card["source"] == "测试核实"
    assert "待核实" not in texts(messages)


async def test_insurance_overview_lists_every_product_with_its_source() -> None:
    messages, _ = await run(ActionInsuranceProducts(), tracker("ask_ip_insurance"))
    assert messages[0]["response"] == "utter_ip_insurance"
    items = cards(messages, "insurance_products")
    assert len(items) == 8
    assert set(items[0]) == {
        "name", "insurance_type", "coverage", "audience", "limits", "premium", "insurer", "source",
    }  # fmt: skip
    assert all(item["source"] for item in items)
    assert all(item["premium"] is None for item in items)  # not public: never invented
    assert "保费和保额待核实" in texts(messages)
    assert CONSULT in buttons(messages) and HUMAN in buttons(messages)


async def test_insurance_detail_of_one_type_with_the_reported_limit() -> None:
    t = tracker("ask_ip_insurance", {"insurance_type": "商标被侵权损失补偿保险"})
    messages, _ = await run(ActionInsuranceProducts(), t)
    [item] = cards(messages, "insurance_products")
    assert item["name"] == "商标被侵权损失补偿保险"
    assert item["limits"] == "最高赔付50万元（据公开报道）"
    assert "驰名商标" in item["audience"]
    # The dated figure says its year.
    assert "截至2021年" in texts(messages)
    assert all(m.get("response") != "utter_ip_insurance" for m in messages)
    assert CONSULT in buttons(messages)


async def test_insurance_type_without_a_sourced_product_says_so() -> None:
    t = tracker("ask_ip_insurance", {"insurance_type": "知识产权质押融资保证保险"})
    messages, _ = await run(ActionInsuranceProducts(), t)
    assert cards(messages, "insurance_products") == []
    assert "还没有核实的产品信息" in texts(messages)
    assert CONSULT in buttons(messages) and HUMAN in buttons(messages)


@pytest.mark.parametrize(
    ("action", "intent"),
    [
        (ActionInsuranceProducts(), "ask_ip_insurance"),
        (ActionAnswerTopic(), "ask_trademark_window"),
    ],
)
async def test_dead_database_apologises_and_offers_a_person(
    monkeypatch: pytest.MonkeyPatch, action, intent: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    messages, _ = await run(action, tracker(intent))
    assert messages[-1]["response"] == "utter_knowledge_unavailable"
    assert messages[-1]["buttons"] == [HUMAN]
