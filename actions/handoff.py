"""Handing a conversation to a person: `action_handoff` and the fallback's last resort.

Both pause the conversation (Rasa stops answering until the gateway posts a `resume` event) and
send exactly one message, a custom payload without text:
`{"handoff": {"reason": "user" | "fallback", "intents": [...]}}`. The gateway recognises the
"handoff" key, shows its own queue notice instead of a bubble and starts the handoff; the intents
tell the staff member what the citizen asked about before.
"""

from __future__ import annotations

from typing import Any, Literal

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher

Reason = Literal["user", "fallback"]

# Intents that say nothing about the citizen's question ("都不是" in the fallback is out_of_scope).
NOT_A_TOPIC = frozenset(
    {
        "request_human",
        "nlu_fallback",
        "out_of_scope",
        "greet",
        "affirm",
        "deny",
        "thank",
        "goodbye",
    }
)


def session_intents(tracker: Tracker) -> list[str]:
    """The distinct intents of this session's user messages, oldest first, topics only.

    `applied_events` drops what a restart or a reverted utterance undid (the two-stage fallback
    replaces a not-understood message by the clarified one); Rasa sends every session's events,
    so only those after the last `session_started` count.
    """
    intents: list[str] = []
    for event in tracker.applied_events():
        if event.get("event") == "session_started":
            intents = []
        elif event.get("event") == "user":
            name = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if name and name not in NOT_A_TOPIC and name not in intents:
                intents.append(name)
    return intents


def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker, reason: Reason) -> list[EventType]:
    dispatcher.utter_message(
        json_message={"handoff": {"reason": reason, "intents": session_intents(tracker)}}
    )
    # Paused, Rasa predicts nothing more, so it would never log the `action_listen` that ends a
    # bot turn; without it the first message after the hand-back would follow `action_handoff`
    # directly and match no rule (rules start after `action_listen`).
    return [ConversationPaused(), ActionExecuted("action_listen")]


class ActionHandoff(Action):
    """The citizen asked for a person (the rule for intent `request_human`)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return hand_off(dispatcher, tracker, "user")


class ActionDefaultFallback(Action):
    """The two-stage fallback gave up: a person takes over instead of an apology.

    Rasa's own version reverts the user's message; this one must not, since a revert after the
    pause would replay the tracker without it (and undo the fallback loop's deactivation).
    """

    def name(self) -> str:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        return hand_off(dispatcher, tracker, "fallback")
