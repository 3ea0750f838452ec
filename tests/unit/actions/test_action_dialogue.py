"""Conversations that hold (issue 15), action by action with a real database: questions inside
the form answered and the form resumed, slot validation with reasons, yes/no only after a yes/no
question, small talk, follow-ups in the last topic, two questions in one, the rating offer."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.answers import ActionAnswerKnowledge
from actions.consultation import (
    ActionAskCompanyName,
    ActionAskContactName,
    ValidateInsuranceConsultationForm,
)
from actions.smalltalk import ActionOfferRating, ActionReplyYesNo, is_filler, is_gibberish
from tests.support.action_trackers import run, slot_events, texts, tracker

pytestmark = pytest.mark.usefixtures("actions_database_url")
FORM = "insurance_consultation_form"
RATING = {"rating_request": {"after": "thank"}}


def form_turn(slot: str, value: str, intent: str = "inform", confidence: float = 0.99) -> Tracker:
    """What the validation sees when Rasa took the message as the requested slot's value."""
    t = tracker(
        intent,
        text=value,
        slots={"requested_slot": slot, slot: value},
        events=[
            {"event": "action", "name": "action_listen"},
            {"event": "user", "text": value},
            {"event": "slot", "name": slot, "value": value},
        ],
        active_loop=FORM,
    )
    t.latest_message["intent"]["confidence"] = confidence
    return t


def after_bot(text: str, intent: str, said: str) -> Tracker:
    return tracker(
        intent,
        text=said,
        events=[
            {"event": "bot", "text": text},
            {"event": "action", "name": "action_listen"},
            {"event": "user", "text": said},
        ],
    )


