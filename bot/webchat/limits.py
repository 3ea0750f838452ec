"""The web chat's flood limits (issue 14, #6), per gateway process, all bounded in memory.

Per client address (bot/web/client_address.py), within ADDRESS_LIMIT_WINDOW: new conversations
(a fresh cookie is a fresh conversation, so the per-conversation limits alone are no limit),
new handoffs and tickets. Per conversation: chat messages (CHAT_RATE_LIMIT per CHAT_RATE_WINDOW,
the routes' LIMITER), typing frames, and ticket and rating frames.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.settings import Settings
from bot.webchat.ratelimit import MAX_KEYS, RateLimiter

TYPING_FRAMES, TYPING_WINDOW = 20, 10.0  # a typing indicator at most every half second
FORM_FRAMES, FORM_WINDOW = 5, 60.0  # ticket and rating frames of one conversation


class WebChatLimits:
    def __init__(self, settings: Settings) -> None:
        window = settings.address_limit_window
        self.new_conversations = RateLimiter(settings.address_new_conversations, window)
        self.handoffs = RateLimiter(settings.address_handoffs, window)
        self.tickets = RateLimiter(settings.address_tickets, window)
        self.typing = RateLimiter(TYPING_FRAMES, TYPING_WINDOW)
        self.forms = RateLimiter(FORM_FRAMES, FORM_WINDOW)
        self._address_of: OrderedDict[str, str] = OrderedDict()  # conversation → address

    def remember(self, conversation_id: str, address: str) -> None:
        """The address a conversation's socket came from (the handoff limit needs it)."""
        self._address_of.pop(conversation_id, None)
        self._address_of[conversation_id] = address
        while len(self._address_of) > MAX_KEYS:
            self._address_of.popitem(last=False)

    def admit_handoff(self, conversation_id: str) -> bool:
        """Counts a new handoff against the conversation's address; False past the limit."""
        address = self._address_of.get(conversation_id)
        return address is None or self.handoffs.retry_after(address) is None
