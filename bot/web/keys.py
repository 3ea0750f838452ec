"""Typed keys for what the application keeps on `web.Application`."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.conversation.bus import Bus
from bot.conversation.pipeline import Pipeline
from bot.rasa.pool import RasaPool
from bot.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
RASA_CLIENT = web.AppKey("rasa_client", RasaPool)
PIPELINE = web.AppKey("pipeline", Pipeline)
# LocalBus or RedisBus (several gateways): fan-out of frames to the instance holding the socket.
BUS = web.AppKey("bus", Bus)
