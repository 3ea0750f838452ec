"""What a channel (web chat, WeChat) offers the pipeline, and the errors between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class StoreFailed(RuntimeError):
    """The user's message could not be stored: it was not accepted, the client must resend."""


class DeliveryFailed(RuntimeError):
    """A frame could not reach the user; `text` (Chinese) is shown to the staff member."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class DeliveryLimit:
    """A channel that may send a user only so many messages (WeChat's customer-service allowance):
    how many are left, until when (epoch seconds, None: no window is open), how many texts wait
    for the user's next message, and why nothing can be sent ("" while something can)."""

    remaining: int
    closes_at: float | None
    waiting: int
    refusal: str

    def as_frame(self) -> dict[str, Any]:
        return {
            "remaining": self.remaining,
            "closes_at": self.closes_at,
            "waiting": self.waiting,
            "refusal": self.refusal,
        }


class Channel(Protocol):
    name: str

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """Show one frame to the user; raise DeliveryFailed when it cannot reach them.

        A channel with a sending allowance also offers
        `async def delivery_limit(conversation_id) -> DeliveryLimit | None`."""
