"""`action_answer_topic`: a topic's facts (the domain's utter_* text) and its places from the DB.

Trademark window, IP complex and protection centre answers: the facts stay in domain.yml, the
service points (address, hours, phone as staff keep them) come from the database, so a station
imported tomorrow shows up without a code change.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import KnowledgeUnavailable, query
from actions.replies import HUMAN_BUTTON, service_points_payload
from actions.service_points import missing_details
from bot.db.service_points import points_of_type

# intent → (facts response, service_type of its places)
TOPICS: dict[str, tuple[str, str]] = {
    "ask_trademark_window": ("utter_trademark_window", "商标受理窗口"),
    "ask_one_stop_service": ("utter_one_stop_service", "知识产权综合体"),
    "ask_patent_fast_track": ("utter_patent_fast_track", "知识产权保护中心"),
}
DEFAULT_TOPIC = "ask_trademark_window"


class ActionAnswerTopic(Action):
    def name(self) -> str:
        return "action_answer_topic"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        response, service_type = TOPICS.get(intent or "", TOPICS[DEFAULT_TOPIC])
        dispatcher.utter_message(response=response)
        try:
            points = await query(lambda s: points_of_type(s, service_type))
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_knowledge_unavailable", buttons=[HUMAN_BUTTON])
            return []
        if not points:
            dispatcher.utter_message(
                text=f"{service_type}的地址、办公时间和电话待核实，可以为您转人工。",
                buttons=[HUMAN_BUTTON],
            )
            return []
        dispatcher.utter_message(
            text=f"{service_type}：", json_message=service_points_payload(points)
        )
        if missing_details(points):
            dispatcher.utter_message(
                text=f"{service_type}的具体地址、办公时间或电话待核实，可以为您转人工确认。",
                buttons=[HUMAN_BUTTON],
            )
        return []
