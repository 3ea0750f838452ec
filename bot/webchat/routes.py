"""GET / (the chat page), GET /ws (its websocket) and POST /conversations/new ("新对话")."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from aiohttp_session import STORAGE_KEY, get_session

from bot.conversation.channel import StoreFailed
from bot.conversation.frames import error_frame, message_frame, welcome_frame
from bot.conversation.handoff import TICKET_TEXT, PhoneRefused
from bot.conversation.pipeline import Pipeline
from bot.db.review import FeedbackRefused
from bot.web.client_address import client_address, parse_networks
from bot.web.keys import BUS, PIPELINE, SETTINGS
from bot.web.origin import origin_allowed
from bot.webchat.channel import WebChatChannel
from bot.webchat.hub import Hub
from bot.webchat.limits import WebChatLimits
from bot.webchat.protocol import (
    ConversationRating,
    FeedbackRequest,
    ProtocolError,
    RatingRequest,
    TicketRequest,
    Typing,
    ack_frame,
    parse_client_frame,
)
from bot.webchat.ratelimit import RateLimiter

logger = logging.getLogger(__name__)
STATIC_DIR = __file__.rsplit("/", 1)[0] + "/static"
NOT_STORED_TEXT = "消息暂时没有发出，稍后会自动重发。"
RETRY_NOT_STORED_SECONDS = 3.0
TICKET_NOT_STORED = "留言暂时没有保存成功，请稍后再提交。"
RATING_NOT_STORED = "评价暂时没有保存成功，请稍后再提交。"
TOO_MANY_CONVERSATIONS = "新对话过于频繁，请稍后再试。"
TOO_MANY_TICKETS = "留言提交过于频繁，请稍后再试。"
TOO_MANY_FRAMES = "操作过于频繁，请稍后再试。"
FEEDBACK_NOT_STORED = "反馈暂时没有保存成功，请稍后再试。"
# Close code telling a tab that its browser started a new conversation (it reconnects at once).
CLOSE_NEW_CONVERSATION = 4001
# The header a same-origin fetch() adds; a cross-site form or link cannot send it.
CSRF_HEADER = "X-Requested-With"

HUB = web.AppKey("webchat_hub", Hub)
LIMITER = web.AppKey("webchat_limiter", RateLimiter)  # chat messages per conversation
LIMITS = web.AppKey("webchat_limits", WebChatLimits)


def new_conversation_id(request: web.Request) -> str:
    """A fresh conversation id, counted against the client's address (429 past the limit)."""
    retry_after = request.app[LIMITS].new_conversations.retry_after(client_address(request))
    if retry_after is not None:
        raise web.HTTPTooManyRequests(
            text=TOO_MANY_CONVERSATIONS, headers={"Retry-After": str(max(1, round(retry_after)))}
        )
    return uuid.uuid4().hex


async def conversation_id(request: web.Request) -> str:
    """The conversation of this browser, assigned by the gateway and kept in its session cookie.

    Clients never choose it, so nobody can read or write another conversation.
    """
    session = await get_session(request)
    if "conversation_id" not in session:
        session["conversation_id"] = new_conversation_id(request)
    return session["conversation_id"]


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
    session["conversation_id"] = new_conversation_id(request)
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
    address = client_address(request)
    request.app[LIMITS].remember(conversation, address)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    session = await get_session(request)
    if session.new:  # aiohttp-session does not save into websocket responses by itself
        await request[STORAGE_KEY].save_session(request, ws, session)
    await ws.prepare(request)
    app = request.app
    hub = app[HUB]
    hub.add(conversation, ws)
    try:
        await send_history(app, conversation, ws)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await receive(app, conversation, ws, msg.data, address)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_json(error_frame("bad_frame", "不支持的消息类型。"))
    finally:
        hub.discard(conversation, ws)
    code = hub.requested_close_code(ws)
    if code is not None:
        await ws.close(code=code)
    return ws


async def send_history(app: web.Application, conversation: str, ws: web.WebSocketResponse) -> None:
    pipeline = app[PIPELINE]
    try:
        messages = await pipeline.store.history(conversation)
        handoff = await pipeline.desk.state_frame(conversation)
        rating = await pipeline.ratings.pending_frame(conversation) if messages else None
    except Exception:  # the page still works; it just starts empty
        logger.exception("could not read the history of %s", conversation)
        messages, handoff, rating = [], {"type": "handoff", "state": "none"}, None
    frame: dict[str, Any] = {"type": "history", "messages": messages, "handoff": handoff}
    if rating is not None:
        frame["rating_request"] = rating
    if not messages:
        frame["welcome"] = welcome_frame()
    await ws.send_json(frame)


