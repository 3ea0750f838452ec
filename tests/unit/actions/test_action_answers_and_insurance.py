"""action_answer_knowledge and action_insurance_products with a real, seeded database."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.answers import ActionAnswerKnowledge
from actions.insurance import ActionInsuranceProducts
from bot.db import knowledge as db
from bot.db.engine import session_factory
from bot.kb.importer import import_file
from tests.support.action_trackers import cards, run, slot_events, texts, tracker

pytestmark = pytest.mark.usefixtures("actions_database_url")
HUMAN = {"title": "转人工", "payload": "/request_human"}
CONSULT = {"title": "预约保险咨询", "payload": "/request_insurance_consultation"}


def buttons(messages: list[dict]) -> list[dict]:
    return [b for m in messages for b in m.get("buttons") or []]


async def ask(question: str, intent: str, **slots: str) -> tuple[list[dict], list[dict]]:
    return await run(ActionAnswerKnowledge(), tracker(intent, text=question, slots=slots))


async def test_a_specific_question_gets_the_figure_first_with_year_and_source() -> None:
    messages, events = await ask("网上申请商标，一个类别收多少钱", "ask_trademark_window")
    first = messages[0]["text"]
    assert "270元" in first and "2019年7月1日" in first and "商标局" in first
    assert len(first) <= 120
    assert "来源：" in messages[1]["text"]
    assert slot_events(events) == {"last_topic": "ask_trademark_window"}
    assert cards(messages) == []  # a fee question: no place cards


async def test_a_question_filed_under_another_topic_still_finds_its_item() -> None:
    messages, _ = await ask("宁波去年PCT国际专利申请多少件，2021年的", "ask_patent_fast_track")
    assert "667件" in messages[0]["text"]


@pytest.mark.parametrize(
    ("intent", "point"),
    [
        ("ask_trademark_window", "宁波市商标受理窗口"),
        ("ask_one_stop_service", "宁波市知识产权综合体"),
        ("ask_patent_fast_track", "宁波市知识产权保护中心"),
    ],
)
async def test_a_topic_button_gets_the_overview_and_the_places_from_the_database(
    intent: str, point: str
) -> None:
    messages, _ = await run(ActionAnswerKnowledge(), tracker(intent, text=f"/{intent}"))
    assert "来源" in messages[0]["text"]
    assert [c["name"] for c in cards(messages)] == [point]
    assert "待核实" in texts(messages) and HUMAN in buttons(messages)


async def test_an_unknown_detail_says_so_and_offers_a_person_never_a_number() -> None:
    messages, _ = await ask("商标受理窗口具体地址在哪条路", "ask_trademark_window")
    assert "核实" in messages[0]["text"] and messages[0]["buttons"] == [HUMAN]
    assert not any(ch.isdigit() for ch in messages[0]["text"])


async def test_a_follow_up_uses_the_previous_topic() -> None:
    """ "在哪里办" after a fast-track answer: the protection centre's place (not verified)."""
    messages, _ = await ask("那在哪里办", "inform", last_topic="ask_patent_fast_track")
    assert "保护中心" in messages[0]["text"] and "核实" in messages[0]["text"]


async def test_a_vague_question_gets_choices() -> None:
    messages, _ = await ask("材料", "inform")
    assert messages[0]["text"] == "您是想问："
    assert HUMAN in messages[0]["buttons"] and len(messages[0]["buttons"]) >= 3


async def test_an_edit_published_in_the_database_is_answered_without_a_restart(
    actions_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_POLL_SECONDS", "0")  # check the version on every question
    messages, _ = await ask("网上注册商标多少钱", "ask_trademark_window")
    assert "270元" in messages[0]["text"]
    with session_factory(actions_database_url)() as session:
        db.save_item(
            session,
            {"key": "trademark-fee-online", "answer": "网上申请每类260元（测试：新标准）。"},
            by="editor1",
        )
        session.commit()
    messages, _ = await ask("网上注册商标多少钱", "ask_trademark_window")
    assert messages[0]["text"] == "网上申请每类260元（测试：新标准）。"
    with session_factory(actions_database_url)() as session:
        [item] = db.search_items(session, text="trademark-fee-online")
        db.set_status(session, item.id, db.RETIRED, by="editor1")
        session.commit()
    messages, _ = await ask("网上注册商标多少钱", "ask_trademark_window")
    assert "260元" not in texts(messages)


async def test_topic_shows_an_imported_address(actions_database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "window.csv"
    path.write_text(
        "service_type,name,address,phone,source\n"
        "商标受理窗口,宁波市商标受理窗口,宁波市测试路8号,0574-87000000,测试核实\n",
        encoding="utf-8",
    )
    with session_factory(actions_database_url)() as session:
        assert import_file(session, path).updated == 1
    t = tracker("ask_trademark_window", text="/ask_trademark_window")
    messages, _ = await run(ActionAnswerKnowledge(), t)
    [card] = cards(messages)
    assert card["address"] == "宁波市测试路8号" and card["source"] == "测试核实"


async def test_insurance_overview_lists_every_product_with_its_source() -> None:
    messages, _ = await run(ActionInsuranceProducts(), tracker("ask_ip_insurance"))
    assert "2021年" in messages[0]["text"] and "来源" in messages[0]["text"]  # the overview
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
    assert "保险运营中心" not in texts(messages)  # no overview before a product's card
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
        (ActionAnswerKnowledge(), "ask_trademark_window"),
    ],
)
async def test_dead_database_apologises_and_offers_a_person(
    monkeypatch: pytest.MonkeyPatch, action, intent: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    messages, _ = await run(action, tracker(intent))
    assert messages[-1]["response"] == "utter_knowledge_unavailable"
    assert messages[-1]["buttons"] == [HUMAN]
