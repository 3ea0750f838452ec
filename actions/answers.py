"""`action_answer_knowledge`: answer a question from the published knowledge items.

The items live in the database and staff edit them in the console; this action reads them through
`LiveKnowledge`, which notices a published change within a second or two: no retraining, no
restart. The NLU's intent and the topic answered on the turn before are hints for the search.

Above the answer threshold: the item's direct answer, its details and source, related
questions. In the middle band: "您是想问：" with the best items as buttons. Below: the topic's
overview when the NLU is sure of the topic (what the bot has always said), else the topics to
choose from and 转人工.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import NONE_OF_THESE, TOPIC_TITLES, ask_which_topic, ranked_out_of_scope
from actions.knowledge import KnowledgeUnavailable, action_settings, query
from actions.outcome import ANSWERED, NOT_FOUND, SUGGESTED, note_outcome
from actions.outcome import OUT_OF_SCOPE as NOTED_OUT_OF_SCOPE
from actions.replies import HUMAN_BUTTON, missing_details, service_points_payload
from actions.smalltalk import FILLER_REPLY, answer_to_yes_no, is_filler, is_gibberish
from bot.db.service_points import points_of_type
from bot.knowledge.embed import DEFAULT_CACHE, Embedder
from bot.knowledge.live import LiveKnowledge, Snapshot
from bot.knowledge.reply import (
    Decision,
    answer_messages,
    decide,
    suggestion_message,
)
from bot.knowledge.search import Entry

logger = logging.getLogger(__name__)

LAST_TOPIC_SLOT = "last_topic"
NOT_UNDERSTOOD, OUT_OF_SCOPE = "nlu_fallback", "out_of_scope"
# Rasa's own two-stage fallback (did you mean … → rephrase → a person) for what nothing matched.
TWO_STAGE_FALLBACK = "action_two_stage_fallback"
# The NLU's topic is trusted for the overview fallback only above this confidence.
TOPIC_CONFIDENCE = 0.7
# Overviews of topics that have places to go: the places (from the database) follow the answer.
PLACES_OF_TOPIC = {
    "ask_trademark_window": "商标受理窗口",
    "ask_one_stop_service": "知识产权综合体",
    "ask_patent_fast_track": "知识产权保护中心",
}


# A short follow-up ("那要多久", "要带什么") is asked about the topic of the turn before: it is
# searched again with the topic's subject in front ("地理标志要带什么").
SUBJECT_OF_TOPIC = {
    "ask_trademark_window": "商标注册",
    "find_brand_station": "商标品牌指导站",
    "ask_ip_insurance": "知识产权保险",
    "ask_one_stop_service": "知识产权综合体",
    "ask_patent_fast_track": "专利预审",
    "ask_pledge_financing": "知识产权质押融资",
    "ask_geographical_indication": "地理标志",
    "report_infringement": "侵权投诉",
}
FOLLOW_UP_MAX_CHARS = 10
FOLLOW_UP_START = ("那", "那么", "还有", "另外", "然后", "再问")
# "PCT申请损失险保什么，怎么买": two questions, split at punctuation and "还有"/"另外"/"顺便问".
PART_SEPARATOR = re.compile(r"[，,；;。？?！!\s]+|还有|另外|顺便问一下|顺便问下|顺便问")
# Where the subject of a question ends ("地理标志|怎么申请"): carried into a subject-less part.
QUESTION_WORDS = re.compile(
    r"保什么|怎么|怎样|如何|多少|多久|多长|哪里|哪儿|在哪|什么|啥|咋|能不能|可以|需要|要不要|是不是|有没有|吗"
)
OFFICE_HOURS = "ask_office_hours"
OFFICE_HOURS_REPLY = (
    "各服务窗口的办公时间不一样。您想去哪里办事？告诉我地方（比如商标受理窗口、商标品牌指导站、"
    "知识产权保护中心）和所在区县，我帮您查地址和办公时间。"
)


def overview_key(topic: str) -> str:
    """find_brand_station → overview-brand-station (the seed's naming of overview items)."""
    for prefix in ("ask_", "find_", "report_"):
        topic = topic.removeprefix(prefix)
    return "overview-" + topic.replace("_", "-")


@lru_cache(maxsize=1)
def live_knowledge() -> LiveKnowledge:
    settings = action_settings()
    return LiveKnowledge(
        settings.database_url,
        settings.db_timeout,
        Embedder(DEFAULT_CACHE),
        poll_seconds=settings.kb_poll_seconds,
    )


def nlu_topic(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    name = intent.get("name")
    return (name if name in TOPIC_TITLES else None), float(intent.get("confidence") or 0.0)


def question_text(tracker: Tracker) -> str:
    """What the citizen typed; a button's intent payload ("/ask_…") carries no question."""
    text = (tracker.latest_message.get("text") or "").strip()
    return "" if text.startswith("/") else text


def is_follow_up(text: str) -> bool:
    return len(text) <= FOLLOW_UP_MAX_CHARS or text.startswith(FOLLOW_UP_START)


def decide_for(tracker: Tracker, snapshot: Snapshot, text: str | None = None) -> Decision:
    text = question_text(tracker) if text is None else text
    if not text:
        return Decision("none", ())
    topic, confidence = nlu_topic(tracker)
    previous = tracker.get_slot(LAST_TOPIC_SLOT)
    # A sure new topic ("商标的官费多少" after 地理标志) is not a follow-up of the old one.
    other_topic = topic is not None and topic != previous and confidence >= TOPIC_CONFIDENCE
    hits = snapshot.index.search(
        text, topic=topic, previous_topic=None if other_topic else previous
    )
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    decision = decide(hits, doubted=intent in (NOT_UNDERSTOOD, OUT_OF_SCOPE))
    if previous in SUBJECT_OF_TOPIC and is_follow_up(text) and not other_topic:
        subject = SUBJECT_OF_TOPIC[previous]
        followed = decide(
            snapshot.index.search(subject + text, topic=previous, previous_topic=previous)
        )
        if followed.band == "answer" or (decision.band != "answer" and followed.band != "none"):
            return followed
    return decision


def subject_of(question: str) -> str:
    """The words before the first question word ("地理标志怎么申请" → "地理标志")."""
    found = QUESTION_WORDS.search(question, 2)
    return question[: found.start()] if found else ""


def question_parts(text: str) -> list[str]:
    """The questions of a message, when it has several ("网上申请商标，一个类别收多少钱" is one:
    its first part asks nothing)."""
    parts = [p for p in PART_SEPARATOR.split(text) if len(p) >= 2]
    if len(parts) < 2 or not all(QUESTION_WORDS.search(p) for p in parts):
        return []
    return parts


async def answer_parts(
    dispatcher: CollectingDispatcher, tracker: Tracker, snapshot: Snapshot
) -> list[EventType] | None:
    """Two (or more) questions in one message, each answered outright: answered in order.
    None when the message is one question, or when a part has no sure answer."""
    parts = question_parts(question_text(tracker))
    if not parts:
        return None
    subject = subject_of(parts[0])
    chosen: list[str] = []
    for part in parts:
        decision = decide_for(tracker, snapshot, part)
        if decision.band != "answer" and subject and not part.startswith(subject):
            decision = decide_for(tracker, snapshot, subject + part)
        best = decision.best
        if decision.band != "answer" or best is None or best.key in chosen:
            return None
        chosen.append(best.key)
    events: list[EventType] = []
    for key in chosen:
        events += await send_item(dispatcher, snapshot.items[key], snapshot)
    return events


async def send_item(
    dispatcher: CollectingDispatcher, item: Entry, snapshot: Snapshot
) -> list[EventType]:
    for message in answer_messages(item, snapshot.items):
        dispatcher.utter_message(**message)
    if item.key == overview_key(item.topic) and item.topic in PLACES_OF_TOPIC:
        await send_places(dispatcher, PLACES_OF_TOPIC[item.topic])
    return [SlotSet(LAST_TOPIC_SLOT, item.topic)]


async def send_noted(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    item: Entry,
    snapshot: Snapshot,
    score: float | None = None,
) -> list[EventType]:
    """send_item, then the note for the dashboard (actions/outcome.py)."""
    events = await send_item(dispatcher, item, snapshot)
    note_outcome(dispatcher, tracker, ANSWERED, item.key, item.topic, score)
    return events


async def send_places(dispatcher: CollectingDispatcher, service_type: str) -> None:
    try:
        points = await query(lambda s: points_of_type(s, service_type))
    except KnowledgeUnavailable:
        return  # the answer is out already; the places are a bonus
    if not points:
        return
    dispatcher.utter_message(text=f"{service_type}：", json_message=service_points_payload(points))
    if missing_details(points):
        dispatcher.utter_message(
            text=f"{service_type}的具体地址、办公时间或电话待核实，可以为您转人工确认。",
            buttons=[HUMAN_BUTTON],
        )


async def current_snapshot(dispatcher: CollectingDispatcher) -> Snapshot | None:
    """The knowledge snapshot, or None after telling the citizen it is unavailable."""
    try:
        return await live_knowledge().snapshot()
    except Exception:  # a dead or slow database: an apology and a person, never silence
        logger.exception("knowledge base unavailable")
        dispatcher.utter_message(response="utter_knowledge_unavailable", buttons=[HUMAN_BUTTON])
        return None


async def answer_specific(
    dispatcher: CollectingDispatcher, tracker: Tracker, cards_say_it: frozenset[str] = frozenset()
) -> list[EventType] | None:
    """Answer from the knowledge base when it confidently finds a specific (non-overview) item;
    None when it does not, so that the caller (stations, insurance) answers as it always has.
    `cards_say_it`: items the caller's cards answer better ("有哪些保险": the product cards)."""
    try:
        snapshot = await live_knowledge().snapshot()
    except Exception:
        logger.exception("knowledge base unavailable")
        return None
    parts = await answer_parts(dispatcher, tracker, snapshot)
    if parts is not None:
        return parts
    decision = decide_for(tracker, snapshot)
    best = decision.best
    if decision.band != "answer" or best is None or best.key == overview_key(best.topic):
        return None
    if best.key in cards_say_it:
        return None
    if snapshot.items[best.key].unknown:
        return None  # "在哪": the caller's places from the database say more than "not verified"
    return await send_item(dispatcher, snapshot.items[best.key], snapshot)


async def send_overview(dispatcher: CollectingDispatcher, topic: str) -> list[EventType]:
    """The topic's overview item (nothing when the knowledge base cannot be read)."""
    try:
        snapshot = await live_knowledge().snapshot()
    except Exception:
        logger.exception("knowledge base unavailable")
        return []
    item = snapshot.items.get(overview_key(topic))
    return [] if item is None else await send_item(dispatcher, item, snapshot)


class ActionAnswerKnowledge(Action):
    """Topic questions, and also what the NLU did not understand or thought out of scope: a
    question worded unlike the training examples may still be one the knowledge base answers."""

    def name(self) -> str:
        return "action_answer_knowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        text = question_text(tracker)
        reply = answer_to_yes_no(tracker, text)
        if reply is not None:  # "没了没了" after "还有其他问题吗？"
            dispatcher.utter_message(text=reply)
            return []
        if intent in (NOT_UNDERSTOOD, OUT_OF_SCOPE) and is_filler(text):
            dispatcher.utter_message(text=FILLER_REPLY)  # "哦", "？", an emoji alone
            return []
        if intent in (NOT_UNDERSTOOD, OUT_OF_SCOPE) and is_gibberish(text):
            ask_which_topic(dispatcher, tracker)  # random letters: "did you mean", never a topic
            return []
        if intent == OFFICE_HOURS and not tracker.get_slot(LAST_TOPIC_SLOT):
            dispatcher.utter_message(text=OFFICE_HOURS_REPLY, buttons=[HUMAN_BUTTON])
            return []  # which place: the hours differ, and nothing was talked about yet
        snapshot = await current_snapshot(dispatcher)
        if snapshot is None:
            return []
        parts = await answer_parts(dispatcher, tracker, snapshot)
        if parts is not None:
            return parts
        decision = decide_for(tracker, snapshot)
        best = decision.best
        if decision.band == "answer" and best is not None:
            item = snapshot.items[best.key]
            return await send_noted(dispatcher, tracker, item, snapshot, best.score)
        if intent == OFFICE_HOURS:
            dispatcher.utter_message(text=OFFICE_HOURS_REPLY, buttons=[HUMAN_BUTTON])
            return []
        if intent == NOT_UNDERSTOOD and ranked_out_of_scope(tracker) and question_text(tracker):
            dispatcher.utter_message(response="utter_out_of_scope")  # 台风, 公积金: not ours
            note_outcome(dispatcher, tracker, NOTED_OUT_OF_SCOPE)
            return []
        if intent == NOT_UNDERSTOOD:
            if decision.band != "none":
                dispatcher.utter_message(**suggestion_message(decision.hits))
                note_outcome(dispatcher, tracker, SUGGESTED, score=best.score if best else None)
                return []
            return [FollowupAction(TWO_STAGE_FALLBACK)]  # which notes the fallback itself
        if intent == OUT_OF_SCOPE:
            has_question = bool(question_text(tracker))
            dispatcher.utter_message(
                response="utter_out_of_scope" if has_question else "utter_ask_rephrase"
            )
            if has_question:
                note_outcome(dispatcher, tracker, NOTED_OUT_OF_SCOPE)
            return []
        return await self.answer_topic(dispatcher, tracker, snapshot, decision)

    @staticmethod
    async def answer_topic(
        dispatcher: CollectingDispatcher, tracker: Tracker, snapshot: Snapshot, decision: Decision
    ) -> list[EventType]:
        topic, confidence = nlu_topic(tracker)
        overview = snapshot.items.get(overview_key(topic)) if topic else None
        # A topic button (its intent comes with confidence 1.0, also after the two-stage
        # fallback's clarification) asks for the topic itself: its overview.
        chosen = confidence >= 1.0 or not question_text(tracker)
        # A general question about a sure topic ("商标受理窗口在哪") has the overview among its
        # close calls: the overview answers it. Other close calls: the citizen chooses.
        general = (
            confidence >= TOPIC_CONFIDENCE
            and overview is not None
            and any(h.key == overview.key for h in decision.hits)
        )
        if overview is not None and (chosen or general):
            return await send_noted(dispatcher, tracker, overview, snapshot)
        best = decision.best
        if decision.band == "suggest":
            dispatcher.utter_message(**suggestion_message(decision.hits))
            note_outcome(dispatcher, tracker, SUGGESTED, score=best.score if best else None)
            return []
        if overview is not None and confidence >= TOPIC_CONFIDENCE:
            return await send_noted(dispatcher, tracker, overview, snapshot)
        buttons = [{"title": title, "payload": f"/{t}"} for t, title in TOPIC_TITLES.items()]
        dispatcher.utter_message(
            text="抱歉，这个问题我还没有找到准确的答案。您可以选择想咨询的事项，或转人工。",
            buttons=[*buttons[:3], NONE_OF_THESE, HUMAN_BUTTON],
        )
        note_outcome(dispatcher, tracker, NOT_FOUND, score=best.score if best else None)
        return []