async def receive(
    app: web.Application,
    conversation: str,
    ws: web.WebSocketResponse,
    raw: str,
    address: str = "",
) -> None:
    """One client frame: check it, then store, acknowledge and queue a message for its answer.
    Every kind of frame has its limit (bot/webchat/limits.py)."""
    try:
        frame = parse_client_frame(raw)
    except ProtocolError as exc:
        await ws.send_json(error_frame(exc.code, exc.text, client_id=exc.client_id))
        return
    pipeline = app[PIPELINE]
    limits = app[LIMITS]
    if frame is None:
        return
    if isinstance(frame, Typing):
        if limits.typing.retry_after(conversation) is None:  # else dropped: only an indicator
            await pipeline.user_typing(conversation, frame.on)
        return
    if isinstance(frame, TicketRequest | RatingRequest | ConversationRating | FeedbackRequest):
        client_id = frame.client_id if isinstance(frame, TicketRequest) else None
        retry_after = limits.forms.retry_after(conversation)
        if retry_after is None and isinstance(frame, TicketRequest):
            retry_after = limits.tickets.peek(address)
        if retry_after is not None:
            text = TOO_MANY_TICKETS if isinstance(frame, TicketRequest) else TOO_MANY_FRAMES
            await ws.send_json(
                error_frame("rate_limited", text, client_id=client_id, retry_after=retry_after)
            )
            return
        if isinstance(frame, TicketRequest):
            if await leave_ticket(pipeline, conversation, ws, frame):
                limits.tickets.record(address)
        elif isinstance(frame, FeedbackRequest):
            await give_feedback(pipeline, conversation, ws, frame)
        else:
            await rate(pipeline, conversation, ws, frame)
        return
    message = frame
    retry_after = app[LIMITER].retry_after(conversation)
    if retry_after is not None:
        text = f"您发送得太快了，请{max(1, round(retry_after))}秒后再发。"
        await ws.send_json(
            error_frame("rate_limited", text, client_id=message.client_id, retry_after=retry_after)
        )
        return
    try:
        received = await pipeline.receive(
            conversation, WebChatChannel.name, message.client_id, message.text, message.payload
        )
    except StoreFailed:  # not stored means not acknowledged: the client sends it again later
        await ws.send_json(
            error_frame(
                "not_stored",
                NOT_STORED_TEXT,
                client_id=message.client_id,
                retry_after=RETRY_NOT_STORED_SECONDS,
            )
        )
        return
    await ws.send_json(
        ack_frame(message.client_id, received.message_id, received.created_at, received.duplicate)
    )
    if received.duplicate:
        return  # stored and answered the first time it arrived
    user_frame = message_frame(
        "user",
        received.message_id,
        received.created_at,
        message.text,
        {"payload": message.payload} if message.payload else None,
        client_id=message.client_id,
    )
    await app[HUB].send(conversation, user_frame, exclude=ws)  # the browser's other tabs


async def leave_ticket(
    pipeline: Pipeline, conversation: str, ws: web.WebSocketResponse, frame: TicketRequest
) -> bool:
    """Store the ticket (only after an offline handoff, once per client id); True when stored."""
    try:
        ticket_id = await pipeline.leave_ticket(
            conversation, frame.phone, frame.text, client_id=frame.client_id, require_offline=True
        )
    except ValueError as exc:
        code = "bad_phone" if isinstance(exc, PhoneRefused) else "bad_ticket"
        await ws.send_json(error_frame(code, str(exc), client_id=frame.client_id))
        return False
    except Exception:
        logger.exception("could not store a ticket of %s", conversation)
        await ws.send_json(error_frame("not_stored", TICKET_NOT_STORED, client_id=frame.client_id))
        return False
    await ws.send_json(
        {
            "type": "ticket_saved",
            "client_id": frame.client_id,
            "ticket_id": ticket_id,
            "text": TICKET_TEXT.format(id=ticket_id),
        }
    )
    return True


async def rate(
    pipeline: Pipeline,
    conversation: str,
    ws: web.WebSocketResponse,
    frame: RatingRequest | ConversationRating,
) -> None:
    try:
        if isinstance(frame, ConversationRating):
            await pipeline.rate_conversation(conversation, frame.score, frame.comment)
        else:
            await pipeline.rate(conversation, frame.handoff_id, frame.score, frame.comment)
    except ValueError as exc:
        await ws.send_json(error_frame("bad_rating", str(exc)))
        return
    except Exception:
        logger.exception("could not store a rating of %s", conversation)
        await ws.send_json(error_frame("not_stored", RATING_NOT_STORED))
        return
    if isinstance(frame, ConversationRating):
        await ws.send_json({"type": "rating_saved", "scope": "conversation"})
    else:
        await ws.send_json({"type": "rating_saved", "handoff_id": frame.handoff_id})


async def give_feedback(
    pipeline: Pipeline, conversation: str, ws: web.WebSocketResponse, frame: FeedbackRequest
) -> None:
    """👍/👎 on a bot message of this conversation; stored with the message."""
    try:
        await pipeline.store.set_feedback(conversation, frame.message_id, frame.value, frame.reason)
    except FeedbackRefused as exc:
        await ws.send_json(error_frame("bad_feedback", str(exc)))
        return
    except Exception:
        logger.exception("could not store feedback of %s", conversation)
        await ws.send_json(error_frame("feedback_not_stored", FEEDBACK_NOT_STORED))
        return
    await ws.send_json(
        {
            "type": "feedback_saved",
            "message_id": frame.message_id,
            "value": frame.value,
            "reason": frame.reason,
        }
    )


def setup_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[HUB] = Hub()
    app[LIMITER] = RateLimiter(settings.chat_rate_limit, settings.chat_rate_window)
    app[LIMITS] = WebChatLimits(settings)
    parse_networks(settings.trusted_proxies)  # a bad TRUSTED_PROXIES stops the start, named
    app.on_startup.append(register_channel)  # type: ignore[arg-type]  # aiohttp 3.9 mistypes Signal
    app.on_shutdown.append(close_sockets)  # type: ignore[arg-type]  # aiohttp 3.9 mistypes Signal
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/conversations/new", new_conversation)
    app.router.add_static("/static/", STATIC_DIR)


async def register_channel(app: web.Application) -> None:
    app[PIPELINE].register_channel(WebChatChannel(app[HUB], app[BUS]))
    app[PIPELINE].desk.admit_new_handoff = app[LIMITS].admit_handoff


async def close_sockets(app: web.Application) -> None:
    """On shutdown: close every chat socket so the browsers reconnect to the next gateway."""
    hub = app[HUB]
    for conversation in hub.conversations():
        await hub.close_all(conversation, 1001, "server shutdown")
