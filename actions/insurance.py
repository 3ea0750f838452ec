"""`action_insurance_products`: IP insurance products from the database, then a consultation offer.

A specific question the knowledge base answers confidently ("商标保险最高赔多少") gets that answer.
No insurance_type asked → the topic's overview item (with its 2021 figures) and every product's
card; one asked → that product's card. Premiums and limits are shown only where a
source gives them; otherwise the card says 待核实 and the bot offers a person.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import answer_specific, send_overview
from actions.knowledge import KnowledgeUnavailable, query
from actions.replies import HUMAN_BUTTON, consultation_button, insurance_products_payload
from bot.db.insurance import all_products, products_of_type
from bot.domain.vocabulary import INSURANCE_TYPES

# "有哪些知识产权保险": the overview and every product's card answer it better than one item.
LISTED_BY_THE_CARDS = frozenset({"insurance-existing-lines"})
OFFER = "如需了解投保条件、保费和补贴，可以登记咨询，工作人员会联系您。"


def requested_insurance_type(tracker: Tracker) -> str | None:
    """The insurance_type of this message only: an old one would hide the overview."""
    for value in tracker.get_latest_entity_values("insurance_type"):
        if value in INSURANCE_TYPES:
            return value
    return None


class ActionInsuranceProducts(Action):
    def name(self) -> str:
        return "action_insurance_products"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        insurance_type = requested_insurance_type(tracker)
        events: list[EventType] = []
        if insurance_type is None:
            answered = await answer_specific(dispatcher, tracker, LISTED_BY_THE_CARDS)
            if answered is not None:
                return answered
            events = await send_overview(dispatcher, "ask_ip_insurance")
        try:
            if insurance_type is None:
                products = await query(all_products)
            else:
                products = await query(lambda s: products_of_type(s, insurance_type))
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_knowledge_unavailable", buttons=[HUMAN_BUTTON])
            return []

        if insurance_type is not None and not products:
            dispatcher.utter_message(
                text=f"关于“{insurance_type}”，我这里还没有核实的产品信息（保障范围、保费、保额），"
                "可以登记咨询或转人工。",
                buttons=[consultation_button(), HUMAN_BUTTON],
            )
            return []
        if products:
            intro = (
                f"{insurance_type}的产品信息如下（来源见卡片）："
                if insurance_type
                else f"已收录的知识产权保险产品有 {len(products)} 个（来源见各卡片）："
            )
            if insurance_type:  # the dated figures (截至2021年 …) live in the note
                intro += "".join(f"\n{p.note}" for p in products if p.note)
            dispatcher.utter_message(text=intro, json_message=insurance_products_payload(products))
        unknown_price = any(p.premium is None for p in products)
        tail = "保费和保额待核实。" if unknown_price else ""
        dispatcher.utter_message(text=tail + OFFER, buttons=[consultation_button(), HUMAN_BUTTON])
        return events
