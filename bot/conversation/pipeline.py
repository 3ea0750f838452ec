"""The conversation pipeline shared by every channel (web chat, WeChat).

A user message is stored first (so nothing acknowledged is ever lost), then answered in order per
conversation: by the bot through Rasa, or, while a person has the conversation, by passing it to
staff. Answers reach the user through the conversation's `Channel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.conversation.channel import Channel, DeliveryFailed, DeliveryLimit, StoreFailed
from bot.conversation.frames import bot_reply, error_frame, message_frame, queued_notice
from bot.conversation.handoff import HandoffDesk, StaffEvents
from bot.conversation.hours import WorkingHours
from bot.conversation.lookup import StatusLookups
from bot.conversation.ratings import BotRatings, rating_request_trigger
from bot.conversation.store import ChatStore
from bot.db import conversations
from bot.db.handoffs import Handoff
from bot.domain.vocabulary import NONE_OF_THESE, REQUEST_HUMAN
from bot.rasa.pool import RasaPool, RasaUnavailable

__all__ = ["Channel", "DeliveryFailed", "Pipeline", "Received", "StoreFailed"]
logger = logging.getLogger(__name__)
BUSY_TEXT = "系统繁忙，请稍后再试，或转人工咨询。"
# The handoff state could not be read: the message is answered by nobody now (it might belong to
# staff, not the paused bot); the page sends it again after RETRY_SECONDS (bot/webchat/static).
NOT_ROUTED_TEXT = "系统繁忙，您的消息暂未处理，稍后会重新发送。"
RETRY_SECONDS = 3.0


@dataclass(frozen=True)
class BackOffice:
    """The back office's settings (bot/settings.py)."""

    rating_idle: timedelta = timedelta(minutes=60)
    follow_up_days: int = 5
    lookup_max_tries: int = 5


@dataclass(frozen=True)
class Received:
    message_id: int
    created_at: datetime
    duplicate: bool
    # The frames delivered in answer to this message, once the answer is complete.
    done: asyncio.Future


