"""`action_find_service_points`: where to go for a service, read from the knowledge base."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import answer_specific
from actions.knowledge import KnowledgeUnavailable, query
from actions.location import shared_location
from actions.replies import (
    HUMAN_BUTTON,
    district_buttons,
    missing_details,
    service_points_payload,
)
from bot.db.models import ServicePoint
from bot.db.service_points import (
    Lookup,
    LookupStatus,
    by_distance,
    district_centre,
    lookup_service_points,
    nearest_points,
)
from bot.domain.vocabulary import SERVICE_TYPES

DEFAULT_SERVICE_TYPE = "商标品牌指导站"
SERVICE_TYPE_BY_INTENT = {
    "find_brand_station": "商标品牌指导站",
    "ask_trademark_window": "商标受理窗口",
    "ask_one_stop_service": "知识产权综合体",
    "ask_patent_fast_track": "知识产权保护中心",
}
NEAREST = 3


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


def distance_text(pairs: list[tuple[ServicePoint, float]]) -> str:
    return "；".join(f"{p.name}约{km:.1f}公里" for p, km in pairs)


def send_points(
    dispatcher: CollectingDispatcher,
    text: str,
    points: list[ServicePoint],
    distances: list[float] | None = None,
) -> None:
    dispatcher.utter_message(text=text, json_message=service_points_payload(points, distances))
    if missing_details(points):
        dispatcher.utter_message(
            text="部分站点的地址、开放时间或电话待核实，建议出发前先转人工确认。",
            buttons=[HUMAN_BUTTON],
        )


def nearest_answer(
    service_type: str, pairs: list[tuple[ServicePoint, float]], everyone: list[ServicePoint]
) -> tuple[str, list[ServicePoint], list[float] | None]:
    """Text and cards for a shared location: the nearest located points, else the city list."""
    if pairs:
        text = f"离您最近的{len(pairs)}个{service_type}（直线距离）：{distance_text(pairs)}。"
        return text, [p for p, _ in pairs], [km for _, km in pairs]
    text = (
        f"{service_type}的位置信息还没有核实，无法按距离排序。以下是全市已收录的{len(everyone)}个："
    )
    return text, everyone, None


class ActionFindServicePoints(Action):
    def name(self) -> str:
        return "action_find_service_points"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        service_type = requested_service_type(tracker)
        district = requested_district(tracker)
        location = shared_location(tracker)
        events: list[EventType] = [SlotSet("service_type", service_type)]
        if location is not None:
            events += [SlotSet("latitude", location[0]), SlotSet("longitude", location[1])]

        if location is not None and district is None:
            return events + await self.answer_nearest(dispatcher, service_type, location)

        if district is None and not tracker.get_slot("requested_slot"):
            # "品牌指导站提供什么服务": a specific question, not a search for a place.
            answered = await answer_specific(dispatcher, tracker)
            if answered is not None:
                return answered

        if district is None:
            dispatcher.utter_message(
                text=f"请问您在哪个区县（市）？我帮您查那里的{service_type}。",
                buttons=district_buttons(),
            )
            return events

        try:
            lookup = await query(lambda s: lookup_service_points(s, service_type, district))
            centre = location
            if (
                centre is None
                and lookup.status is LookupStatus.NONE_IN_DISTRICT
                and lookup.district is not None
            ):
                known = lookup.district
                centre = await query(lambda s: district_centre(s, known))
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
            send_points(
                dispatcher,
                f"{lookup.district}的{service_type}有 {len(lookup.points)} 个：",
                lookup.points,
            )
        elif lookup.elsewhere:
            self.answer_elsewhere(dispatcher, service_type, lookup, centre)
        else:
            dispatcher.utter_message(
                text=f"目前没有收录{service_type}的信息，可以为您转人工。", buttons=[HUMAN_BUTTON]
            )
        return events

    @staticmethod
    def answer_elsewhere(
        dispatcher: CollectingDispatcher,
        service_type: str,
        lookup: Lookup,
        centre: tuple[float, float] | None,
    ) -> None:
        """None in the asked district: the nearest elsewhere when positions allow, else all."""
        pairs = by_distance(lookup.elsewhere, *centre)[:NEAREST] if centre else []
        if pairs:
            send_points(
                dispatcher,
                f"{lookup.district}目前没有收录已核实的{service_type}。"
                f"附近其他区县最近的{len(pairs)}个（直线距离）：{distance_text(pairs)}。",
                [p for p, _ in pairs],
                [km for _, km in pairs],
            )
            return
        send_points(
            dispatcher,
            f"{lookup.district}目前没有收录已核实的{service_type}。"
            f"以下是全市已公开报道的{len(lookup.elsewhere)}个，供您参考：",
            lookup.elsewhere,
        )

    @staticmethod
    async def answer_nearest(
        dispatcher: CollectingDispatcher, service_type: str, location: tuple[float, float]
    ) -> list[EventType]:
        try:
            pairs, everyone = await query(
                lambda s: (
                    nearest_points(s, service_type, *location, limit=NEAREST),
                    lookup_service_points(s, service_type, None).points,
                )
            )
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_knowledge_unavailable", buttons=[HUMAN_BUTTON])
            return []
        if not everyone:
            dispatcher.utter_message(
                text=f"目前没有收录{service_type}的信息，可以为您转人工。", buttons=[HUMAN_BUTTON]
            )
            return []
        text, points, distances = nearest_answer(service_type, pairs, everyone)
        send_points(dispatcher, text, points, distances)
        return []
