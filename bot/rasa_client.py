"""Talk to Rasa over HTTP: the REST channel for messages, the tracker API to resume a
conversation after a handoff (with the API token), /version for health."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp


class RasaUnavailable(RuntimeError):
    """Rasa did not answer in time, or answered with an error."""


class RasaClient:
    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, timeout: float, token: str = ""
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token = token

    async def send_message(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Post one user message; returns Rasa's bot messages (text, buttons, custom …).

        `metadata` (e.g. a shared location) reaches the actions on the user event."""
        url = f"{self._base_url}/webhooks/rest/webhook"
        body: dict[str, Any] = {"sender": conversation_id, "message": text}
        if metadata:
            body["metadata"] = metadata
        try:
            async with self._http.post(url, json=body, timeout=self._timeout) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                messages = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if not isinstance(messages, list):
            raise RasaUnavailable("Rasa answered something other than a list of messages")
        return messages

    async def resume(self, conversation_id: str) -> None:
        """Lift the pause a handoff put on the conversation (Rasa's `resume` event)."""
        url = f"{self._base_url}/conversations/{quote(conversation_id, safe='')}/tracker/events"
        try:
            async with self._http.post(
                url, params={"token": self._token}, json={"event": "resume"}, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status} to resume")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(f"Rasa did not answer: {exc!r}") from exc

    async def is_up(self) -> bool:
        try:
            async with self._http.get(
                f"{self._base_url}/version", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
