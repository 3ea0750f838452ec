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
from datetime import datetime
from typing import Any

from bot.conversation.channel import Channel, DeliveryFailed, DeliveryLimit, StoreFailed
from bot.conversation.frames import bot_reply, error_frame, message_frame, queued_notice
from bot.conversation.handoff import HandoffDesk, StaffEvents
from bot.conversation.hours import WorkingHours
from bot.conversation.store import ChatStore
from bot.db import conversations
from bot.db.handoffs import Handoff
from bot.domain.vocabulary import REQUEST_HUMAN
from bot.rasa.pool import RasaPool, RasaUnavailable

__all__ = ["Channel", "DeliveryFailed", "Pipeline", "Received", "StoreFailed"]
logger = logging.getLogger(__name__)
BUSY_TEXT = "系统繁忙，请稍后再试，或转人工咨询。"


@dataclass(frozen=True)
class Received:
    message_id: int
    created_at: datetime
    duplicate: bool
    # The frames delivered in answer to this message, once the answer is complete.
    done: asyncio.Future


class Pipeline:
    def __init__(self, store: ChatStore, rasa: RasaPool, hours: WorkingHours) -> None:
        self.store = store
        self.rasa = rasa
        self.channels: dict[str, Channel] = {}
        self._channel_of: dict[str, str] = {}
        self._queues: dict[str, asyncio.Queue[Callable[[], Awaitable[None]]]] = {}
        self._workers: set[asyncio.Task] = set()
        self._answering: set[int] = set()  # user messages queued or being answered here
        self.desk = HandoffDesk(store, rasa, hours, self.deliver)
        self.desk.delivery_limit = self.delivery_limit

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
            self._enqueue(
                conversation_id,
                lambda: self._answer(conversation_id, message, payload or text, metadata, done),
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
            except Exception:  # the database is down: the bot still answers (or apologises)
                logger.exception("could not read the handoff state of %s", conversation_id)
                handoff, unresumed = None, None
            if handoff is not None:
                await self.desk.pass_to_staff(conversation_id, handoff, message, reply)
            else:
                await self._ask_bot(
                    conversation_id, message_id, for_rasa, metadata, unresumed, reply
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
    ) -> None:
        """Ask Rasa, store and send its replies; an apology with a person on failure."""
        await reply({"type": "typing", "on": True})
        try:
            replies = await self._replies_from_rasa(
                conversation_id, for_rasa, metadata, unresumed, lambda: reply(queued_notice())
            )
            if not replies and for_rasa == REQUEST_HUMAN:
                # Rasa is down, or its handoff action failed (the action server is down), but
                # the user asked for a person: the gateway starts the handoff itself.
                await self._store_replies(conversation_id, message_id, [], answered=True)
                await self.desk.request(conversation_id, "busy", [], reply)
                return
            handoff = next((r["custom"]["handoff"] for r in replies or [] if is_handoff(r)), None)
            visible = [r for r in replies or [] if not is_handoff(r)]
            stored = await self._store_replies(
                conversation_id, message_id, visible, answered=handoff is not None
            )
            if replies is None:
                await reply(error_frame("busy", BUSY_TEXT, offer_human=True))
            elif not replies:
                # No reply at all: an action failed inside Rasa (e.g. the action server is down).
                await reply(error_frame("no_answer", BUSY_TEXT, offer_human=True))
            for frame in stored:
                await reply(frame)
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
    ) -> list[dict[str, Any]]:
        """Store the replies as `bot` frames; still show them when the database fails."""
        try:
            return await self.store.store_replies(conversation_id, message_id, replies, answered)
        except Exception:
            logger.exception("could not store the replies of %s", conversation_id)
            return [{"type": "bot", **r} for r in replies]

    # ---- the citizen's side of a handoff --------------------------------------------------------

    async def leave_ticket(self, conversation_id: str, phone: str, text: str) -> int:
        return await self.desk.leave_ticket(conversation_id, phone, text)

    async def rate(self, conversation_id: str, handoff_id: int, score: int, comment: str) -> None:
        await self.desk.rate(conversation_id, handoff_id, score, comment)

    async def user_typing(self, conversation_id: str, on: bool) -> None:
        await self.desk.user_typing(conversation_id, on)


def is_handoff(reply: dict[str, Any]) -> bool:
    """The handoff action's message: `{"custom": {"handoff": {...}}}`, never shown as a bubble."""
    custom = reply.get("custom")
    return isinstance(custom, dict) and "handoff" in custom
