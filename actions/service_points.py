"""`action_find_service_points`: where to go for a service, read from the knowledge base."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.knowledge import KnowledgeUnavailable, query
from actions.replies import HUMAN_BUTTON, district_buttons, service_points_payload
from bot.db.service_points import Lookup, LookupStatus, lookup_service_points
from bot.vocabulary import SERVICE_TYPES

DEFAULT_SERVICE_TYPE = "商标品牌指导站"
SERVICE_TYPE_BY_INTENT = {"find_brand_station": "商标品牌指导站"}


def requested_service_type(tracker: Tracker) -> str:
    """The service asked for: this message's entity, its intent, or the one asked about before."""
    for value in tracker.get_latest_entity_values("service_type"):
        if value in SERVICE_TYPES:
            return value
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    if intent in SERVICE_TYPE_BY_INTENT:
        return SERVICE_TYPE_BY_INTENT[intent]
    remembered = tracker.get_slot("service_type")
    return remembered if remembered in SERVICE_TYPES else DEFAULT_SERVICE_TYPE


def requested_district(tracker: Tracker) -> str | None:
    """The district named in the latest message (entities are already synonym-mapped)."""
    return next(tracker.get_latest_entity_values("district"), None)


def has_missing_details(lookup: Lookup) -> bool:
    return any(not (p.address and p.phone) for p in lookup.points or lookup.elsewhere)


class ActionFindServicePoints(Action):
    def name(self) -> str:
        return "action_find_service_points"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        service_type = requested_service_type(tracker)
        district = requested_district(tracker)
        events: list[EventType] = [SlotSet("service_type", service_type)]

        if district is None:
            dispatcher.utter_message(
                text=f"请问您在哪个区县（市）？我帮您查那里的{service_type}。",
                buttons=district_buttons(),
            )
            return events

        try:
            lookup = await query(lambda s: lookup_service_points(s, service_type, district))
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_knowledge_unavailable", buttons=[HUMAN_BUTTON])
            return events

        if lookup.status is LookupStatus.UNKNOWN_DISTRICT:
            dispatcher.utter_message(
                text=f"“{district}”不在宁波市的区县（市）范围内，请选择一个区县：",
                buttons=district_buttons(),
            )
            return events

        events.append(SlotSet("district", lookup.district))
        if lookup.status is LookupStatus.FOUND:
            dispatcher.utter_message(
                text=f"{lookup.district}的{service_type}有 {len(lookup.points)} 个：",
                json_message=service_points_payload(lookup.points),
            )
        elif lookup.elsewhere:
            dispatcher.utter_message(
                text=(
                    f"{lookup.district}目前没有收录已核实的{service_type}。"
                    f"以下是全市已公开报道的{len(lookup.elsewhere)}个，供您参考："
                ),
                json_message=service_points_payload(lookup.elsewhere),
            )
        else:
            dispatcher.utter_message(text=f"目前没有收录{service_type}的信息。")

        if has_missing_details(lookup):
            dispatcher.utter_message(
                text="部分站点的地址、开放时间或电话待核实，建议出发前先转人工确认。",
                buttons=[HUMAN_BUTTON],
            )
        return events
