"""Inside a form: is the citizen's message an answer to the question, or something else?

Something else is a message the NLU confidently reads as a topic question or small talk, or a
question the knowledge base answers outright. It is answered here (by the same actions that
answer it outside the form) and no slot is filled; the form then asks its question again.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerKnowledge, current_snapshot, decide_for, send_item
from actions.fallback import TOPIC_TITLES
from actions.insurance import ActionInsuranceProducts
from actions.service_points import ActionFindServicePoints

# Above this the NLU's reading wins over taking the text as the slot's value; a message worded
# as a question needs less. A topic needs the question's wording for the free-text slots: "我是
# 负责知识产权事务的主管" is a (too long) name, not a question about IP.
CONFIDENT = 0.8
CONFIDENT_QUESTION = 0.5
FREE_TEXT = ("company_name", "contact_name")
QUESTION = re.compile(
    r"[？?]|吗|怎么|怎样|如何|多少|多久|哪里|哪儿|哪个|什么|能不能|可不可以|是否|有没有|请问|还是|几|多长|啥|咋"
)
# Names of organisations end like this: "宁波市知识产权保护中心" is a company name here.
ORGANISATION = re.compile(r"(公司|厂|中心|店|所|院|局|社|会|部|行|室|馆|站|集团|企业|工作室)$")
PHONE_DIGITS = re.compile(r"\d[\d\s-]{6,}")

SMALL_TALK_REPLIES = {
    "greet": "您好！",
    "check_presence": "在的。",
    "thank": "不客气。",
    "goodbye": "好的。如果不想登记了，说“算了”就可以取消。",
    "bot_challenge": (
        "我是智能助手（机器人）。登记后工作人员会联系您；需要真人帮忙，可以说“转人工”。"
    ),
    "affirm": "好的。",
    "request_insurance_consultation": "好的，正在为您登记。",
}
ANSWERED_BY = {"ask_office_hours", *TOPIC_TITLES}


UNANSWERED = "这个问题我暂时没有找到准确的答案，登记完成后可以接着问我，或者说“转人工”。"


def best_guess(tracker: Tracker) -> tuple[str | None, float]:
    """The NLU's intent and confidence; below the fallback threshold, its best guess still."""
    intent = tracker.latest_message.get("intent") or {}
    if intent.get("name") == "nlu_fallback":
        ranking = tracker.latest_message.get("intent_ranking") or []
        intent = next((r for r in ranking if r.get("name") != "nlu_fallback"), intent)
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def is_question(text: str) -> bool:
    return QUESTION.search(text) is not None


def looks_like_answer(slot: str, text: str) -> bool:
    """The text has the shape of this slot's answer (a company's name, a phone number)."""
    if slot == "company_name":
        return ORGANISATION.search(text) is not None and not is_question(text)
    if slot == "phone":
        return PHONE_DIGITS.search(text) is not None
    return False


async def answer_topic(
    intent: str, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
) -> list[EventType]:
    if intent == "ask_ip_insurance":
        return await ActionInsuranceProducts().run(dispatcher, tracker, domain)
    if intent == "find_brand_station" and next(tracker.get_latest_entity_values("district"), None):
        return await ActionFindServicePoints().run(dispatcher, tracker, domain)
    # Without a district, the station search would ask for one in the middle of the form.
    return await ActionAnswerKnowledge().run(dispatcher, tracker, domain)


async def answer_interruption(
    slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
) -> list[EventType] | None:
    """The events of answering the message, or None when it is the slot's answer."""
    text = (tracker.latest_message.get("text") or "").strip()
    intent, confidence = best_guess(tracker)
    if not text or looks_like_answer(slot, text):
        return None
    question = is_question(text)
    sure = confidence >= CONFIDENT or (question and confidence >= CONFIDENT_QUESTION)
    button = text.startswith("/")
    topic_wording = question or slot not in FREE_TEXT
    if intent in ANSWERED_BY and (button or (sure and topic_wording)):
        said = len(dispatcher.messages)
        events = await answer_topic(intent, dispatcher, tracker, domain)
        if len(dispatcher.messages) == said:
            dispatcher.utter_message(text=UNANSWERED)
        return [e for e in events if e.get("event") == "slot"]
    if intent in SMALL_TALK_REPLIES and sure and len(text) <= 12:
        dispatcher.utter_message(text=SMALL_TALK_REPLIES[intent])
        return []
    if button or not question:
        return None
    snapshot = await current_snapshot(dispatcher)
    if snapshot is None:
        return None
    decision = decide_for(tracker, snapshot)
    if decision.band == "answer" and decision.best is not None:
        return await send_item(dispatcher, snapshot.items[decision.best.key], snapshot)
    if slot in FREE_TEXT:  # a question is never a name, even one nobody can answer
        dispatcher.utter_message(text=UNANSWERED)
        return []
    return None
