"""The insurance consultation form: validation, the products question, and storing the lead.

Slots hold what the user typed, unchanged (SQL or HTML is just text: it is bound as a query
parameter and shown as plain text); only the phone is normalised and checked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.knowledge import KnowledgeUnavailable, query
from actions.replies import HUMAN_BUTTON, shorten
from bot.db.insurance import all_products
from bot.db.leads import store_lead
from bot.domain.phone import contact_phone_problem, normalize
from bot.domain.vocabulary import INSURANCE_TYPES

logger = logging.getLogger(__name__)

ALL_PRODUCTS = "全部险种"
ALL_WORDS = ("全部", "都想", "都要", "都可以", "都行", "所有", "不确定", "不知道")
FORM_SLOTS = ("company_name", "contact_name", "phone", "products_of_interest")
# Words users type for a product, mapped to the contract's insurance_type.
PRODUCT_WORDS: dict[str, str] = {
    "马德里": "商标申请费用损失补偿保险",
    "商标申请": "商标申请费用损失补偿保险",
    "商标侵权": "商标被侵权损失补偿保险",
    "商标被侵权": "商标被侵权损失补偿保险",
    "专利执行": "专利执行保险",
    "专利侵权": "专利被侵权损失保险",
    "专利被侵权": "专利被侵权损失保险",
    "海外": "海外侵权责任保险",
    "专利申请": "专利申请费用补偿保险",
    "PCT": "PCT申请损失补偿保险",
    "地理标志": "地理标志保险",
    "地标": "地理标志保险",
    "质押": "知识产权质押融资保证保险",
}


def products_in_text(text: str) -> list[str]:
    """The insurance types a typed answer names (in contract order), or [ALL_PRODUCTS]."""
    text = text.strip()
    if any(word in text for word in ALL_WORDS):
        return [ALL_PRODUCTS]
    named = {t for t in INSURANCE_TYPES if t in text}
    named |= {t for word, t in PRODUCT_WORDS.items() if word.lower() in text.lower()}
    return [t for t in INSURANCE_TYPES if t in named]


class ValidateInsuranceConsultationForm(FormValidationAction):
    def name(self) -> str:
        return "validate_insurance_consultation_form"

    @staticmethod
    def _free_text(slot: str, value: Any, dispatcher: CollectingDispatcher, what: str) -> dict:
        """A typed answer, stripped; a button payload or nothing at all is asked again."""
        if not isinstance(value, str) or not value.strip() or value.startswith("/"):
            dispatcher.utter_message(text=f"没有收到{what}，请再输入一次。")
            return {slot: None}
        return {slot: value.strip()}

    def validate_company_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._free_text("company_name", value, dispatcher, "公司名称")

    def validate_contact_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._free_text("contact_name", value, dispatcher, "联系人称呼")

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(value or "")
        problem = contact_phone_problem(text)
        if problem is not None:
            dispatcher.utter_message(text=f"这个号码好像不对：{problem}。")
            return {"phone": None}
        return {"phone": normalize(text)}

    def validate_products_of_interest(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, list):  # several entities in one message
            value = "；".join(map(str, value))
        text = str(value or "")
        if text.strip() == ALL_PRODUCTS:
            return {"products_of_interest": ALL_PRODUCTS}
        products = products_in_text(text)
        if not products:
            dispatcher.utter_message(text="没有识别出您想了解的险种，请点选下面的按钮。")
            return {"products_of_interest": None}
        return {"products_of_interest": "；".join(products)}


class ActionAskProductsOfInterest(Action):
    """Asks for the products of interest with one button per product in the database."""

    def name(self) -> str:
        return "action_ask_products_of_interest"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            types = [p.insurance_type for p in await query(all_products)]
        except KnowledgeUnavailable:
            types = []
        if not types:
            types = list(INSURANCE_TYPES)
        types = list(dict.fromkeys(types))  # one button per type, in order
        buttons = [
            {
                "title": t,
                "payload": "/inform" + json.dumps({"insurance_type": t}, ensure_ascii=False),
            }
            for t in types
        ]
        buttons.append(
            {
                "title": "都想了解",
                "payload": "/inform"
                + json.dumps({"insurance_type": ALL_PRODUCTS}, ensure_ascii=False),
            }
        )
        dispatcher.utter_message(
            text="您想了解哪类保险？可以点选，也可以直接输入。", buttons=buttons
        )
        return []


class ActionSubmitConsultation(Action):
    """Stores the lead and tells the user its reference number; then clears the form's slots."""

    def name(self) -> str:
        return "action_submit_consultation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        values = {slot: tracker.get_slot(slot) for slot in FORM_SLOTS}
        clear = [SlotSet(slot, None) for slot in FORM_SLOTS]
        if not all(values[s] for s in ("company_name", "contact_name", "phone")):
            dispatcher.utter_message(
                text="登记信息不完整，没有保存。可以重新登记或转人工。", buttons=[HUMAN_BUTTON]
            )
            return clear
        try:
            lead = await query(
                lambda s: store_lead(
                    s,
                    company=values["company_name"],
                    contact_name=values["contact_name"],
                    phone=values["phone"],
                    products=values["products_of_interest"],
                    conversation_id=tracker.sender_id,
                )
            )
        except KnowledgeUnavailable:
            logger.error("consultation request of %s not stored", tracker.sender_id)
            dispatcher.utter_message(
                text="抱歉，系统暂时无法保存您的登记，请稍后再试，或转人工。",
                buttons=[HUMAN_BUTTON],
            )
            return clear
        dispatcher.utter_message(
            text=(
                f"已登记您的保险咨询，编号 {lead.reference}。\n"
                f"公司：{shorten(values['company_name'])}\n"
                f"联系人：{shorten(values['contact_name'])}\n"
                f"电话：{values['phone']}\n"
                f"关注险种：{values['products_of_interest'] or '未选择'}\n"
                "工作人员会尽快与您联系，查询进度时请提供编号。"
            ),
            # Sent as typed text (empty payload): the gateway's status look-up recognises it.
            buttons=[{"title": f"查询 {lead.reference}", "payload": ""}],
        )
        return clear
