"""GET / (the chat page), GET /ws (its websocket) and POST /conversations/new ("新对话")."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from aiohttp_session import STORAGE_KEY, get_session

from bot.keys import RASA_CLIENT, SETTINGS
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.webchat.hub import Hub
from bot.webchat.protocol import (
    ProtocolError,
    UserMessage,
    ack_frame,
    bot_reply,
    error_frame,
    message_frame,
    parse_client_frame,
    welcome_frame,
)
from bot.webchat.ratelimit import RateLimiter
from bot.webchat.store import ChatStore

logger = logging.getLogger(__name__)
STATIC_DIR = __file__.rsplit("/", 1)[0] + "/static"
BUSY_TEXT = "系统繁忙，请稍后再试，或转人工咨询。"
NOT_STORED_TEXT = "消息暂时没有发出，稍后会自动重发。"
RETRY_NOT_STORED_SECONDS = 3.0
# Close code telling a tab that its browser started a new conversation (it reconnects at once).
CLOSE_NEW_CONVERSATION = 4001
# The header a same-origin fetch() adds; a cross-site form or link cannot send it.
CSRF_HEADER = "X-Requested-With"

HUB = web.AppKey("webchat_hub", Hub)
LIMITER = web.AppKey("webchat_limiter", RateLimiter)
STORE = web.AppKey("webchat_store", ChatStore)
# Answer tasks outlive their socket (a closed tab's question is still answered and stored).
ANSWER_TASKS = web.AppKey("webchat_answer_tasks", set)


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


async def new_conversation(request: web.Request) -> web.StreamResponse:
    """Give this browser a fresh conversation id; its open tabs then reconnect to it.

    Needs a same-origin fetch: a custom header (a cross-site form cannot send one) and, when the
    browser sends an Origin, an allowed one. The session cookie is SameSite=Lax as well.
    """
    if request.headers.get(CSRF_HEADER) != "ipbot" or not origin_allowed(request):
        raise web.HTTPForbidden(text="cross-site request refused")
    session = await get_session(request)
    old = session.get("conversation_id")
    session["conversation_id"] = uuid.uuid4().hex
    # The cookie must reach the browser before its tabs are told to reconnect, so the response
    # is sent here (a StreamResponse, which the session middleware leaves alone) and then they are.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await request[STORAGE_KEY].save_session(request, response, session)
    await response.prepare(request)
    await response.write(b'{"ok": true}')
    await response.write_eof()
    if old:
        await request.app[HUB].close_all(old, CLOSE_NEW_CONVERSATION, "new conversation")
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    conversation = await conversation_id(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    session = await get_session(request)
    if session.new:  # aiohttp-session does not save into websocket responses by itself
        await request[STORAGE_KEY].save_session(request, ws, session)
    await ws.prepare(request)
    app = request.app
    hub = app[HUB]
    hub.add(conversation, ws)
    answers: asyncio.Queue[tuple[int, UserMessage] | None] = asyncio.Queue()
    task = asyncio.create_task(answer_in_order(app, conversation, answers))
    app[ANSWER_TASKS].add(task)
    task.add_done_callback(app[ANSWER_TASKS].discard)
    try:
        await send_history(app, conversation, ws)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await receive(app, conversation, ws, msg.data, answers)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_json(error_frame("bad_frame", "不支持的消息类型。"))
    finally:
        hub.discard(conversation, ws)
        answers.put_nowait(None)  # the worker answers what is queued, then stops
    code = hub.requested_close_code(ws)
    if code is not None:
        await ws.close(code=code)
    return ws


async def send_history(app: web.Application, conversation: str, ws: web.WebSocketResponse) -> None:
    try:
        messages = await app[STORE].history(conversation)
    except Exception:  # the page still works; it just starts empty
        logger.exception("could not read the history of %s", conversation)
        messages = []
    frame: dict[str, Any] = {"type": "history", "messages": messages}
    if not messages:
        frame["welcome"] = welcome_frame()
    await ws.send_json(frame)


async def receive(
    app: web.Application,
    conversation: str,
    ws: web.WebSocketResponse,
    raw: str,
    answers: asyncio.Queue,
) -> None:
    """One client frame: check it, store it, acknowledge it, queue it for an answer."""
    try:
        message = parse_client_frame(raw)
    except ProtocolError as exc:
        await ws.send_json(error_frame(exc.code, exc.text, client_id=exc.client_id))
        return
    if message is None:
        return
    retry_after = app[LIMITER].retry_after(conversation)
    if retry_after is not None:
        text = f"您发送得太快了，请{max(1, round(retry_after))}秒后再发。"
        await ws.send_json(
            error_frame("rate_limited", text, client_id=message.client_id, retry_after=retry_after)
        )
        return
    try:
        stored = await app[STORE].store_user_message(
            conversation, message.client_id, message.text, message.payload
        )
    except Exception:  # not stored means not acknowledged: the client sends it again later
        logger.exception("could not store a message of %s", conversation)
        await ws.send_json(
            error_frame(
                "not_stored",
                NOT_STORED_TEXT,
                client_id=message.client_id,
                retry_after=RETRY_NOT_STORED_SECONDS,
            )
        )
        return
    await ws.send_json(ack_frame(message.client_id, stored.id, stored.created_at, stored.duplicate))
    if stored.duplicate:
        return  # stored and answered the first time it arrived
    user_frame = message_frame(
        "user",
        stored.id,
        stored.created_at,
        message.text,
        {"payload": message.payload} if message.payload else None,
        client_id=message.client_id,
    )
    await app[HUB].send(conversation, user_frame, exclude=ws)  # the browser's other tabs
    answers.put_nowait((stored.id, message))


async def answer_in_order(app: web.Application, conversation: str, answers: asyncio.Queue) -> None:
    while (item := await answers.get()) is not None:
        message_id, message = item
        try:
            await answer(app, conversation, message_id, message)
        except Exception:
            logger.exception("answering a message of %s failed", conversation)


async def answer(
    app: web.Application, conversation: str, message_id: int, message: UserMessage
) -> None:
    """Ask Rasa, store its replies, send them to every tab; an apology with a person on failure."""
    hub = app[HUB]
    await hub.send(conversation, {"type": "typing", "on": True})
    try:
        frames = await replies_from_rasa(app[RASA_CLIENT], conversation, message.for_rasa)
        replies = [] if frames is None else frames
        try:
            stored = await app[STORE].store_replies(conversation, message_id, replies)
        except Exception:  # still show the answer; only its history entry is lost
            logger.exception("could not store the replies of %s", conversation)
            stored = [{"type": "bot", **r} for r in replies]
        if frames is None:
            await hub.send(conversation, error_frame("busy", BUSY_TEXT, offer_human=True))
        elif not frames:
            # No reply at all means an action failed inside Rasa (e.g. the action server is down).
            await hub.send(conversation, error_frame("no_answer", BUSY_TEXT, offer_human=True))
        for frame in stored:
            await hub.send(conversation, frame)
    finally:
        await hub.send(conversation, {"type": "typing", "on": False})


async def replies_from_rasa(
    rasa: RasaClient, conversation: str, text: str
) -> list[dict[str, Any]] | None:
    """Rasa's replies to show (possibly none); None when Rasa is down or too slow."""
    try:
        messages = await rasa.send_message(conversation, text)
    except RasaUnavailable:
        logger.warning("Rasa unavailable for conversation %s", conversation, exc_info=True)
        return None
    return [r for r in map(bot_reply, messages) if r is not None]


def setup_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[HUB] = Hub()
    app[LIMITER] = RateLimiter(settings.chat_rate_limit, settings.chat_rate_window)
    app[STORE] = ChatStore(settings.database_url)
    app[ANSWER_TASKS] = set()
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/conversations/new", new_conversation)
    app.router.add_static("/static/", STATIC_DIR)


async def close_sockets(app: web.Application) -> None:
    """On shutdown: close every chat socket so the browsers reconnect to the next gateway."""
    hub = app[HUB]
    for conversation in hub.conversations():
        await hub.close_all(conversation, 1001, "server shutdown")
