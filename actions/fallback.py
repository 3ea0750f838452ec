"""The first stage of the two-stage fallback: "did you mean …?" with the likeliest topics.

Rasa's own version asks "Did you mean 'ask_ip_insurance'?" with the intent's name; this one offers
up to three topics in Chinese, "都不是" (→ out_of_scope, which makes Rasa ask for a rephrase) and
a way to a person.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.outcome import FALLBACK, note_outcome
from bot.domain.vocabulary import HUMAN_BUTTON, NONE_OF_THESE

# The topics a user can be asked to confirm, with the words shown on their buttons.
TOPIC_TITLES: dict[str, str] = {
    "ask_trademark_window": "商标注册与受理窗口",
    "find_brand_station": "商标品牌指导站",
    "ask_ip_insurance": "知识产权保险",
    "ask_one_stop_service": "“最多跑一地”与知识产权综合体",
    "ask_patent_fast_track": "专利预审快速通道",
    "ask_pledge_financing": "知识产权质押融资",
    "ask_geographical_indication": "地理标志",
    "report_infringement": "侵权投诉与维权",
}
SUGGESTIONS = 3


def likeliest_topics(tracker: Tracker, limit: int = SUGGESTIONS) -> list[str]:
    ranking = tracker.latest_message.get("intent_ranking") or []
    topics = [r["name"] for r in ranking if r.get("name") in TOPIC_TITLES]
    return topics[:limit]


def ask_which_topic(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    """The "did you mean" question with the likeliest topics, "都不是" and a person."""
    topics = likeliest_topics(tracker) or list(TOPIC_TITLES)[:SUGGESTIONS]
    buttons = [{"title": TOPIC_TITLES[t], "payload": f"/{t}"} for t in topics]
    dispatcher.utter_message(
        text="抱歉，我不太确定您的意思。您想咨询的是下面哪一项？",
        buttons=[*buttons, NONE_OF_THESE, HUMAN_BUTTON],
    )
    note_outcome(dispatcher, tracker, FALLBACK)  # for the review inbox


def ranked_out_of_scope(tracker: Tracker) -> bool:
    """Below the fallback threshold, but out_of_scope was still the classifier's best guess."""
    ranking = [r for r in tracker.latest_message.get("intent_ranking") or []]
    ranking = [r for r in ranking if r.get("name") != "nlu_fallback"]
    return bool(ranking) and ranking[0].get("name") == "out_of_scope"


class ActionDefaultAskAffirmation(Action):
    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        ask_which_topic(dispatcher, tracker)
        return []
