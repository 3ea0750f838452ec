"""Trackers for action tests, built with rasa-sdk's own Tracker API (no Rasa server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import PROJECT_ROOT

DOMAIN: dict[str, Any] = yaml.safe_load((Path(PROJECT_ROOT) / "domain.yml").read_text("utf-8"))


def tracker(
    intent: str,
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    text: str = "",
    metadata: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
) -> Tracker:
    return Tracker(
        sender_id="test-user",
        slots=slots or {},
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.99},
            "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
            "metadata": metadata or {},
        },
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


async def run(action: Action, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


def cards(messages: list[dict[str, Any]], kind: str = "service_points") -> list[dict[str, Any]]:
    return [
        item
        for m in messages
        if (m.get("custom") or {}).get("kind") == kind
        for item in m["custom"]["items"]
    ]


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
