"""The web chat as a channel of the pipeline: frames go to every open tab of a conversation,
on whichever gateway instance the tab is connected to (through the bus)."""

from __future__ import annotations

from typing import Any

from bot.conversation.bus import Bus
from bot.webchat.hub import Hub


class WebChatChannel:
    """Delivers pipeline frames to every open tab of the conversation, on whichever gateway
    instance the tab is connected to (through the bus)."""

    name = "webchat"
    topic = "webchat"

    def __init__(self, hub: Hub, bus: Bus) -> None:
        self.hub = hub
        self.bus = bus
        bus.subscribe(self.topic, self._deliver_here)

    async def deliver(self, conversation_id: str, frame: dict[str, Any]) -> None:
        # The page pairs answers with questions by order; "reply_to" is for other channels.
        frame = {k: v for k, v in frame.items() if k != "reply_to"}
        await self.bus.publish(self.topic, {"conversation_id": conversation_id, "frame": frame})

    async def _deliver_here(self, message: dict[str, Any]) -> None:
        await self.hub.send(message["conversation_id"], message["frame"])
