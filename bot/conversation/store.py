"""Conversation storage calls, run in a worker thread so the event loop never waits on the DB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from bot.conversation.frames import message_frame
from bot.db import conversations, review
from bot.db.runner import run_db

T = TypeVar("T")


class ChatStore:
    def __init__(self, database_url: str, timeout: float) -> None:
        self.database_url = database_url
        self.timeout = timeout  # Settings.db_timeout

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` through bot.db.runner.run_db; asyncio.TimeoutError and database
        errors reach the caller, which tells the user."""
        return await run_db(self.database_url, work, self.timeout)

    async def store_user_message(
        self,
        conversation_id: str,
        client_id: str,
        text: str,
        payload: str | None,
        channel: str = "webchat",
    ) -> conversations.Stored:
        return await self.run(
            lambda s: conversations.store_user_message(
                s, conversation_id, client_id, text, payload, channel
            )
        )

    async def store_replies(
        self,
        conversation_id: str,
        user_message_id: int,
        replies: list[dict[str, Any]],
        answered: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Store the bot's replies; return them as `bot` frames with their ids and time.
        `meta`: what the action server said it did with the question (bot.db.review)."""

        def work(session: Session) -> list[dict[str, Any]]:
            stored = conversations.store_replies(
                session, conversation_id, user_message_id, replies, answered
            )
            if meta:
                review.record_outcome(session, user_message_id, meta)
            return [as_frame(m) for m in stored]

        return await self.run(work)

    async def add_message(
        self,
        conversation_id: str,
        role: str,
        text: str,
        data: dict[str, Any] | None = None,
        client_message_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a staff or system message; return it as a frame."""
        return await self.run(
            lambda s: as_frame(
                conversations.add_message(s, conversation_id, role, text, data, client_message_id)
            )
        )

    async def flag_question(
        self, conversation_id: str, message_id: int, reason: str, inclusive: bool
    ) -> None:
        """Put the question asked up to `message_id` in the review inbox (bot.db.review)."""
        await self.run(
            lambda s: review.flag_question(s, conversation_id, message_id, reason, inclusive)
        )

    async def set_feedback(
        self, conversation_id: str, message_id: int, value: str, reason: str | None
    ) -> None:
        """The citizen's 👍/👎 on a bot message; review.FeedbackRefused when not theirs."""
        await self.run(lambda s: review.set_feedback(s, conversation_id, message_id, value, reason))

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        return await self.run(
            lambda s: [as_frame(m) for m in conversations.history(s, conversation_id)]
        )


def as_frame(message: conversations.Message) -> dict[str, Any]:
    data = {k: v for k, v in (message.data or {}).items() if k != "agent_id"}
    if message.role == "user" and message.payload:
        data["payload"] = message.payload
    if message.feedback:
        data["feedback"] = message.feedback
    return message_frame(
        message.role,
        message.id,
        message.created_at,
        message.text,
        data,
        client_id=message.client_message_id,
    )