async def validate(t: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    messages, events = await run(ValidateInsuranceConsultationForm(), t)
    return messages, slot_events(events)


async def test_a_question_at_the_company_question_is_answered_not_stored() -> None:
    messages, slots = await validate(
        form_turn("company_name", "顺便问一下专利预审要多久", "ask_patent_fast_track", 0.95)
    )
    assert slots["company_name"] is None
    assert slots["form_resume"] is True
    assert slots["last_topic"] == "ask_patent_fast_track"
    assert "个月" in texts(messages)


async def test_a_company_name_the_nlu_doubts_is_stored() -> None:
    _, slots = await validate(
        form_turn("company_name", "宁波市知识产权保护中心", "ask_patent_fast_track")
    )
    assert slots == {"company_name": "宁波市知识产权保护中心"}


async def test_a_register_request_at_the_company_question_is_not_a_company() -> None:
    messages, slots = await validate(
        form_turn("company_name", "帮我登记一下咨询", "request_insurance_consultation")
    )
    assert slots["company_name"] is None and slots["form_resume"] is True
    assert "正在为您登记" in texts(messages)


async def test_a_knowledge_question_at_the_contact_question_is_answered() -> None:
    messages, slots = await validate(
        form_turn("contact_name", "地理标志注册要交多少钱", "inform", 0.5)
    )
    assert slots["contact_name"] is None and slots["form_resume"] is True
    assert "元" in texts(messages)


async def test_thanks_inside_the_form_get_a_short_reply_and_no_rating() -> None:
    messages, slots = await validate(form_turn("contact_name", "谢谢", "thank"))
    assert texts(messages) == "不客气。"
    assert slots["contact_name"] is None
    assert not any(m.get("custom") for m in messages)


@pytest.mark.parametrize(
    ("slot", "value", "reason"),
    [
        ("company_name", "甬", "只有一个字"),
        ("contact_name", "我是这家公司负责知识产权事务的部门主管老张", "太长"),
        ("contact_name", "王先生138", "不能有数字"),
    ],
)
async def test_free_text_slots_refuse_with_a_reason(slot: str, value: str, reason: str) -> None:
    messages, slots = await validate(form_turn(slot, value))
    assert slots[slot] is None
    assert reason in texts(messages)


async def test_ordinary_answers_are_still_stored() -> None:
    assert (await validate(form_turn("contact_name", "陈女士")))[1] == {"contact_name": "陈女士"}
    assert (await validate(form_turn("company_name", "宁波海曙恒达贸易有限公司")))[1] == {
        "company_name": "宁波海曙恒达贸易有限公司"
    }


async def test_the_form_resumes_with_its_pending_question() -> None:
    resumed = tracker("ask_patent_fast_track", slots={"form_resume": True}, active_loop=FORM)
    messages, events = await run(ActionAskContactName(), resumed)
    assert texts(messages) == "我们继续：请问联系人怎么称呼？"
    assert slot_events(events) == {"form_resume": False}
    first = tracker(
        "request_insurance_consultation", events=[{"event": "action", "name": "action_listen"}]
    )
    messages, _ = await run(ActionAskCompanyName(), first)
    assert texts(messages).startswith("好的，我帮您登记") and "我们继续" not in texts(messages)


async def test_yes_out_of_the_blue_gets_a_neutral_reply() -> None:
    messages, _ = await run(ActionReplyYesNo(), tracker("affirm", text="好的"))
    assert "请问有什么可以帮您" in texts(messages) and "好的。还有什么" not in texts(messages)


async def test_yes_and_no_after_a_yes_no_question() -> None:
    asked = "不客气，很高兴能帮到您。还有其他问题吗？"
    messages, _ = await run(ActionReplyYesNo(), after_bot(asked, "affirm", "有的"))
    assert texts(messages) == "好的，请说您的问题。"
    messages, _ = await run(ActionReplyYesNo(), after_bot(asked, "deny", "没有了"))
    assert "感谢您的咨询" in texts(messages)


async def test_random_characters_read_as_yes_are_not_understood() -> None:
    messages, events = await run(ActionReplyYesNo(), tracker("affirm", text="的的的的"))
    assert "不太确定您的意思" in texts(messages) and events == []


@pytest.mark.parametrize("text", ["哦", "？", "😂", "嗯嗯", "。。。"])
def test_fillers(text: str) -> None:
    assert is_filler(text) and not is_gibberish(text)


@pytest.mark.parametrize("text", ["jkdsfhk", "xq7z9w", "qqqq"])
def test_gibberish(text: str) -> None:
    assert is_gibberish(text) and not is_filler(text)


async def test_a_filler_read_as_out_of_scope_gets_a_short_reply() -> None:
    messages, _ = await run(ActionAnswerKnowledge(), tracker("out_of_scope", text="哦"))
    assert "不在我的服务范围" not in texts(messages)
    assert "还有什么想问的" in texts(messages)


async def test_closing_time_without_a_place_asks_which_place() -> None:
    messages, _ = await run(
        ActionAnswerKnowledge(), tracker("ask_office_hours", text="你们几点下班")
    )
    assert "办公时间不一样" in texts(messages)


async def test_a_follow_up_without_its_topic_uses_the_last_topic() -> None:
    last = {"last_topic": "ask_geographical_indication"}
    messages, _ = await run(
        ActionAnswerKnowledge(), tracker("nlu_fallback", text="需要准备什么材料", slots=last)
    )
    assert "使用管理规则" in texts(messages)


async def test_two_questions_in_one_message_both_answered_in_order() -> None:
    messages, _ = await run(
        ActionAnswerKnowledge(),
        tracker("ask_geographical_indication", text="地理标志怎么申请，要多少钱"),
    )
    said = texts(messages)
    assert "证明商标" in said and "1500" in said
    assert said.index("证明商标或集体商标申请注册") < said.index("1500")


async def test_the_rating_is_offered_once_after_thanks() -> None:
    messages, events = await run(ActionOfferRating(), tracker("thank", text="谢谢"))
    assert [m["custom"] for m in messages] == [RATING]
    assert slot_events(events) == {"rating_offered": True}
    offered = tracker("thank", text="谢谢", slots={"rating_offered": True})
    assert await run(ActionOfferRating(), offered) == ([], [])
    in_form = tracker("thank", text="谢谢", active_loop=FORM)
    assert await run(ActionOfferRating(), in_form) == ([], [])


async def test_a_short_no_after_a_yes_no_question_is_not_searched() -> None:
    asked = "不客气，很高兴能帮到您。还有其他问题吗？"
    messages, _ = await run(ActionAnswerKnowledge(), after_bot(asked, "nlu_fallback", "没了没了"))
    assert "感谢您的咨询" in texts(messages) and "专利" not in texts(messages)
