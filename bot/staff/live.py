"""The live console's websocket (/staff/ws): the queue pushed to staff, and their actions.

The frames are listed in README "Staff console protocol". Every action is checked against the
handoff's state in the database (bot/conversation/handoff.py); this module only routes frames.

Signed in is checked again on every action frame, not only at the handshake (SessionCheck: the
staff session row and the account, one query, at most once per IDENTITY_CACHE_SECONDS), and every
RECHECK_SECONDS while idle: after logout (anywhere), deactivation, a role change or expiry the
socket gets an `unauthorized` error and is closed with 4401. A logout on this gateway closes the
session's sockets at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp_session import get_session
from sqlalchemy.orm import Session

from bot.conversation.bus import Bus
from bot.conversation.frames import CLIENT_ID_PATTERN, iso_time
from bot.conversation.handoff import (
    ConversationFrame,
    HandoffDesk,
    HandoffError,
    NewHandoff,
    NoteAdded,
    QueueChanged,
    StaffEvent,
    UserTyping,
    note_frame,
)
from bot.conversation.store import as_frame
from bot.db import handoffs
from bot.db.handoffs import ACTIVE, HandoffSummary
from bot.db.staff import canned_replies
from bot.settings import Settings
from bot.staff.auth import (
    SESSION_ENDED_HOOKS,
    SESSION_ID,
    StaffIdentity,
    require_staff,
    session_identity,
)
from bot.web.keys import BUS, PIPELINE, SETTINGS
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)
UNAVAILABLE_TEXT = "系统繁忙，操作没有完成，请稍后重试。"
PREVIEW_CHARS = 60
# How long the queue waits for an agent to come (back) online before waiting citizens are told
# nobody is there; long enough for the console to reconnect after a gateway restart.
RELEASE_AFTER_SECONDS = 120.0
STAFF_TOPIC = "staff"
IDENTITY_CACHE_SECONDS = 1.0  # an action within this long of the last check is not re-checked
RECHECK_SECONDS = 10.0  # an idle socket's session is checked this often
SESSION_ENDED_CODE = 4401
UNAUTHORIZED = {"type": "error", "code": "unauthorized", "text": "登录已失效，请重新登录。"}


class SessionCheck:
    """Is the socket's staff session still good: not logged out, not expired, the account active
    and its role unchanged (a demoted admin must not keep an admin's socket)."""

    def __init__(self, settings: Settings, sid: str, staff: StaffIdentity) -> None:
        self.settings = settings
        self.sid = sid
        self.staff = staff
        self._checked_at = time.monotonic()

    async def still_valid(self, max_age: float = IDENTITY_CACHE_SECONDS) -> bool:
        """Fails closed: a database error propagates (the caller refuses the action)."""
        now = time.monotonic()
        if now - self._checked_at < max_age:
            return True
        identity = await session_identity(self.settings, self.sid, self.staff.id)
        valid = identity is not None and identity.role == self.staff.role
        if valid:
            self._checked_at = now
        return valid


async def end_socket(ws: web.WebSocketResponse) -> None:
    """Tell the console its session ended, and close (the page then goes to the login)."""
    await send(ws, UNAUTHORIZED)
    await ws.close(code=SESSION_ENDED_CODE, message=b"session ended")


class StaffHub:
    """Open console sockets, who is online, and which conversation each socket shows."""

    def __init__(
        self, desk: HandoffDesk, bus: Bus, grace_seconds: float = RELEASE_AFTER_SECONDS
    ) -> None:
        self.desk = desk
        self.bus = bus
        self.grace_seconds = grace_seconds
        self._release_task: asyncio.Task | None = None
        self._closing = False  # shutting down: sockets closing is not agents leaving
        bus.subscribe(STAFF_TOPIC, self.apply)
        self._sockets: dict[web.WebSocketResponse, StaffIdentity] = {}
        self._watching: dict[web.WebSocketResponse, str] = {}
        self._session_ids: dict[web.WebSocketResponse, str] = {}
        self._by_staff: dict[int, set[web.WebSocketResponse]] = defaultdict(set)

    def add(self, ws: web.WebSocketResponse, staff: StaffIdentity, session_id: str = "") -> None:
        self._sockets[ws] = staff
        self._session_ids[ws] = session_id
        self._by_staff[staff.id].add(ws)
        self.bus.set_local_staff(set(self._by_staff))

    def discard(self, ws: web.WebSocketResponse) -> None:
        staff = self._sockets.pop(ws, None)
        self._watching.pop(ws, None)
        self._session_ids.pop(ws, None)
        if staff is not None:
            self._by_staff[staff.id].discard(ws)
            if not self._by_staff[staff.id]:
                del self._by_staff[staff.id]
        self.bus.set_local_staff(set(self._by_staff))
        if not self.bus.online_staff():
            self.release_waiting_later()

    def release_waiting_later(self) -> None:
        """When nobody is online for a while (not just reconnecting after a restart), waiting
        citizens are offered a ticket rather than left waiting."""
        if self._closing:
            return
        if self._release_task is None or self._release_task.done():
            self._release_task = asyncio.create_task(self._release_after_grace())

    def shut_down(self) -> None:
        """No release timer from now on (the server stops; aiohttp waits for pending tasks)."""
        self._closing = True
        if self._release_task is not None:
            self._release_task.cancel()

    async def _release_after_grace(self) -> None:
        await asyncio.sleep(self.grace_seconds)
        try:
            released = await self.desk.release_waiting()
        except Exception:
            logger.exception("could not release the waiting queue")
            return
        if released:
            logger.info("nobody online: %d waiting conversations offered a ticket", released)

    async def close_session(self, session_id: str) -> None:
        """Logout on this gateway: that session's sockets end at once."""
        for ws, sid in list(self._session_ids.items()):
            if sid == session_id:
                await end_socket(ws)

    def sockets(self) -> list[web.WebSocketResponse]:
        return list(self._sockets)

    def watch(self, ws: web.WebSocketResponse, conversation_id: str) -> None:
        self._watching[ws] = conversation_id

    # ---- events, applied to this instance's sockets (StaffBroadcast publishes them) ------------

    async def apply(self, message: dict[str, Any]) -> None:
        """One event from the bus (published by any gateway instance); unknown kinds are ignored."""
        event = from_wire(message)
        if event is not None:
            await self.handle(event)

    @functools.singledispatchmethod
    async def handle(self, event: StaffEvent) -> None:
        """Apply one event: a handler per event class (bot/conversation/handoff.py) below."""
        logger.warning("no handler for the staff event %r", event.kind)

    @handle.register
    async def _queue_changed(self, event: QueueChanged) -> None:
        if not self._sockets:
            return
        snapshot = await self.desk.store.run(queue_snapshot)
        for ws, staff in list(self._sockets.items()):
            await send(ws, queue_frame(snapshot, staff, self.bus.online_staff()))

    @handle.register
    async def _new_handoff(self, event: NewHandoff) -> None:
        if not self._sockets:
            return
        handoff_id = event.handoff_id
        found = await self.desk.store.run(lambda s: handoffs.waiting_summary(s, handoff_id))
        if found is not None:
            handoff = summary(found[0], position=found[1])
            for ws in list(self._sockets):
                await send(ws, {"type": "new_handoff", "handoff": handoff})

    @handle.register
    async def _conversation_frame(self, event: ConversationFrame) -> None:
        message = {
            "type": "message",
            "conversation_id": event.conversation_id,
            "message": event.frame,
        }
        for ws in self._recipients(event.conversation_id, event.agent_id):
            await send(ws, message)

    @handle.register
    async def _user_typing(self, event: UserTyping) -> None:
        frame = {"type": "typing", "conversation_id": event.conversation_id, "on": event.on}
        for ws in self._recipients(event.conversation_id, event.agent_id):
            await send(ws, frame)

    @handle.register
    async def _note_added(self, event: NoteAdded) -> None:
        frame = {"type": "note", "conversation_id": event.conversation_id, "note": event.note}
        for ws in self._recipients(event.conversation_id, event.agent_id):
            await send(ws, frame)

    def _recipients(self, conversation_id: str, agent_id: int | None) -> list:
        """The assigned agent's sockets, and watchers allowed to see it: anyone while it is
        unassigned (waiting), admins always."""
        recipients = []
        for ws, staff in list(self._sockets.items()):
            watching = self._watching.get(ws) == conversation_id
            if (
                staff.id == agent_id
                or (watching and agent_id is None)
                or (watching and staff.is_admin)
            ):
                recipients.append(ws)
        return recipients


class StaffBroadcast:
    """The StaffEvents the handoff desk talks to: every event reaches the console sockets on
    every gateway instance (through the bus), and "online" means online on any instance."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def online_agents(self) -> set[int]:
        return self.bus.online_staff()

    async def publish(self, event: StaffEvent) -> None:
        await self.bus.publish(STAFF_TOPIC, wire(event))


def wire(event: StaffEvent) -> dict[str, Any]:
    """An event as the bus carries it: {"event": its kind, "args": its fields}."""
    return {"event": event.kind, "args": {f.name: getattr(event, f.name) for f in fields(event)}}


def from_wire(message: dict[str, Any]) -> StaffEvent | None:
    """The event a bus message carries; None for a kind nobody declared."""
    event_class = StaffEvent.of_kind(message.get("event"))
    if event_class is None:
        return None
    args = message.get("args") or {}
    return event_class(**{f.name: args[f.name] for f in fields(event_class)})


async def send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    if ws.closed:
        return
    try:
        await ws.send_json(frame)
    except (ConnectionError, RuntimeError):
        logger.debug("staff socket closed while sending")


# ---- snapshots read from the database -----------------------------------------------------------


def queue_snapshot(session: Session) -> dict[str, Any]:
    """The queue for the console: waiting and active handoffs, and the agents (two queries)."""
    queue = handoffs.queue_snapshot(session)
    first = queue.waiting_offset + 1
    return {
        "waiting": [summary(item, position=i) for i, item in enumerate(queue.waiting, start=first)],
        "waiting_total": queue.waiting_total,
        "active": [summary(item) for item in queue.active],
        "agents": [{"id": agent_id, "display_name": name} for agent_id, name in queue.agents],
    }


def summary(handoff_summary: HandoffSummary, position: int | None = None) -> dict[str, Any]:
    """One handoff as the console lists it."""
    handoff = handoff_summary.handoff
    return {
        "handoff_id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "channel": handoff_summary.channel,
        "status": handoff.status,
        "reason": handoff.reason,
        "intents": list(handoff.intents or []),
        "requested_at": iso_time(handoff.requested_at),
        "accepted_at": iso_time(handoff.accepted_at) if handoff.accepted_at else None,
        "agent": (
            {"id": handoff.agent_id, "display_name": handoff_summary.agent_name or ""}
            if handoff.agent_id
            else None
        ),
        "position": position,
        "preview": (handoff_summary.last_user_text or "")[:PREVIEW_CHARS],
    }


def queue_frame(snapshot: dict[str, Any], staff: StaffIdentity, online: set[int]) -> dict:
    mine = [h for h in snapshot["active"] if h["agent"] and h["agent"]["id"] == staff.id]
    others = [h for h in snapshot["active"] if h not in mine]
    if not staff.is_admin:  # who has which conversation, but not what it is about
        others = [
            {"handoff_id": h["handoff_id"], "conversation_id": h["conversation_id"],
             "status": h["status"], "agent": h["agent"]}
            for h in others
        ]  # fmt: skip
    agents = [{**a, "online": a["id"] in online} for a in snapshot["agents"]]
    return {
        "type": "queue",
        "waiting": snapshot["waiting"],
        "waiting_total": snapshot["waiting_total"],  # "waiting" is its first page
        "mine": mine,
        "others": others,
        "agents": agents,
    }


def conversation_view(session: Session, conversation_id: str) -> dict[str, Any]:
    """The `conversation` frame: its latest handoff, messages and staff notes."""
    detail = handoffs.conversation_detail(session, conversation_id)
    return {
        "type": "conversation",
        "conversation_id": conversation_id,
        "handoff": summary(detail.summary) if detail.summary else None,
        "messages": [as_frame(m) for m in detail.messages],
        "notes": [note_frame(note, author or "") for note, author in detail.notes],
    }


# ---- the socket ---------------------------------------------------------------------------------

HUB = web.AppKey("staff_hub", StaffHub)
Action = Callable[[web.Application, web.WebSocketResponse, StaffIdentity, dict], Awaitable[None]]


async def staff_socket(request: web.Request) -> web.WebSocketResponse:
    staff = await require_staff(request)  # the /staff gate has checked too
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    sid = str((await get_session(request)).get(SESSION_ID))
    check = SessionCheck(request.config_dict[SETTINGS], sid, staff)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    app = request.app
    hub = app[HUB]
    hub.add(ws, staff, sid)
    watcher = asyncio.create_task(_watch_session(ws, check))
    try:
        await hello(app, ws, staff)
        await app[PIPELINE].desk.staff.publish(QueueChanged())  # everyone sees them come online
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                valid = await check.still_valid()
            except Exception:
                logger.exception("could not check the staff session")
                await send(ws, {"type": "error", "code": "unavailable", "text": UNAVAILABLE_TEXT})
                continue
            if not valid:
                await end_socket(ws)
                break
            await handle(app, ws, staff, msg.data)
    finally:
        watcher.cancel()
        hub.discard(ws)
        try:
            await app[PIPELINE].desk.staff.publish(QueueChanged())
        except Exception:
            logger.exception("could not tell the console that an agent left")
    return ws


async def _watch_session(ws: web.WebSocketResponse, check: SessionCheck) -> None:
    """Close an idle socket whose session ended (logout elsewhere, deactivation, expiry)."""
    while not ws.closed:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            valid = await check.still_valid(max_age=0)
        except Exception:
            logger.warning("could not re-check a staff session; trying again later")
            continue
        if not valid:
            await end_socket(ws)
            return


async def hello(app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity) -> None:
    replies = await app[PIPELINE].desk.store.run(canned_replies)
    await send(
        ws,
        {
            "type": "hello",
            "me": {"id": staff.id, "display_name": staff.display_name, "role": staff.role},
            "canned": [{"id": r.id, "title": r.title, "text": r.text} for r in replies],
        },
    )


async def handle(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, raw: str
) -> None:
    try:
        frame = json.loads(raw)
    except ValueError:
        await send(ws, {"type": "error", "code": "bad_json", "text": "消息格式不正确。"})
        return
    action = ACTIONS.get(str(frame.get("type"))) if isinstance(frame, dict) else None
    if action is None:
        await send(ws, {"type": "error", "code": "bad_frame", "text": "不支持的操作。"})
        return
    try:
        await action(app, ws, staff, frame)
    except HandoffError as exc:
        error = {
            "type": "error",
            "code": exc.code,
            "text": exc.text,
            "conversation_id": frame.get("conversation_id"),
        }
        client_id = frame.get("id") if frame.get("type") == "reply" else None
        if isinstance(client_id, str) and CLIENT_ID_PATTERN.match(client_id):
            error["client_id"] = client_id  # the console marks that reply 未送达
        await send(ws, error)
    except Exception:
        logger.exception("staff action %s failed", frame.get("type"))
        await send(ws, {"type": "error", "code": "unavailable", "text": UNAVAILABLE_TEXT})


def _conversation_id(frame: dict) -> str:
    value = frame.get("conversation_id")
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.match(value):
        raise HandoffError("bad_frame", "缺少会话编号。")
    return value


def _text(frame: dict) -> str:
    value = frame.get("text")
    if not isinstance(value, str):
        raise HandoffError("bad_frame", "缺少文字内容。")
    return value


async def open_conversation(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    conversation_id = _conversation_id(frame)
    desk = app[PIPELINE].desk
    await desk.check_can_view(conversation_id, staff)
    view = await desk.store.run(lambda s: conversation_view(s, conversation_id))
    app[HUB].watch(ws, conversation_id)
    await send(ws, view)
    await send_delivery_limit(app, ws, conversation_id, asked=False)


async def accept(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    handoff_id = frame.get("handoff_id")
    if not isinstance(handoff_id, int) or isinstance(handoff_id, bool):
        raise HandoffError("bad_frame", "缺少会话编号。")
    handoff = await app[PIPELINE].desk.accept(handoff_id, staff)
    await send(
        ws,
        {"type": "accepted", "handoff_id": handoff_id, "conversation_id": handoff.conversation_id},
    )
    await open_conversation(app, ws, staff, {"conversation_id": handoff.conversation_id})


async def reply(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    client_id = frame.get("id")
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.match(client_id):
        raise HandoffError("bad_frame", "消息缺少编号。")
    conversation_id = _conversation_id(frame)
    stored = await app[PIPELINE].desk.staff_reply(conversation_id, staff, client_id, _text(frame))
    await send(
        ws,
        {
            "type": "ack",
            "client_id": client_id,
            "id": stored["id"],
            "conversation_id": conversation_id,
        },
    )
    await send_delivery_limit(app, ws, conversation_id, asked=False)


async def delivery(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    """How many messages the citizen's channel still lets staff send (WeChat), when asked."""
    conversation_id = _conversation_id(frame)
    await app[PIPELINE].desk.check_can_view(conversation_id, staff)
    await send_delivery_limit(app, ws, conversation_id)


async def send_delivery_limit(
    app: web.Application, ws: web.WebSocketResponse, conversation_id: str, asked: bool = True
) -> None:
    """A `delivery` frame: the channel's allowance, or `limit: null` when it has none (sent
    unasked only for a channel with an allowance: WeChat)."""
    try:
        limit = await app[PIPELINE].delivery_limit(conversation_id)
    except Exception:  # the console works without the count
        logger.exception("could not read the delivery limit of %s", conversation_id)
        return
    if limit is None and not asked:
        return
    await send(
        ws,
        {
            "type": "delivery",
            "conversation_id": conversation_id,
            "limit": None if limit is None else limit.as_frame(),
        },
    )


async def typing(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    await app[PIPELINE].desk.staff_typing(_conversation_id(frame), staff, frame.get("on") is True)


async def note(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    conversation_id = _conversation_id(frame)
    desk = app[PIPELINE].desk
    added = await desk.add_note(conversation_id, staff, _text(frame))
    handoff = await desk.store.run(lambda s: handoffs.latest_handoff(s, conversation_id))
    agent_id = handoff.agent_id if handoff is not None and handoff.status == ACTIVE else None
    await desk.staff.publish(NoteAdded(conversation_id, agent_id, added))  # the author sees it too


async def transfer(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    agent_id = frame.get("agent_id")
    if not isinstance(agent_id, int) or isinstance(agent_id, bool):
        raise HandoffError("bad_frame", "请选择要转接的客服。")
    await app[PIPELINE].desk.transfer(_conversation_id(frame), staff, agent_id)


async def hand_back(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    await app[PIPELINE].desk.hand_back(_conversation_id(frame), staff)


async def close(
    app: web.Application, ws: web.WebSocketResponse, staff: StaffIdentity, frame: dict[str, Any]
) -> None:
    await app[PIPELINE].desk.close(_conversation_id(frame), staff)


ACTIONS: dict[str, Action] = {
    "open": open_conversation,
    "accept": accept,
    "reply": reply,
    "typing": typing,
    "note": note,
    "transfer": transfer,
    "handback": hand_back,
    "close": close,
    "delivery": delivery,
}


async def _attach(app: web.Application) -> None:
    hub = StaffHub(app[PIPELINE].desk, app[BUS], app[SETTINGS].handoff_release_seconds)
    app[HUB] = hub
    app[PIPELINE].set_staff_events(StaffBroadcast(app[BUS]))
    hub.release_waiting_later()  # after a restart: unless the console reconnects in time


async def _close_sockets(app: web.Application) -> None:
    app[HUB].shut_down()
    for ws in app[HUB].sockets():
        await ws.close(code=1001, message=b"server shutdown")


def setup_staff_live(app: web.Application) -> None:
    app.on_startup.append(_attach)  # type: ignore[arg-type]  # aiohttp 3.9 mistypes Signal
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]  # aiohttp 3.9 mistypes Signal
    app.router.add_get("/staff/ws", staff_socket)

    async def session_ended(session_id: str) -> None:
        if HUB in app:
            await app[HUB].close_session(session_id)

    app[SESSION_ENDED_HOOKS].append(session_ended)
