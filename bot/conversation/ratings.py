"""The rating of a conversation the bot handled alone: offered once per conversation, when the bot
says so after thanks or goodbye (its custom message `{"rating_request": {"after": "thank"}}`) or
when the citizen comes back to an idle conversation; saved with the topic it was about.

The idle offer waits RATING_IDLE_MINUTES (default 60, Rasa's session expiry: by then a form the
citizen left has been reset, so the card never lands in the middle of one).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.conversation.calendar import CalendarSource, beijing_today
from bot.conversation.store import ChatStore
from bot.db import handoffs, ratings
from bot.db.conversations import utcnow
from bot.db.handoffs import RATINGS, RatingRefused
from bot.domain.vocabulary import KNOWLEDGE_TOPICS
from bot.rasa.pool import RasaPool, RasaUnavailable

logger = logging.getLogger(__name__)
RATING_REQUEST = "rating_request"
MAX_COMMENT_CHARS = 500
# A card offered this long ago is not shown again after a reload.
SHOW_OFFER_FOR = timedelta(days=1)
# WeChat's "意见 …" after a score adds to a rating given this recently.
COMMENT_WITHIN = timedelta(hours=1)
REFUSED_TEXT = {
    RatingRefused.NOT_FOUND: "现在没有需要评价的服务。",
    RatingRefused.NOT_CLOSED: "现在没有需要评价的服务。",
    RatingRefused.ALREADY_RATED: "您已经评价过了，谢谢。",
}


def rating_request_trigger(reply: dict[str, Any]) -> str | None:
    """ "thank"/"goodbye" of the bot's `{"custom": {"rating_request": {"after": …}}}`, else None."""
    custom = reply.get("custom")
    if not isinstance(custom, dict) or RATING_REQUEST not in custom:
        return None
    request = custom[RATING_REQUEST]
    after = request.get("after") if isinstance(request, dict) else None
    return after if after in ratings.TRIGGERS else "thank"


def rating_request_frame(trigger: str) -> dict[str, Any]:
    """The citizen's card (web chat) or numbered prompt (WeChat)."""
    return {"type": RATING_REQUEST, "scope": "conversation", "trigger": trigger}


class BotRatings:
    def __init__(
        self,
        store: ChatStore,
        rasa: RasaPool,
        calendar: CalendarSource,
        idle: timedelta = timedelta(minutes=60),
        follow_up_days: int = 5,
    ) -> None:
        self.store = store
        self.rasa = rasa
        self.calendar = calendar
        self.idle = idle
        self.follow_up_days = follow_up_days

    def is_idle_return(self, previous_at: datetime | None, now: datetime | None = None) -> bool:
        """The citizen writes again after the conversation was idle for RATING_IDLE_MINUTES."""
        return previous_at is not None and (now or utcnow()) - previous_at >= self.idle

    async def offer(self, conversation_id: str, trigger: str) -> dict[str, Any] | None:
        """Record the offer and return its frame; None when it was offered before, or the
        conversation's last person-handled part is rated through the handoff card instead."""

        def work(session: Session) -> ratings.Rating | None:
            latest = handoffs.latest_handoff(session, conversation_id)
            if latest is not None and latest.status in (*handoffs.OPEN_STATES, handoffs.CLOSED):
                return None
            return ratings.offer_bot_rating(session, conversation_id, trigger)

        try:
            offered = await self.store.run(work)
        except Exception:  # a rating card is not worth an error
            logger.warning("could not offer a rating to %s", conversation_id, exc_info=True)
            return None
        return rating_request_frame(trigger) if offered is not None else None

    async def pending_frame(self, conversation_id: str) -> dict[str, Any] | None:
        """The card again (after a reload) while an offer is recent and unanswered."""
        rating = await self.store.run(lambda s: ratings.bot_rating(s, conversation_id))
        if rating is None or rating.score is not None:
            return None
        if utcnow() - rating.offered_at > SHOW_OFFER_FOR:
            return None
        return rating_request_frame(rating.trigger)

    async def rate(self, conversation_id: str, score: int, comment: str) -> None:
        """Save the citizen's rating; ValueError (Chinese) when it cannot be."""
        if score not in RATINGS:
            raise ValueError("请选择一个评价等级。")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"评价内容请控制在{MAX_COMMENT_CHARS}字以内。")
        topic = await self.topic(conversation_id)
        calendar = await self.calendar.get()
        today, days = beijing_today(), self.follow_up_days
        refused = await self.store.run(
            lambda s: ratings.save_bot_rating(
                s, conversation_id, score, comment, topic, today, calendar, days
            )
        )
        if refused is not None:
            raise ValueError(REFUSED_TEXT[refused])

    async def add_comment(self, conversation_id: str, comment: str) -> bool:
        """A comment after a rating given within COMMENT_WITHIN; False when there is none."""
        comment = comment.strip()[:MAX_COMMENT_CHARS]
        since = utcnow() - COMMENT_WITHIN
        if not comment:
            return False
        return await self.store.run(
            lambda s: ratings.add_comment(s, conversation_id, comment, since)
        )

    async def topic(self, conversation_id: str) -> str | None:
        """The latest knowledge topic the citizen asked about (from Rasa's tracker), if any."""
        try:
            intents = await self.rasa.user_intents(conversation_id)
        except RasaUnavailable:
            return None
        return next((i for i in reversed(intents) if i in KNOWLEDGE_TOPICS), None)
