"""GET /healthz: does the gateway reach Rasa and the action server?"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from bot.web.keys import HTTP_CLIENT, RASA_CLIENT, SETTINGS


async def _action_server_up(http: aiohttp.ClientSession, base_url: str) -> bool:
    try:
        async with http.get(
            f"{base_url}/health", timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    rasa_up, actions_up = await asyncio.gather(
        app[RASA_CLIENT].is_up(),
        _action_server_up(app[HTTP_CLIENT], app[SETTINGS].action_url),
    )
    body = {
        "status": "ok" if rasa_up and actions_up else "degraded",
        "rasa": "up" if rasa_up else "down",
        "actions": "up" if actions_up else "down",
    }
    return web.json_response(body, status=200 if rasa_up and actions_up else 503)
