"""GET / (the chat page) and GET /ws (its websocket)."""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from aiohttp_session import STORAGE_KEY, get_session

from bot.keys import RASA_CLIENT, SETTINGS
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.webchat.protocol import ProtocolError, bot_frame, error_frame, parse_client_frame

logger = logging.getLogger(__name__)
STATIC_DIR = __file__.rsplit("/", 1)[0] + "/static"
BUSY_TEXT = "系统繁忙，请稍后再试，或转人工咨询。"


async def conversation_id(request: web.Request) -> str:
    """The conversation of this browser, assigned by the gateway and kept in its session cookie.

    Clients never choose it, so nobody can read or write another conversation.
    """
    session = await get_session(request)
    if "conversation_id" not in session:
        session["conversation_id"] = uuid.uuid4().hex
    return session["conversation_id"]


def origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser: no cross-site risk
        return True
    own = f"{request.scheme}://{request.host}"
    allowed = {own, *request.app[SETTINGS].allowed_origins}
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" in allowed


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, str]:
    await conversation_id(request)  # set the cookie with the page, before the websocket opens
    return {}


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    sender = await conversation_id(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    session = await get_session(request)
    if session.new:  # aiohttp-session does not save into websocket responses by itself
        await request[STORAGE_KEY].save_session(request, ws, session)
    await ws.prepare(request)
    rasa = request.app[RASA_CLIENT]
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            if msg.type == WSMsgType.BINARY:
                await ws.send_json(error_frame("bad_frame", "不支持的消息类型。"))
            continue
        try:
            user_message = parse_client_frame(msg.data)
        except ProtocolError as exc:
            await ws.send_json(error_frame(exc.code, exc.text))
            continue
        if user_message is None:
            continue
        await ws.send_json({"type": "typing", "on": True})
        for frame in await answer(rasa, sender, user_message.for_rasa):
            await ws.send_json(frame)
        await ws.send_json({"type": "typing", "on": False})
    return ws


async def answer(rasa: RasaClient, sender: str, text: str) -> list[dict]:
    """The frames that answer one user message; an apology with a way to a person on failure."""
    try:
        replies = await rasa.send_message(sender, text)
    except RasaUnavailable:
        logger.warning("Rasa unavailable for conversation %s", sender, exc_info=True)
        return [error_frame("busy", BUSY_TEXT, offer_human=True)]
    frames = [f for f in map(bot_frame, replies) if f is not None]
    # No reply at all means an action failed inside Rasa (e.g. the action server is down).
    return frames or [error_frame("no_answer", BUSY_TEXT, offer_human=True)]


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static/", STATIC_DIR)
