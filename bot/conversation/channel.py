"""What a channel (web chat, WeChat) offers the pipeline, and the errors between them."""

from __future__ import annotations

from typing import Any, Protocol


class StoreFailed(RuntimeError):
    """The user's message could not be stored: it was not accepted, the client must resend."""


class DeliveryFailed(RuntimeError):
    """A frame could not reach the user; `text` (Chinese) is shown to the staff member."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Channel(Protocol):
    name: str

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """Show one frame to the user; raise DeliveryFailed when it cannot reach them."""