class Pipeline:
    def __init__(
        self,
        store: ChatStore,
        rasa: RasaPool,
        hours: WorkingHours,
        back_office: BackOffice | None = None,
    ) -> None:
        back_office = back_office or BackOffice()
        self.store = store
        self.rasa = rasa
        self.channels: dict[str, Channel] = {}
        self._channel_of: dict[str, str] = {}
        self._queues: dict[str, asyncio.Queue[Callable[[], Awaitable[None]]]] = {}
        self._workers: set[asyncio.Task] = set()
        self._answering: set[int] = set()  # user messages queued or being answered here
        self.desk = HandoffDesk(store, rasa, hours, self.deliver)
        self.desk.delivery_limit = self.delivery_limit
        self.desk.follow_up_days = back_office.follow_up_days
        self.ratings = BotRatings(
            store, rasa, self.desk.calendar, back_office.rating_idle, back_office.follow_up_days
        )
        self.lookups = StatusLookups(store, back_office.lookup_max_tries)

    def register_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    def set_staff_events(self, staff: StaffEvents) -> None:
        self.desk.staff = staff

    # ---- delivery ---------------------------------------------------------------------------

    async def channel_for(self, conversation_id: str) -> Channel | None:
        name = self._channel_of.get(conversation_id)
        if name is None:
            name = await self.store.run(lambda s: conversations.channel_of(s, conversation_id))
            if name is not None:
                self._channel_of[conversation_id] = name
        return self.channels.get(name or "")

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """Send a frame to the user; raises DeliveryFailed (callers from staff show it)."""
        channel = await self.channel_for(conversation_id)
        if channel is None:
            logger.warning("no channel for conversation %s", conversation_id)
            return
        await channel.deliver(conversation_id, frame)

    async def delivery_limit(self, conversation_id: str) -> DeliveryLimit | None:
        """The sending allowance of the conversation's channel (WeChat), None when unlimited."""
        channel = await self.channel_for(conversation_id)
        limit_of = getattr(channel, "delivery_limit", None)
        return None if limit_of is None else await limit_of(conversation_id)

    # ---- user messages ------------------------------------------------------------------------

    async def receive(
        self,
        conversation_id: str,
        channel: str,
        client_id: str,
        text: str,
        payload: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Received:
        """Store a user message, then queue its answer; see the module docstring."""
        self._channel_of[conversation_id] = channel
        try:
            stored = await self.store.store_user_message(
                conversation_id, client_id, text, payload, channel
            )
        except Exception as exc:
            logger.exception("could not store a message of %s", conversation_id)
            raise StoreFailed(str(exc)) from exc
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        # A resent copy is answered only if the first never was (the gateway that stored it
        # died before answering) and nobody here is answering it.
        unanswered = stored.status == conversations.RECEIVED and stored.id not in self._answering
        if stored.duplicate and not unanswered:
            done.set_result([])
        else:
            self._answering.add(stored.id)
            message = message_frame(
                "user", stored.id, stored.created_at, text,
                {"payload": payload} if payload else None, client_id=client_id,
            )  # fmt: skip
            idle = self.ratings.is_idle_return(stored.previous_at)
            self._enqueue(
                conversation_id,
                lambda: self._answer(
                    conversation_id, message, payload or text, metadata, done, idle
                ),
            )
        return Received(stored.id, stored.created_at, stored.duplicate, done)

    def _enqueue(self, conversation_id: str, job: Callable[[], Awaitable[None]]) -> None:
        """Answers of one conversation run one after another; conversations run side by side."""
        queue = self._queues.get(conversation_id)
        if queue is None:
            queue = self._queues[conversation_id] = asyncio.Queue()
            worker = asyncio.create_task(self._work(conversation_id, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.put_nowait(job)

    async def _work(self, conversation_id: str, queue: asyncio.Queue) -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                del self._queues[conversation_id]  # no await since get_nowait: no job is lost
                return
            try:
                await job()
            except Exception:
                logger.exception("answering a message of %s failed", conversation_id)

    async def close(self) -> None:
        """Let queued answers finish (on shutdown), within a bound."""
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=10)

    async def _answer(
        self,
        conversation_id: str,
        message: dict[str, Any],
        for_rasa: str,
        metadata: dict[str, Any] | None,
        done: asyncio.Future,
        idle_return: bool = False,
    ) -> None:
        sent: list[dict[str, Any]] = []
        message_id = message["id"]
        done.add_done_callback(lambda _: self._answering.discard(message_id))

        async def reply(frame: dict[str, Any]) -> None:
            frame = {**frame, "reply_to": message_id}
            if frame.get("type") != "typing":
                sent.append(frame)
            try:
                await self.deliver(conversation_id, frame)
            except DeliveryFailed as exc:
                logger.warning("could not deliver to %s: %s", conversation_id, exc.text)

        try:
            try:
                handoff, unresumed = await self.desk.routing_state(conversation_id)
            except Exception:  # database down: staff may have this conversation, the bot not
                logger.exception("could not read the handoff state of %s", conversation_id)
                await reply(
                    error_frame(
                        "not_stored",
                        NOT_ROUTED_TEXT,
                        client_id=message.get("client_id"),
                        retry_after=RETRY_SECONDS,
                    )
                )
                return
            if handoff is not None:
                await self.desk.pass_to_staff(conversation_id, handoff, message, reply)
            elif not await self._look_up(conversation_id, message_id, for_rasa, reply):
                await self._ask_bot(
                    conversation_id, message_id, for_rasa, metadata, unresumed, reply, idle_return
                )
        finally:
            if not done.done():
                done.set_result(sent)

    async def _ask_bot(
        self,
        conversation_id: str,
        message_id: int,
        for_rasa: str,
        metadata: dict[str, Any] | None,
        unresumed: list[Handoff] | None,
        reply: Callable[[dict[str, Any]], Awaitable[None]],
        idle_return: bool = False,
    ) -> None:
        """Ask Rasa, store and send its replies; an apology with a person on failure. The bot's
        rating request (or a return after idle) adds the rating card, once per conversation."""
        await reply({"type": "typing", "on": True})
        if for_rasa == NONE_OF_THESE["payload"]:
            await self._flag(conversation_id, message_id, "none_of_these")
        try:
            replies = await self._replies_from_rasa(
                conversation_id, for_rasa, metadata, unresumed, lambda: reply(queued_notice())
            )
            if not replies and for_rasa == REQUEST_HUMAN:
                # Rasa is down, or its handoff action failed (the action server is down), but
                # the user asked for a person: the gateway starts the handoff itself.
                await self._store_replies(conversation_id, message_id, [], answered=True)
                await self._flag(conversation_id, message_id, "handoff")
                await self.desk.request(conversation_id, "busy", [], reply)
                return
            handoff = next((r["custom"]["handoff"] for r in replies or [] if is_handoff(r)), None)
            trigger = next(
                (t for t in map(rating_request_trigger, replies or []) if t is not None), None
            )
            visible = [
                r
                for r in map(without_rating_request, replies or [])
                if r and not is_handoff(r) and not is_meta(r)
            ]
            stored = await self._store_replies(
                conversation_id,
                message_id,
                visible,
                answered=handoff is not None,
                meta=turn_meta(replies or []),
            )
            if handoff is not None:
                await self._flag(conversation_id, message_id, "handoff")
            if replies is None:
                await reply(error_frame("busy", BUSY_TEXT, offer_human=True))
            elif not replies:
                # No reply at all: an action failed inside Rasa (e.g. the action server is down).
                await reply(error_frame("no_answer", BUSY_TEXT, offer_human=True))
            for frame in stored:
                await reply(frame)
            if trigger is None and idle_return and handoff is None and ends_answered(replies or []):
                trigger = "idle"
            if trigger is not None and handoff is None:
                offer = await self.ratings.offer(conversation_id, trigger)
                if offer is not None:
                    await reply(offer)
            if handoff is not None:
                reason = handoff.get("reason") if isinstance(handoff, dict) else None
                intents = handoff.get("intents") if isinstance(handoff, dict) else None
                await self.desk.request(
                    conversation_id,
                    reason if reason in ("user", "fallback") else "user",
                    [i for i in intents or [] if isinstance(i, str)],
                    reply,
                )
        finally:
            await reply({"type": "typing", "on": False})

    async def _look_up(
        self,
        conversation_id: str,
        message_id: int,
        text: str,
        reply: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> bool:
        """A status look-up ("查询 ZX-…", then the last four digits) is answered here, not by the
        bot; False for any other message."""
        try:
            answer = await self.lookups.answer(conversation_id, text)
        except Exception:  # the database is down: the bot answers (or apologises)
            logger.exception("status look-up of %s failed", conversation_id)
            return False
        if answer is None:
            return False
        for frame in await self._store_replies(
            conversation_id, message_id, [{"text": answer}], answered=True
        ):
            await reply(frame)
        return True

    async def _replies_from_rasa(
        self,
        conversation_id: str,
        text: str,
        metadata: dict[str, Any] | None,
        unresumed: list[Handoff] | None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
    ) -> list[dict[str, Any]] | None:
        """Rasa's replies to show (possibly none); None when Rasa is down, too slow or saturated
        (`on_queued`: the message waits its turn, bot/rasa/queue.py)."""
        try:
            await self.desk.resume_bot_if_needed(conversation_id, unresumed)
            messages = await self.rasa.send_message(conversation_id, text, metadata, on_queued)
        except RasaUnavailable:
            logger.warning("Rasa unavailable for conversation %s", conversation_id, exc_info=True)
            return None
        return [r for r in map(bot_reply, messages) if r is not None]

    async def _store_replies(
        self,
        conversation_id: str,
        message_id: int,
        replies: list[dict[str, Any]],
        answered: bool,
        meta: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Store the replies as `bot` frames; still show them when the database fails."""
        try:
            return await self.store.store_replies(
                conversation_id, message_id, replies, answered, meta
            )
        except Exception:
            logger.exception("could not store the replies of %s", conversation_id)
            return [{"type": "bot", **r} for r in replies]

    async def _flag(self, conversation_id: str, message_id: int, reason: str) -> None:
        """The citizen's question up to this message goes to the review inbox; a failure
        costs the inbox one entry, never the answer."""
        try:
            await self.store.flag_question(conversation_id, message_id, reason, inclusive=True)
        except Exception:
            logger.exception("could not flag a question of %s for review", conversation_id)

    # ---- the citizen's side of a handoff --------------------------------------------------------

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
        return await self.desk.leave_ticket(
            conversation_id, phone, text,
            channel=channel, client_id=client_id, require_offline=require_offline,
        )  # fmt: skip

    async def rate(self, conversation_id: str, handoff_id: int, score: int, comment: str) -> None:
        await self.desk.rate(conversation_id, handoff_id, score, comment)

    async def rate_conversation(self, conversation_id: str, score: int, comment: str) -> None:
        """The rating of a conversation the bot handled alone (after its rating card)."""
        await self.ratings.rate(conversation_id, score, comment)

    async def user_typing(self, conversation_id: str, on: bool) -> None:
        await self.desk.user_typing(conversation_id, on)


def without_rating_request(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply without the bot's rating request (which becomes the rating card); {} when
    nothing else is in it."""
    if rating_request_trigger(reply) is None:
        return reply
    return {k: v for k, v in reply.items() if k != "custom"}


def is_meta(reply: dict[str, Any]) -> bool:
    """The action server's note of what it did with the question (`{"custom": {"meta": {...}}}`:
    outcome, topic, knowledge item key, score), stored with the question, never shown."""
    custom = reply.get("custom")
    return isinstance(custom, dict) and isinstance(custom.get("meta"), dict)


def meta_of(reply: dict[str, Any]) -> dict[str, Any]:
    return reply["custom"]["meta"]


def turn_meta(replies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One turn's notes merged: the first value of each field, except that an outcome other
    than "answered" (a fallback after a knowledge miss) wins."""
    notes = [meta_of(r) for r in replies if is_meta(r)]
    if not notes:
        return None
    merged: dict[str, Any] = {}
    for note in notes:
        for name, value in note.items():
            merged.setdefault(name, value)
    worse = next((n["outcome"] for n in notes if n.get("outcome") not in (None, "answered")), None)
    if worse is not None:
        merged["outcome"] = worse
    return merged


def ends_answered(replies: list[dict[str, Any]]) -> bool:
    """The turn ends with a knowledge answer: the action server's "answered" note follows every
    visible reply. A form that the message started, or that asks its question again after the
    answer, speaks after the note: no rating card gets in its way."""
    answered = [
        i for i, r in enumerate(replies) if is_meta(r) and meta_of(r).get("outcome") == "answered"
    ]
    if not answered:
        return False
    return not any(
        without_rating_request(r) and not is_meta(r) for r in replies[answered[-1] + 1 :]
    )


def is_handoff(reply: dict[str, Any]) -> bool:
    """The handoff action's message: `{"custom": {"handoff": {...}}}`, never shown as a bubble."""
    custom = reply.get("custom")
    return isinstance(custom, dict) and "handoff" in custom
