"""The human handoff: request, queue, accept, live replies, transfer, hand back, close, rating.

State lives in the database (bot/db/handoffs.py), so a gateway restart loses nothing; the staff
console is told about changes through `StaffEvents` (bot/staff/live.py) and the citizen through
the pipeline's `deliver`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from bot.conversation.calendar import CalendarSource, beijing_today
from bot.conversation.channel import DeliveryFailed, DeliveryLimit
from bot.conversation.frames import MAX_MESSAGE_CHARS, error_frame, iso_time
from bot.conversation.hours import WorkingHours, opening_text
from bot.conversation.store import ChatStore
from bot.db import conversations, handoffs, ratings, tickets
from bot.db.handoffs import (
    ACTIVE,
    CLOSED,
    OFFLINE,
    RATINGS,
    RETURNED,
    WAITING,
    Handoff,
    RatingRefused,
)
from bot.db.staff import display_name_of, find_staff
from bot.domain.phone import contact_phone_problem, normalize
from bot.rasa.pool import RasaPool, RasaUnavailable

logger = logging.getLogger(__name__)
Deliver = Callable[[str, dict[str, Any]], Awaitable[None]]
Reply = Callable[[dict[str, Any]], Awaitable[None]]

WAITING_TEXT = "正在为您转接人工客服，请稍候。"
NOBODY_TEXT = "抱歉，人工客服暂时都不在线。请留下您的电话和问题，我们会尽快回电。"
HOURS_TEXT = (
    "现在是非工作时间（人工客服工作时间：{hours}）。请留下您的电话和问题，我们会在工作时间回电。"
)
NEXT_OPENING_TEXT = "下一个工作时间：{opening}。"
# A bad rating's follow-up (回访) is due within this many working days (Settings.follow_up_days).
FOLLOW_UP_DAYS = 5
JOINED_TEXT = "人工客服 {agent} 已接入"
TRANSFERRED_TEXT = "已为您转接至人工客服 {agent}"
RETURNED_TEXT = "人工客服已结束接待，您可以继续向智能助手提问。"
CLOSED_TEXT = "本次人工服务已结束，欢迎对我们的服务进行评价。"
TICKET_TEXT = "留言已收到（编号 {id}），我们会在工作时间尽快回电，请保持电话畅通。"
NO_OFFLINE_HANDOFF_TEXT = "目前可以直接转人工咨询，无需留言。"
HANDOFF_LIMITED_TEXT = "转人工请求过于频繁，请稍后再试。"
GONE_TEXT = "该会话已结束或已转接给其他客服。"
MAX_COMMENT_CHARS = 500
# After a reload, the leave-a-message card comes back for this long (then the moment has passed).
OFFER_TICKET_FOR = timedelta(minutes=30)
RATING_REFUSED_TEXT = {
    RatingRefused.NOT_FOUND: "没有找到这次人工服务。",
    RatingRefused.NOT_CLOSED: "人工服务结束后才能评价。",
    RatingRefused.ALREADY_RATED: "这次服务您已经评价过了，谢谢。",
}


class PhoneRefused(ValueError):
    """A ticket's call-back number is not usable; the text says why."""


