"""The open websockets of each conversation: a browser may have several tabs on one conversation."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        # Close codes asked for from another task; the socket's own handler applies them, since
        # aiohttp otherwise closes a socket whose reader was interrupted with the default 1000.
        self._closing: dict[web.WebSocketResponse, int] = {}

    def add(self, conversation_id: str, ws: web.WebSocketResponse) -> None:
        self._sockets[conversation_id].add(ws)

    def discard(self, conversation_id: str, ws: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(conversation_id)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[conversation_id]

    def conversations(self) -> list[str]:
        return list(self._sockets)

    def sockets(self, conversation_id: str) -> list[web.WebSocketResponse]:
        return list(self._sockets.get(conversation_id, ()))

    async def send(
        self,
        conversation_id: str,
        frame: dict[str, Any],
        exclude: web.WebSocketResponse | None = None,
    ) -> None:
        """Send to every open socket of the conversation; a closing one is skipped, not fatal."""
        for ws in self.sockets(conversation_id):
            if ws is exclude or ws.closed:
                continue
            try:
                await ws.send_json(frame)
            except (ConnectionError, RuntimeError):
                logger.debug("socket of %s closed while sending", conversation_id)

    async def close_all(self, conversation_id: str, code: int, reason: str) -> None:
        for ws in self.sockets(conversation_id):
            self._closing[ws] = code
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=code, message=reason.encode())

    def requested_close_code(self, ws: web.WebSocketResponse) -> int | None:
        return self._closing.pop(ws, None)
