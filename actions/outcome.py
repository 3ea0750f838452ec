"""A note to the gateway of what the bot did with the citizen's question (issue 17).

Sent as a custom message `{"meta": {...}}` that the gateway stores with the question and never
shows (bot.conversation.pipeline.is_meta): the dashboard counts topics and knowledge items from
it, and the review inbox lists the questions that were not answered outright.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

# The values of bot.db.review.OUTCOMES.
ANSWERED, SUGGESTED, NOT_FOUND, FALLBACK, OUT_OF_SCOPE = (
    "answered",
    "suggested",
    "not_found",
    "fallback",
    "out_of_scope",
)


def note_outcome(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    outcome: str,
    key: str | None = None,
    topic: str | None = None,
    score: float | None = None,
) -> None:
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    meta: dict[str, object] = {"outcome": outcome}
    if topic or intent:
        meta["topic"] = topic or intent
    if key:
        meta["key"] = key
    if score is not None:
        meta["score"] = round(float(score), 4)
    dispatcher.utter_message(json_message={"meta": meta})
