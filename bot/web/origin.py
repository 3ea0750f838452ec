"""Which browser origins may open a websocket or post to the gateway (the page's own and
BOT_ALLOWED_ORIGINS): the web chat and the staff console both ask."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from bot.web.keys import SETTINGS


def origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser: no cross-site risk
        return True
    own = f"{request.scheme}://{request.host}"
    allowed = {own, *request.app[SETTINGS].allowed_origins}
    try:
        parts = urlsplit(origin)
    except ValueError:  # e.g. "http://[": not an origin a browser sends
        return False
    return f"{parts.scheme}://{parts.netloc}" in allowed
