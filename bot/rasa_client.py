"""Talk to Rasa over HTTP: the REST channel for messages, /version for health."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


class RasaUnavailable(RuntimeError):
    """Rasa did not answer in time, or answered with an error."""


class RasaClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send_message(self, conversation_id: str, text: str) -> list[dict[str, Any]]:
        """Post one user message; returns Rasa's bot messages (text, buttons, custom …)."""
        url = f"{self._base_url}/webhooks/rest/webhook"
        try:
            async with self._http.post(
                url, json={"sender": conversation_id, "message": text}, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise RasaUnavailable(f"Rasa answered HTTP {response.status}")
                messages = await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise RasaUnavailable(f"Rasa did not answer: {exc!r}") from exc
        if not isinstance(messages, list):
            raise RasaUnavailable("Rasa answered something other than a list of messages")
        return messages

    async def is_up(self) -> bool:
        try:
            async with self._http.get(
                f"{self._base_url}/version", timeout=aiohttp.ClientTimeout(total=2)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