class HandoffError(ValueError):
    """A staff action that cannot be done; `code` and `text` (Chinese) go back to the console."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class Agent(Protocol):
    """The staff member acting (bot.staff.auth.StaffIdentity, a frozen dataclass)."""

    @property
    def id(self) -> int: ...

    @property
    def display_name(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


# ---- what the handoff tells the staff console (bot/staff/live.py) -------------------------------
# One small frozen dataclass per event, published through `StaffEvents.publish`. A new event is a
# class here (its `kind` names it on the bus: {"event": kind, "args": its fields}) and its handler
# in bot/staff/live.py (StaffHub.handle).


@dataclass(frozen=True)
class StaffEvent:
    """Base of the staff events: each subclass declares its `kind` and is found by it."""

    kind: ClassVar[str] = ""
    _by_kind: ClassVar[dict[str, type[StaffEvent]]] = {}

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        taken = StaffEvent._by_kind.get(kind)
        if not kind or (taken is not None and taken.__qualname__ != cls.__qualname__):
            raise TypeError(f"{cls.__name__} needs a kind of its own, got {kind!r}")
        cls.kind = kind
        StaffEvent._by_kind[kind] = cls

    @staticmethod
    def of_kind(kind: object) -> type[StaffEvent] | None:
        """The event class named `kind`, or None for a kind nobody declared."""
        return StaffEvent._by_kind.get(kind) if isinstance(kind, str) else None


@dataclass(frozen=True)
class QueueChanged(StaffEvent, kind="queue_changed"):
    """The queue, who has which conversation, who is online or the ticket count changed."""


@dataclass(frozen=True)
class NewHandoff(StaffEvent, kind="new_handoff"):
    """A citizen started waiting for a person."""

    handoff_id: int


@dataclass(frozen=True)
class ConversationFrame(StaffEvent, kind="conversation_frame"):
    """A message in a conversation (the citizen's, staff's or a notice)."""

    conversation_id: str
    agent_id: int | None
    frame: dict[str, Any]


@dataclass(frozen=True)
class UserTyping(StaffEvent, kind="user_typing"):
    conversation_id: str
    agent_id: int
    on: bool


@dataclass(frozen=True)
class NoteAdded(StaffEvent, kind="note_added"):
    conversation_id: str
    agent_id: int | None
    note: dict[str, Any]


class StaffEvents(Protocol):
    """The staff console as the handoff sees it (bot/staff/live.py, StaffBroadcast)."""

    def online_agents(self) -> set[int]: ...

    async def publish(self, event: StaffEvent) -> None: ...


class NoStaff:
    """Before the console is attached (and in tests of the pipeline alone): nobody is online,
    and events reach nobody."""

    def online_agents(self) -> set[int]:
        return set()

    async def publish(self, event: StaffEvent) -> None:
        return None


def handoff_frame(handoff: Handoff | None, agent_name: str | None = None, **extra: Any) -> dict:
    """The citizen's `handoff` frame for a handoff's current state."""
    if handoff is None or handoff.status == RETURNED:
        return {"type": "handoff", "state": "returned" if handoff else "none"}
    if handoff.status == CLOSED and handoff.rating is not None:
        return {"type": "handoff", "state": "none"}
    frame: dict[str, Any] = {"type": "handoff", "state": handoff.status, "handoff_id": handoff.id}
    if handoff.status == ACTIVE and agent_name:
        frame["agent"] = agent_name
    frame.update(extra)
    return frame


LimitOf = Callable[[str], Awaitable[DeliveryLimit | None]]


async def _unlimited(conversation_id: str) -> DeliveryLimit | None:
    return None


class HandoffDesk:
    def __init__(
        self, store: ChatStore, rasa: RasaPool, hours: WorkingHours, deliver: Deliver
    ) -> None:
        self.store = store
        self.rasa = rasa
        self.hours = hours
        self._deliver = deliver
        self.delivery_limit: LimitOf = _unlimited  # the pipeline's: WeChat counts its messages
        self.staff: StaffEvents = NoStaff()
        # Asked before a conversation gets a new handoff (the web chat: per client address);
        # False refuses it. Counts the request when it returns True.
        self.admit_new_handoff: Callable[[str], bool] = lambda _conversation_id: True
        self._positions: dict[int, int] = {}  # last queue position told to each waiting handoff
        self.calendar = CalendarSource(store)
        self.follow_up_days = FOLLOW_UP_DAYS

    async def hours_now(self) -> dict[str, Any]:
        """Whether staff are there now, the hours as told, and the next opening ("1月2日 9:00")."""
        now = datetime.now(timezone.utc)
        calendar = await self.calendar.get()
        is_open = self.hours.is_open(now, calendar)
        opening = "" if is_open else opening_text(self.hours.next_opening(now, calendar))
        return {"open": is_open, "hours": self.hours.describe(), "next_opening": opening}

    # ---- citizen side -------------------------------------------------------------------------

    async def routing_state(self, conversation_id: str) -> tuple[Handoff | None, list[Handoff]]:
        """The open handoff and the handoffs still to resume Rasa after: one read per message."""
        return await self.store.run(lambda s: handoffs.routing_state(s, conversation_id))

    async def pass_to_staff(
        self, conversation_id: str, handoff: Handoff, message: dict[str, Any], reply: Reply
    ) -> None:
        """During a handoff the user's message goes to staff, not to the bot."""
        await self.store.run(
            lambda s: conversations.set_status(s, message["id"], conversations.TO_STAFF)
        )
        agent_id = handoff.agent_id if handoff.status == ACTIVE else None
        await self.staff.publish(ConversationFrame(conversation_id, agent_id, message))
        if handoff.status == WAITING:  # a reminder of where they are, e.g. after "转人工" again
            position = await self.store.run(lambda s: handoffs.queue_position(s, handoff))
            await reply(handoff_frame(handoff, position=position))

    async def request(
        self, conversation_id: str, reason: str, intents: list[str], reply: Reply
    ) -> None:
        """Queue the conversation for a person, or offer a ticket when nobody can take it."""
        offline_reason = None
        hours = await self.hours_now()
        if not hours["open"]:
            offline_reason = "hours"
        elif not self.staff.online_agents():
            offline_reason = "nobody"

        status = OFFLINE if offline_reason else WAITING
        existing = await self.store.run(lambda s: handoffs.open_handoff(s, conversation_id))
        if existing is None and not self.admit_new_handoff(conversation_id):
            await self._refuse_handoff(conversation_id, reply)
            return
        handoff, position = await self.store.run(
            lambda s: handoffs.open_or_create(s, conversation_id, reason, intents, status)
        )
        if handoff.status == OFFLINE:
            text = NOBODY_TEXT
            extra: dict[str, Any] = {"reason": offline_reason, "hours": hours["hours"]}
            if offline_reason == "hours":
                text = HOURS_TEXT.format(hours=hours["hours"])
                if hours["next_opening"]:
                    text += NEXT_OPENING_TEXT.format(opening=hours["next_opening"])
                    extra["next_opening"] = hours["next_opening"]
            await reply(await self.store.add_message(conversation_id, "system", text))
            await reply(handoff_frame(handoff, **extra))
            return
        if handoff.status == WAITING:
            await reply(await self.store.add_message(conversation_id, "system", WAITING_TEXT))
            self._positions[handoff.id] = position
            await reply(handoff_frame(handoff, position=position))
            await self.staff.publish(NewHandoff(handoff.id))
            await self.staff.publish(QueueChanged())
        else:
            await reply(handoff_frame(handoff, agent_name=await self._agent_name(handoff)))

    async def _refuse_handoff(self, conversation_id: str, reply: Reply) -> None:
        """Too many handoffs from this address: say so, and let the bot answer again (the
        handoff action paused the conversation in Rasa)."""
        await reply(error_frame("rate_limited", HANDOFF_LIMITED_TEXT))
        try:
            await self.rasa.resume(conversation_id)
        except RasaUnavailable:
            logger.warning("could not resume %s after a refused handoff", conversation_id)

    async def release_waiting(self) -> int:
        """Nobody is online any more: waiting citizens are offered a ticket instead of waiting
        for nobody (their bot answers again). Returns how many were released."""
        if self.staff.online_agents():
            return 0
        queue = await self.store.run(handoffs.waiting_queue)
        for waiting in queue:

            def release(session: Session, handoff_id: int = waiting.id) -> bool:
                return handoffs.release(session, handoff_id)

            if not await self.store.run(release):
                continue  # accepted meanwhile
            waiting.status = OFFLINE
            self._positions.pop(waiting.id, None)
            notice = await self.store.add_message(waiting.conversation_id, "system", NOBODY_TEXT)
            await self._tell_citizen(waiting, notice)
            await self._tell_citizen(
                waiting, handoff_frame(waiting, reason="nobody", hours=self.hours.describe())
            )
        if queue:
            await self.staff.publish(QueueChanged())
        return len(queue)

    async def state_frame(self, conversation_id: str) -> dict[str, Any]:
        """The current handoff state, for the history frame of a (re)connecting client."""

        state = await self.store.run(lambda s: handoffs.citizen_handoff(s, conversation_id))
        handoff = state.handoff
        if handoff is None or handoff.status == RETURNED:
            return {"type": "handoff", "state": "none"}
        if handoff.status == OFFLINE:
            recent = conversations.utcnow() - handoff.requested_at < OFFER_TICKET_FOR
            if recent and not state.has_ticket:
                return handoff_frame(handoff, hours=self.hours.describe())
            return {"type": "handoff", "state": "none"}
        extra: dict[str, Any] = {}
        if handoff.status == WAITING:
            extra["position"] = state.position
        return handoff_frame(handoff, state.agent_name, **extra)

    async def leave_ticket(
        self,
        conversation_id: str,
        phone: str,
        text: str,
        *,
        channel: str = "webchat",
        client_id: str | None = None,
        require_offline: bool = False,
    ) -> int:
        """Store a call-back request; ValueError (with the citizen's text) when refused.
        `require_offline`: only after an offline handoff (the web chat's ticket card)."""
        problem = contact_phone_problem(phone)
        if problem is not None:
            raise PhoneRefused(f"{problem}。")
        text = text.strip()
        if not text:
            raise ValueError("请写下您想咨询的问题。")
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"留言太长了，请控制在{MAX_MESSAGE_CHARS}字以内。")

        phone = normalize(phone)

        def create(session: Session) -> int:
            return tickets.create_ticket(
                session, conversation_id, phone, text,
                channel=channel, client_id=client_id, require_offline=require_offline,
            )  # fmt: skip

        try:
            ticket_id = await self.store.run(create)
        except tickets.NoOfflineHandoff as exc:
            raise ValueError(NO_OFFLINE_HANDOFF_TEXT) from exc
        await self.staff.publish(QueueChanged())  # the console's ticket count
        return ticket_id

    async def rate(self, conversation_id: str, handoff_id: int, score: int, comment: str) -> None:
        if score not in RATINGS:
            raise ValueError("请选择一个评价等级。")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"评价内容请控制在{MAX_COMMENT_CHARS}字以内。")

        calendar = await self.calendar.get()
        today, days = beijing_today(), self.follow_up_days
        refused = await self.store.run(
            lambda s: ratings.save_handoff_rating(
                s, conversation_id, handoff_id, score, comment, today, calendar, days
            )
        )
        if refused is not None:
            raise ValueError(RATING_REFUSED_TEXT[refused])

    async def user_typing(self, conversation_id: str, on: bool) -> None:
        try:
            handoff = await self.store.run(lambda s: handoffs.open_handoff(s, conversation_id))
        except Exception:  # a typing indicator is not worth an error
            logger.warning("could not read the handoff of %s", conversation_id, exc_info=True)
            return
        if handoff is not None and handoff.status == ACTIVE and handoff.agent_id is not None:
            await self.staff.publish(UserTyping(conversation_id, handoff.agent_id, on))

    async def resume_bot_if_needed(
        self, conversation_id: str, pending: list[Handoff] | None = None
    ) -> None:
        """Lift Rasa's pause after a handoff ended (retried here if Rasa was down back then).
        `pending`: the ended, unresumed handoffs when the caller has just read them."""
        if pending is None:
            try:
                pending = await self.store.run(lambda s: handoffs.unresumed(s, conversation_id))
            except Exception:  # database down: ask the bot anyway (a paused Rasa answers nothing)
                logger.warning("could not read the handoffs of %s", conversation_id, exc_info=True)
                return
        if not pending:
            return
        await self.rasa.resume(conversation_id)  # RasaUnavailable: the caller treats Rasa as down
        ids = [h.id for h in pending]
        try:
            await self.store.run(lambda s: handoffs.mark_resumed(s, ids))
        except Exception:  # resumed again next time: harmless
            logger.warning("could not mark %s resumed", conversation_id, exc_info=True)

    # ---- staff side ---------------------------------------------------------------------------

    async def accept(self, handoff_id: int, agent: Agent) -> Handoff:
        won = await self.store.run(lambda s: handoffs.claim(s, handoff_id, agent.id))
        handoff = await self.store.run(lambda s: handoffs.get_handoff(s, handoff_id))
        if handoff is None:
            raise HandoffError("not_found", "没有找到这个会话。")
        if not won:
            if handoff.status == ACTIVE:
                taker = await self._agent_name(handoff)
                raise HandoffError("taken", f"该会话已由 {taker} 接入。")
            raise HandoffError("not_found", "该会话已结束或已被取消。")
        self._positions.pop(handoff_id, None)
        await self._notice(handoff, JOINED_TEXT.format(agent=agent.display_name))
        await self._tell_citizen(handoff, handoff_frame(handoff, agent.display_name))
        await self._queue_moved()
        return handoff

    async def staff_reply(
        self, conversation_id: str, agent: Agent, client_id: str, text: str
    ) -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise HandoffError("bad_frame", "不能发送空消息。")
        if len(text) > MAX_MESSAGE_CHARS * 4:
            raise HandoffError("too_long", f"消息太长了，请控制在{MAX_MESSAGE_CHARS * 4}字以内。")
        handoff = await self._assigned(conversation_id, agent)
        limit = await self.delivery_limit(conversation_id)
        if limit is not None and limit.remaining <= 0:  # refused before it is stored
            raise HandoffError("quota", limit.refusal)
        data = {"agent": agent.display_name, "agent_id": agent.id}
        frame = await self.store.add_message(
            conversation_id, "staff", text, data, client_message_id=f"staff-{client_id}"[:64]
        )
        await self.staff.publish(ConversationFrame(conversation_id, handoff.agent_id, frame))
        try:
            await self._deliver(conversation_id, frame)
        except DeliveryFailed as exc:
            text = f"消息已保存，但未能送达用户：{exc.text}"
            raise HandoffError("delivery_failed", text) from exc
        return frame

    async def staff_typing(self, conversation_id: str, agent: Agent, on: bool) -> None:
        await self._assigned(conversation_id, agent)
        # A typing indicator that does not arrive is not worth an error.
        with contextlib.suppress(DeliveryFailed):
            await self._deliver(conversation_id, {"type": "typing", "on": on, "who": "staff"})

    async def transfer(self, conversation_id: str, agent: Agent, to_agent_id: int) -> Handoff:
        handoff = await self._assigned(conversation_id, agent)
        target = await self.store.run(lambda s: find_staff(s, to_agent_id))
        if target is None or not target.active:
            raise HandoffError("not_found", "没有找到这位客服。")
        if to_agent_id == handoff.agent_id:
            raise HandoffError("bad_frame", "会话已在这位客服名下。")
        handoff_id, from_agent_id = handoff.id, handoff.agent_id
        moved = await self.store.run(
            lambda s: handoffs.assign(s, handoff_id, to_agent_id, from_agent_id)
        )
        if moved is None:
            raise HandoffError("not_found", GONE_TEXT)
        handoff = moved
        await self._notice(handoff, TRANSFERRED_TEXT.format(agent=target.display_name))
        await self._tell_citizen(handoff, handoff_frame(handoff, target.display_name))
        await self.staff.publish(QueueChanged())
        return handoff

    async def hand_back(self, conversation_id: str, agent: Agent) -> None:
        await self._end(conversation_id, agent, RETURNED, RETURNED_TEXT)

    async def close(self, conversation_id: str, agent: Agent) -> None:
        await self._end(conversation_id, agent, CLOSED, CLOSED_TEXT)

    async def add_note(self, conversation_id: str, agent: Agent, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text or len(text) > 2000:
            raise HandoffError("bad_frame", "备注不能为空，且不超过2000字。")
        await self.check_can_view(conversation_id, agent)

        note = await self.store.run(lambda s: handoffs.add_note(s, conversation_id, agent.id, text))
        return note_frame(note, agent.display_name)

    async def check_can_view(self, conversation_id: str, agent: Agent) -> Handoff | None:
        """Agents see waiting conversations and their own; admins see everything."""
        handoff = await self.store.run(lambda s: handoffs.latest_handoff(s, conversation_id))
        if agent.is_admin:
            return handoff
        if handoff is None:
            raise HandoffError("not_found", "没有找到这个会话。")
        if handoff.status == WAITING or handoff.agent_id == agent.id:
            return handoff
        raise HandoffError("forbidden", "该会话由其他客服负责，您无权查看。")

    # ---- helpers ------------------------------------------------------------------------------

    async def _assigned(self, conversation_id: str, agent: Agent) -> Handoff:
        handoff = await self.store.run(lambda s: handoffs.open_handoff(s, conversation_id))
        if handoff is None or handoff.status != ACTIVE:
            raise HandoffError("not_found", "该会话当前没有进行中的人工服务。")
        if handoff.agent_id != agent.id and not agent.is_admin:
            raise HandoffError("forbidden", "该会话由其他客服负责。")
        return handoff

    async def _end(self, conversation_id: str, agent: Agent, status: str, text: str) -> None:
        handoff = await self._assigned(conversation_id, agent)
        handoff_id, agent_id = handoff.id, handoff.agent_id
        if not await self.store.run(lambda s: handoffs.end(s, handoff_id, status, agent_id)):
            raise HandoffError("not_found", GONE_TEXT)  # ended or transferred meanwhile
        handoff.status = status
        await self._notice(handoff, text)
        await self._tell_citizen(handoff, handoff_frame(handoff))
        try:
            await self.resume_bot_if_needed(conversation_id)
        except RasaUnavailable:
            logger.warning("Rasa down after the handoff of %s; resumed later", conversation_id)
        await self.staff.publish(QueueChanged())

    async def _notice(self, handoff: Handoff, text: str) -> None:
        """A system message both sides see (stored, so it is in the transcript)."""
        frame = await self.store.add_message(handoff.conversation_id, "system", text)
        conversation_id = handoff.conversation_id
        await self.staff.publish(ConversationFrame(conversation_id, handoff.agent_id, frame))
        await self._tell_citizen(handoff, frame)

    async def _tell_citizen(self, handoff: Handoff, frame: dict[str, Any]) -> None:
        try:
            await self._deliver(handoff.conversation_id, frame)
        except DeliveryFailed as exc:
            logger.warning("could not tell %s: %s", handoff.conversation_id, exc.text)

    async def _queue_moved(self) -> None:
        """Tell every waiting citizen whose place in the queue changed, then the console."""
        queue = await self.store.run(handoffs.waiting_queue)
        for position, handoff in enumerate(queue, start=1):
            if self._positions.get(handoff.id) != position:
                self._positions[handoff.id] = position
                await self._tell_citizen(handoff, handoff_frame(handoff, position=position))
        await self.staff.publish(QueueChanged())

    async def _agent_name(self, handoff: Handoff) -> str:
        if handoff.agent_id is None:
            return "其他客服"
        agent_id = handoff.agent_id
        name = await self.store.run(lambda s: display_name_of(s, agent_id))
        return name if name is not None else "其他客服"


def note_frame(note: handoffs.StaffNote, author: str) -> dict[str, Any]:
    return {"id": note.id, "author": author, "text": note.text, "time": iso_time(note.created_at)}
