"""Small talk that holds: yes/no only after a yes/no question, fillers, nonsense, the rating offer.

"好的" after "还有其他问题吗？" answers the question; "好的" out of the blue (or random characters
the NLU happened to read as `affirm`) gets a short neutral reply instead of an acknowledgement
of nothing.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ask_which_topic

RATING_SLOT = "rating_offered"
# Contract with the gateway (issue 16): this custom message becomes a rating card.
RATING_AFTER = ("thank", "goodbye")

NEUTRAL_REPLY = "请问有什么可以帮您？可以直接输入问题，比如“商标注册要多少钱”“鄞州有品牌指导站吗”。"
YES_REPLY = "好的，请说您的问题。"
NO_REPLY = "好的，感谢您的咨询！有需要随时来找我。"
DENY_NEUTRAL_REPLY = "好的，有需要随时告诉我。"
FILLER_REPLY = "嗯嗯，还有什么想问的，直接告诉我就好。"

# Words that really say yes or no; `affirm` / `deny` on anything else is the NLU guessing.
YES_WORDS = (
    "好", "是", "对", "嗯", "恩", "行", "可以", "要", "有", "ok", "OK", "Ok", "yes", "没错",
    "当然", "需要", "确定", "同意", "收到", "明白", "知道了", "中", "成", "没问题", "👌", "👍",
)  # fmt: skip
NO_WORDS = ("不", "没", "别", "算了", "no", "No", "NO", "无", "甭")
# A fillers' vocabulary: "哦", "嗯嗯", "哈哈"… and punctuation or emoji alone.
FILLER = re.compile(r"^[哦噢喔嗯恩哈呵额呃啊唔嘿嘻哇呀嗯哼了吧～~…。.，,！!？?\s]*$")
HAN = re.compile(r"[\u4e00-\u9fff]")
WORDISH = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")


def is_filler(text: str) -> bool:
    """Punctuation, emoji or interjections alone ("哦", "？", "😊", "嗯嗯")."""
    text = text.strip()
    return bool(text) and (FILLER.match(text) is not None or WORDISH.search(text) is None)


def is_gibberish(text: str) -> bool:
    """Random characters: Latin letters or digits with no Chinese and no known word."""
    text = text.strip()
    if not text or HAN.search(text) or not WORDISH.search(text):
        return False
    lowered = text.lower()
    known = ("hi", "hello", "hey", "bye", "ok", "yes", "no", "thanks", "thank", "88", "pct")
    return not any(word in lowered for word in known)


def says(text: str, words: tuple[str, ...]) -> bool:
    return any(word in text for word in words)


def last_bot_text(tracker: Tracker) -> str:
    for event in reversed(tracker.events):
        if event.get("event") == "bot" and event.get("text"):
            return str(event["text"])
    return ""


def asked_yes_no(tracker: Tracker) -> bool:
    """The bot's last message ends with a yes/no question ("还有其他问题吗？")."""
    text = last_bot_text(tracker).strip()
    return text.endswith(("吗？", "吗?", "吗")) or "是否" in text[-15:]


SHORT_REPLY = 5


def answer_to_yes_no(tracker: Tracker, text: str) -> str | None:
    """A short "没了没了" or "有的" right after a yes/no question answers it, whatever the NLU
    made of it; None otherwise."""
    if len(text) > SHORT_REPLY or not asked_yes_no(tracker):
        return None
    if says(text, NO_WORDS):
        return NO_REPLY
    if says(text, YES_WORDS):
        return YES_REPLY
    return None


class ActionReplyYesNo(Action):
    """`affirm` and `deny` outside a form and outside the two-stage fallback."""

    def name(self) -> str:
        return "action_reply_yes_no"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = (tracker.latest_message.get("text") or "").strip()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        words = YES_WORDS if intent == "affirm" else NO_WORDS
        meant = text.startswith("/") or says(text, words)
        if meant and asked_yes_no(tracker):
            reply = YES_REPLY if intent == "affirm" else NO_REPLY
        elif meant:
            reply = NEUTRAL_REPLY if intent == "affirm" else DENY_NEUTRAL_REPLY
        elif is_filler(text):
            reply = FILLER_REPLY
        else:  # random characters the NLU read as yes or no: not understood
            ask_which_topic(dispatcher, tracker)
            return []
        dispatcher.utter_message(text=reply)
        return []


class ActionOfferRating(Action):
    """After thanks or goodbye, once a conversation and never inside a form: a custom message
    the gateway turns into a rating card (the back office's satisfaction figures)."""

    def name(self) -> str:
        return "action_offer_rating"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent not in RATING_AFTER or tracker.get_slot(RATING_SLOT):
            return []
        if (tracker.active_loop or {}).get("name"):
            return []
        dispatcher.utter_message(json_message={"rating_request": {"after": intent}})
        return [SlotSet(RATING_SLOT, True)]
