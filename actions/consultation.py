"""The insurance consultation form: validation, its questions, and storing the lead.

Slots hold what the user typed, unchanged (SQL or HTML is just text: it is bound as a query
parameter and shown as plain text); only the phone is normalised and checked.

A citizen inside the form may ask a question or chat instead of answering: a message the NLU
confidently reads as a topic question or small talk (or a question the knowledge base answers)
is answered by the validation, which fills nothing; the form then asks again, starting with
"我们继续：". A person ("转人工") and a cancel ("算了") are rules (data/rules/insurance.yml).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.interruptions import answer_interruption, is_question
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
RESUME_SLOT = "form_resume"
RESUME_PREFIX = "我们继续："
# Each slot's question: as first asked, and when the form resumes after an interruption.
QUESTIONS: dict[str, tuple[str, str]] = {
    "company_name": (
        "好的，我帮您登记知识产权保险咨询，工作人员会联系您。请问贵公司（单位）的名称是？"
        "随时说“算了”可以取消。",
        "请问贵公司（单位）的名称是？",
    ),
    "contact_name": ("请问联系人怎么称呼？", "请问联系人怎么称呼？"),
    "phone": (
        "请留一个联系电话：11位手机号，或带区号的固定电话（如0574-87654321）。",
        "请留一个联系电话：11位手机号，或带区号的固定电话（如0574-87654321）。",
    ),
}
COMPANY_MIN, COMPANY_MAX = 2, 60
NAME_MAX = 12
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


def company_problem(text: str) -> str | None:
    """Why a typed company name cannot be right, or None."""
    if len(text) < COMPANY_MIN:
        return "公司名称只有一个字，请输入完整的名称，如“宁波某某科技有限公司”"
    if len(text) > COMPANY_MAX:
        return f"公司名称超过{COMPANY_MAX}个字了，请只输入名称"
    if text.isdigit():
        return "公司名称不能只有数字"
    return None


def contact_name_problem(text: str) -> str | None:
    """Why a typed contact name cannot be right, or None."""
    if len(text) > NAME_MAX:
        return f"称呼有{len(text)}个字，太长了，请只输入姓名或称呼，如“王先生”"
    if any(ch.isdigit() for ch in text):
        return "称呼里不能有数字（电话号码下一步再填）"
    return None


def resuming(tracker: Tracker) -> bool:
    """The form comes back after its validation answered something else: its question starts
    with "我们继续："."""
    return bool(tracker.get_slot(RESUME_SLOT))


class ActionAskFormSlot(Action):
    """Asks one slot's question (action_ask_<slot>), prefixed when the form resumes."""

    slot = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        first, again = QUESTIONS[self.slot]
        text = RESUME_PREFIX + again if resuming(tracker) else first
        dispatcher.utter_message(text=text)
        return [SlotSet(RESUME_SLOT, False)]


class ActionAskCompanyName(ActionAskFormSlot):
    slot = "company_name"


class ActionAskContactName(ActionAskFormSlot):
    slot = "contact_name"


class ActionAskPhone(ActionAskFormSlot):
    slot = "phone"


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

    async def _interrupted(
        self, slot: str, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any] | None:
        """The slot's value when the message was a question or small talk: answered, nothing
        filled, and the form resumes; None when the message is an answer to the slot."""
        events = await answer_interruption(slot, dispatcher, tracker, domain)
        if events is None:
            return None
        filled = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
        return {**filled, slot: None, RESUME_SLOT: True}

    async def validate_company_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self._validate_name(
            "company_name", "公司名称", company_problem, value, dispatcher, tracker, domain
        )

    async def validate_contact_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self._validate_name(
            "contact_name", "联系人称呼", contact_name_problem, value, dispatcher, tracker, domain
        )

    async def _validate_name(
        self,
        slot: str,
        label: str,
        problem_of: Callable[[str], str | None],
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """A free-text slot: a question or request is answered instead, then the value is
        checked (a one-character company, a 20-character name) with the reason said."""
        interrupted = await self._interrupted(slot, dispatcher, tracker, domain)
        if interrupted is not None:
            return interrupted
        result = self._free_text(slot, value, dispatcher, label)
        problem = result[slot] and problem_of(result[slot])
        if problem:
            dispatcher.utter_message(text=f"{problem}。")
            return {slot: None}
        return result

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        interrupted = await self._interrupted("phone", dispatcher, tracker, domain)
        if interrupted is not None:
            return interrupted
        text = str(value or "")
        problem = contact_phone_problem(text)
        if problem is not None:
            dispatcher.utter_message(text=f"这个号码好像不对：{problem}。")
            return {"phone": None}
        return {"phone": normalize(text)}

    async def validate_products_of_interest(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if isinstance(value, list):  # several entities in one message
            value = "；".join(map(str, value))
        text = str(value or "")
        if text.strip() == ALL_PRODUCTS:
            return {"products_of_interest": ALL_PRODUCTS}
        products = products_in_text(text)
        if not products or is_question(text):  # "质押融资能贷多少" names a product, but asks
            interrupted = await self._interrupted(
                "products_of_interest", dispatcher, tracker, domain
            )
            if interrupted is not None:
                return interrupted
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
        question = "您想了解哪类保险？可以点选，也可以直接输入。"
        if resuming(tracker):
            question = RESUME_PREFIX + question
        dispatcher.utter_message(text=question, buttons=buttons)
        return [SlotSet(RESUME_SLOT, False)]


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
