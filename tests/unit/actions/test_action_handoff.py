"""action_handoff and action_default_fallback: pause the conversation, tell the gateway why."""

from __future__ import annotations

from typing import Any

from actions.handoff import ActionDefaultFallback, ActionHandoff
from tests.support.action_trackers import DOMAIN, run, tracker

LISTEN = {"event": "action", "name": "action_listen", "policy": None, "confidence": None}
PAUSED_AND_LISTENING = [{"event": "pause", "timestamp": None}, {**LISTEN, "timestamp": None}]


def user(intent: str, text: str = "") -> dict[str, Any]:
    """A user event as Rasa sends it to the action server."""
    return {
        "event": "user",
        "text": text or f"/{intent}",
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": []},
    }


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def conversation(*intents: str) -> list[dict[str, Any]]:
    """One bot action after each user message, as in a real tracker."""
    return [e for intent in intents for e in (action("action_listen"), user(intent), action("x"))]


async def test_request_human_pauses_and_sends_only_the_handoff_payload() -> None:
    events = [
        *conversation(
            "greet", "ask_ip_insurance", "find_brand_station", "inform", "ask_ip_insurance", "thank"
        ),
        action("action_listen"),
        user("request_human", "转人工"),
    ]
    messages, returned = await run(ActionHandoff(), tracker("request_human", events=events))
    # Oldest first, each once; greetings, thanks and the request itself say nothing of the topic.
    assert messages == [
        {
            "text": None,
            "buttons": [],
            "elements": [],
            "custom": {
                "handoff": {
                    "reason": "user",
                    "intents": ["ask_ip_insurance", "find_brand_station", "inform"],
                }
            },
            "template": None,
            "response": None,
            "image": None,
            "attachment": None,
        }
    ]
    assert returned == PAUSED_AND_LISTENING


async def test_only_this_sessions_messages_count() -> None:
    events = [
        *conversation("ask_trademark_window", "report_infringement"),
        {"event": "session_started"},
        *conversation("ask_pledge_financing", "affirm", "deny", "goodbye", "nlu_fallback"),
        user("request_human"),
    ]
    messages, _ = await run(ActionHandoff(), tracker("request_human", events=events))
    assert messages[0]["custom"]["handoff"]["intents"] == ["ask_pledge_financing"]


async def test_restarted_and_reverted_messages_do_not_count() -> None:
    events = [
        *conversation("ask_geographical_indication"),
        {"event": "restart"},
        # Not understood, the user picks a suggested topic: the two-stage fallback reverts the
        # pick and logs it again as the clarified message.
        action("action_listen"),
        user("nlu_fallback", "那个快的通道"),
        action("action_two_stage_fallback"),
        action("action_listen"),
        user("ask_patent_fast_track"),
        action("action_two_stage_fallback"),
        {"event": "rewind"},
        action("action_listen"),
        user("ask_patent_fast_track"),
        action("action_answer_knowledge"),
        action("action_listen"),
        user("request_human"),
    ]
    messages, _ = await run(ActionHandoff(), tracker("request_human", events=events))
    assert messages[0]["custom"]["handoff"]["intents"] == ["ask_patent_fast_track"]


async def test_nothing_asked_yet_gives_an_empty_list() -> None:
    messages, returned = await run(
        ActionHandoff(), tracker("request_human", events=[user("greet"), user("request_human")])
    )
    assert messages[0]["custom"] == {"handoff": {"reason": "user", "intents": []}}
    assert returned == PAUSED_AND_LISTENING


async def test_fallback_giving_up_hands_over_with_its_reason() -> None:
    # The two-stage fallback gives up after "都不是" (out_of_scope) twice around a message it did
    # not understand; the topic asked before is what the staff member needs to see.
    events = [
        *conversation("report_infringement", "nlu_fallback", "out_of_scope", "nlu_fallback"),
        action("action_listen"),
        user("out_of_scope", "都不是"),
    ]
    messages, returned = await run(ActionDefaultFallback(), tracker("out_of_scope", events=events))
    assert [m["custom"] for m in messages] == [
        {"handoff": {"reason": "fallback", "intents": ["report_infringement"]}}
    ]
    assert messages[0]["text"] is None and messages[0]["buttons"] == []
    # No UserUtteranceReverted (Rasa's own fallback returns one): it would undo the pause.
    assert returned == PAUSED_AND_LISTENING


def test_names_and_domain() -> None:
    assert ActionHandoff().name() == "action_handoff"
    assert ActionDefaultFallback().name() == "action_default_fallback"
    assert {"action_handoff", "action_default_fallback"} <= set(DOMAIN["actions"])
    # The old "online service is being built" text is gone; the gateway shows the queue instead.
    assert "utter_request_human" not in DOMAIN["responses"]
