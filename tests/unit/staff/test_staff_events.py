"""Staff events (bot/conversation/handoff.py) on the bus and into the console sockets
(bot/staff/live.py): the bus messages and the console frames keep their exact shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from bot.conversation.bus import LocalBus
from bot.conversation.handoff import (
    ConversationFrame,
    HandoffDesk,
    NewHandoff,
    NoStaff,
    NoteAdded,
    QueueChanged,
    StaffEvent,
    UserTyping,
)
from bot.staff.auth import StaffIdentity
from bot.staff.live import STAFF_TOPIC, StaffBroadcast, StaffHub, from_wire

FRAME = {"type": "user", "id": 7, "text": "我的商标被抢注了"}
NOTE = {"id": 1, "author": "王小明", "text": "已电话联系", "time": "2026-01-05T08:00:00+00:00"}


@dataclass(eq=False)
class Socket:
    """A console websocket as StaffHub uses it."""

    closed: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)


async def test_each_event_goes_on_the_bus_as_before_and_comes_back() -> None:
    bus, seen = LocalBus(), []

    async def record(message: dict[str, Any]) -> None:
        seen.append(message)

    bus.subscribe(STAFF_TOPIC, record)
    events: list[StaffEvent] = [
        QueueChanged(),
        NewHandoff(3),
        ConversationFrame("c1", 5, FRAME),
        ConversationFrame("c1", None, FRAME),
        UserTyping("c1", 5, True),
        NoteAdded("c1", None, NOTE),
    ]
    for event in events:
        await StaffBroadcast(bus).publish(event)
    assert seen == [
        {"event": "queue_changed", "args": {}},
        {"event": "new_handoff", "args": {"handoff_id": 3}},
        {"event": "conversation_frame",
         "args": {"conversation_id": "c1", "agent_id": 5, "frame": FRAME}},
        {"event": "conversation_frame",
         "args": {"conversation_id": "c1", "agent_id": None, "frame": FRAME}},
        {"event": "user_typing", "args": {"conversation_id": "c1", "agent_id": 5, "on": True}},
        {"event": "note_added", "args": {"conversation_id": "c1", "agent_id": None, "note": NOTE}},
    ]  # fmt: skip
    # What another gateway reads from Redis pub/sub.
    assert [from_wire(json.loads(json.dumps(message))) for message in seen] == events
    assert from_wire({"event": "from_a_newer_gateway", "args": {}}) is None
    assert from_wire({}) is None


async def test_nobody_is_told_before_the_console_is_attached() -> None:
    nobody = NoStaff()
    assert nobody.online_agents() == set()
    await nobody.publish(NewHandoff(1))


async def test_the_hub_sends_each_event_to_the_sockets_allowed_to_see_it() -> None:
    bus = LocalBus()
    hub = StaffHub(cast(HandoffDesk, None), bus)  # these events need no database
    agent, colleague, admin = Socket(), Socket(), Socket()
    hub.add(cast(Any, agent), StaffIdentity(5, "wang", "王小明", "agent"))
    hub.add(cast(Any, colleague), StaffIdentity(6, "li", "李华", "agent"))
    hub.add(cast(Any, admin), StaffIdentity(9, "boss", "张主任", "admin"))
    hub.watch(cast(Any, colleague), "c1")
    hub.watch(cast(Any, admin), "c1")

    await StaffBroadcast(bus).publish(ConversationFrame("c1", 5, FRAME))
    await StaffBroadcast(bus).publish(UserTyping("c1", 5, False))
    await StaffBroadcast(bus).publish(NoteAdded("c1", 5, NOTE))
    expected = [
        {"type": "message", "conversation_id": "c1", "message": FRAME},
        {"type": "typing", "conversation_id": "c1", "on": False},
        {"type": "note", "conversation_id": "c1", "note": NOTE},
    ]
    assert agent.sent == expected and admin.sent == expected
    assert colleague.sent == []  # assigned to someone else: only admins watch along
    await StaffBroadcast(bus).publish(ConversationFrame("c1", None, FRAME))  # waiting: anyone
    assert colleague.sent == expected[:1]
