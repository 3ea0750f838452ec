"""Property-based fuzzing (hypothesis) of what the outside world can send: the web chat's
websocket frames and WeChat's pushes to /wechat.

Random and malicious input (huge, emoji, NUL, lone surrogates, HTML/script, SQL, deep nesting,
wrong types, binary frames, another conversation's ids in every field, XML bombs) must never
yield an HTTP 500, close a socket with an error, crash a handler (nothing logged at ERROR), or
store or deliver a message in another conversation. The parser is its own oracle: every frame it
accepts must be acknowledged and stored exactly as parsed, every frame it refuses answered with
its error code, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import create_app
from bot.conversation.frames import CLIENT_ID_PATTERN, MAX_MESSAGE_CHARS
from bot.db.conversations import Conversation, Message
from bot.db.engine import session_factory
from bot.db.handoffs import Handoff, Ticket
from bot.db.migrate import upgrade
from bot.settings import Settings, WechatConfig
from bot.webchat.protocol import (
    ProtocolError,
    RatingRequest,
    TicketRequest,
    Typing,
    UserMessage,
    parse_client_frame,
)
from bot.webchat.ratelimit import RateLimiter
from bot.webchat.routes import LIMITS
from tests.support.fake_wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    new_msg_id,
    new_openid,
    open_reply,
    sign,
    signature,
    xml_of,
)
from tests.support.running_stack import free_port

# Under /ws's 64 KiB frame limit; a bigger frame is closed with 1009 (its own test below).
MAX_FRAME_BYTES = 60_000
PROTOCOL_CODES = {"bad_json", "bad_frame", "too_long", "bad_rating"}
# Every text a user sees is Chinese; an English one is an exception's message leaking out.
CHINESE = re.compile("[\u4e00-\u9fff]")
# The integer column of handoffs.id (PostgreSQL int4).
INT4 = range(-(2**31), 2**31)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MALICIOUS = [
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="alert(1)">',
    "'; DROP TABLE messages; --",
    '" OR 1=1 --',
    "鄞州\x00区",
    "\x00",
    "😀👍🏽👨‍👩‍👧 商标",
    "\u202eevil\u202c",
    "\ufeff",
    "{{7*7}}${7*7}",
    "${jndi:ldap://127.0.0.1/x}",
    "../../../../etc/passwd",
    "\r\n\r\nHTTP/1.1 200 OK",
    "/request_human",
    "   ",
]
HUGE = ["字" * (MAX_MESSAGE_CHARS + 1), "x" * 20_000, "😀" * 3_000, "字" * MAX_MESSAGE_CHARS]
# Text frames that are not what a JSON encoder writes.
RAW_SPECIALS = [
    '{"type": "message", "id": "s1", "text": "x\\ud800"}',  # a lone surrogate
    '{"type": "message", "id": "s2", "text": "\\udfff", "payload": "/\\ud83d"}',
    '{"type": "message", "id": "s3", "text": "a\\u0000b"}',  # NUL: PostgreSQL refuses it
    '{"type": "ticket", "id": "s4", "phone": "13800000000", "text": "a\\u0000b"}',
    '{"type": "ticket", "id": "s5", "phone": "13800000000", "text": "\\ud800"}',
    '{"type": "rating", "handoff_id": 1, "score": 5, "comment": "\\ud800\\u0000"}',
    '{"type": "rating", "handoff_id": 1180591620717411303424, "score": 5}',
    '{"type": "rating", "handoff_id": -9223372036854775809, "score": 5}',
    '{"type": "message", "id": "s6", "text": "a", "text": "b"}',
    "1e999999",
    "NaN",
    '{"type": "message", "id": "s7", "text": 1e999999}',
    "\ufeff{}",
    "",
    "null",
]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
nesting = st.integers(1, 29_000).flatmap(
    lambda n: st.sampled_from(
        ["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, "[" * n, '{"a":[' * (n // 6)]
    )
)
raw_texts = st.one_of(
    st.text(max_size=200),
    st.sampled_from(MALICIOUS + RAW_SPECIALS),
    json_values.map(json.dumps),
    nesting,
)


@dataclass(frozen=True)
class Targets:
    """Another conversation's identifiers, to put into every field a client controls."""

    conversation: str = uuid.uuid4().hex
    client_ids: tuple[str, ...] = ("b-hello",)
    handoff_id: int = 1


def mostly(common: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """`common` four times in five: most frames should get through to storage."""
    return st.integers(0, 4).flatmap(lambda i: rare if i == 4 else common)


def message_frames(t: Targets) -> st.SearchStrategy[dict[str, Any]]:
    ids = mostly(
        st.from_regex(CLIENT_ID_PATTERN, fullmatch=True),
        st.one_of(
            st.sampled_from(
                [t.conversation, *t.client_ids, "a" * 64, "a" * 65, "id with space", "编号"]
            ),
            json_scalars,
        ),
    )
    texts = mostly(
        st.one_of(st.text(max_size=60), st.sampled_from(MALICIOUS + HUGE)),
        st.one_of(json_scalars, st.lists(st.text(max_size=3), max_size=3)),
    )
    payloads = mostly(
        st.none(),
        st.one_of(
            st.sampled_from(
                [
                    "/request_human",
                    '/inform{"district": "鄞州区"}',
                    "/",
                    "request_human",
                    "/" + "x" * 600,
                ]
            ),
            st.text(max_size=20),
            json_scalars,
        ),
    )
    kinds = mostly(st.sampled_from(["message"] * 6 + ["typing", "ticket", "rating"]), json_scalars)
    phones = st.one_of(
        st.sampled_from(
            ["13800000000", "138 0000 0000", "0574-87654321", "12345", "+8613800000000", "1" * 41]
        ),
        st.text(max_size=20),
        json_scalars,
    )
    extras = st.fixed_dictionaries(
        {},
        optional={
            # Fields a client might hope the server trusts: it must ignore every one of them.
            "conversation_id": st.just(t.conversation),
            "sender": st.just(t.conversation),
            "session": st.just(t.conversation),
            "on": json_scalars,
            "phone": phones,
            "handoff_id": st.one_of(st.just(t.handoff_id), st.integers()),
            "score": st.one_of(st.integers(-1, 6), json_scalars),
            "comment": texts,
        },
    )
    return st.builds(
        lambda kind, client_id, text, payload, extra: {
            "type": kind, "id": client_id, "text": text, "payload": payload, **extra,
        },
        kinds, ids, texts, payloads, extras,
    )  # fmt: skip


def client_frames(t: Targets) -> st.SearchStrategy[str | bytes]:
    encoded = st.tuples(message_frames(t), st.booleans()).map(
        lambda pair: json.dumps(pair[0], ensure_ascii=pair[1])
    )
    texts = mostly(encoded, raw_texts).filter(
        lambda raw: len(raw.encode("utf-8", "surrogatepass")) <= MAX_FRAME_BYTES
    )
    return mostly(texts, st.binary(max_size=100))


# ---- (a) the parser --------------------------------------------------------------------------


def check_parsed(raw: str) -> None:
    """The parser refuses with a ProtocolError, or returns something the server can store."""
    try:
        parsed = parse_client_frame(raw)
    except ProtocolError as exc:
        assert exc.code in PROTOCOL_CODES and exc.text
        assert exc.client_id is None or CLIENT_ID_PATTERN.match(exc.client_id)
        return
    strings: list[str] = []
    if isinstance(parsed, UserMessage):
        assert CLIENT_ID_PATTERN.match(parsed.client_id)
        assert 0 < len(parsed.text) <= MAX_MESSAGE_CHARS
        assert parsed.payload is None or parsed.payload.startswith("/")
        strings += [parsed.text, parsed.payload or ""]
    elif isinstance(parsed, TicketRequest):
        assert CLIENT_ID_PATTERN.match(parsed.client_id)
        strings += [parsed.phone, parsed.text]
    elif isinstance(parsed, RatingRequest):
        assert parsed.handoff_id in INT4, "an id the handoffs table cannot hold"
        strings.append(parsed.comment)
    else:
        assert parsed is None or isinstance(parsed, Typing)
    for value in strings:
        # What is accepted is stored: UTF-8 (no lone surrogates), and no NUL (PostgreSQL).
        value.encode("utf-8")
        assert "\x00" not in value, "PostgreSQL cannot store NUL"


@settings(max_examples=400, deadline=None)
@given(raw_texts)
def test_the_parser_raises_only_protocol_errors_on_any_text(raw: str) -> None:
    check_parsed(raw)


@settings(max_examples=400, deadline=None)
@given(st.one_of(json_values, message_frames(Targets())), st.booleans())
def test_the_parser_raises_only_protocol_errors_on_any_json(value: Any, ascii_only: bool) -> None:
    check_parsed(json.dumps(value, ensure_ascii=ascii_only))


@pytest.mark.parametrize(
    "raw",
    ["[" * 5_000, '{"a":' * 5_000, "[" * 30_000 + "]" * 30_000],
    ids=["arrays", "objects", "balanced"],
)
def test_deeply_nested_json_is_bad_json(raw: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(raw)
    assert refused.value.code == "bad_json"


# ---- (b) the websocket -----------------------------------------------------------------------


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing failed inside the gateway (aiohttp logs a crashed handler as ERROR)."""
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.clear()
    assert not errors, [f"{r.name}: {r.getMessage()} {r.exc_text or ''}"[:600] for r in errors]


@dataclass
class Browser:
    """One browser: its own cookie jar (so its own conversation) and one socket."""

    base: str
    http: aiohttp.ClientSession = field(init=False)
    ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> Browser:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.get(self.base + "/") as page:
            assert page.status == 200
        await self.connect()
        return self

    async def connect(self) -> dict[str, Any]:
        self.ws = await self.http.ws_connect(self.base + "/ws")
        history = await self.ws.receive_json(timeout=5)
        assert history["type"] == "history"
        return history

    async def send(self, frame: str | bytes | dict[str, Any]) -> None:
        assert self.ws is not None
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))

    async def until(self, done: Any, timeout: float = 10) -> list[dict[str, Any]]:
        """Frames up to and including the first one `done` accepts; fails if the socket closes."""
        assert self.ws is not None
        frames = []
        while True:
            message = await self.ws.receive(timeout=timeout)
            assert message.type == WSMsgType.TEXT, (
                f"socket ended: {message.type.name}, close code {self.ws.close_code}"
            )
            frames.append(json.loads(message.data))
            if done(frames[-1]):
                return frames

    async def assert_silent(self, seconds: float) -> None:
        assert self.ws is not None
        try:
            message = await self.ws.receive(timeout=seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"received {message.type.name} {message.data!r}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


@dataclass
class Chat:
    database_url: str
    a: Browser  # the attacker, sending fuzz
    b: Browser  # a bystander whose conversation must stay untouched
    a_conversation: str
    targets: Targets
    b_messages: list[tuple[int, str, str]]


def messages_of(database_url: str, conversation: str) -> list[tuple[int, str, str]]:
    with session_factory(database_url)() as session:
        rows = session.execute(
            select(Message).where(Message.conversation_id == conversation).order_by(Message.id)
        ).scalars()
        return [(m.id, m.role, m.text) for m in rows]


def conversation_of_client_id(database_url: str, client_id: str) -> str:
    with session_factory(database_url)() as session:
        return session.execute(
            select(Message.conversation_id).where(Message.client_message_id == client_id)
        ).scalar_one()


@pytest.fixture()
async def chat(
    database_url: str, tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Chat]:
    settings_ = Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_port=free_port(),  # nothing listens: Rasa is down, the gateway says "busy"
        action_port=free_port(),
        rasa_auth_token="fuzz-token",
        session_secret="fuzz-session-secret",
        rasa_timeout=1,
        chat_rate_limit=1_000_000,  # the fuzz is not a flood
        address_new_conversations=1_000_000,  # (the handshake fuzz makes thousands)
        address_tickets=1_000_000,
        handoff_hours="always",
    )
    app = create_app(settings_)
    app[LIMITS].forms = RateLimiter(1_000_000, 60.0)  # ticket and rating frames
    client: TestClient = await aiohttp_client(app)
    base = str(client.make_url("")).rstrip("/")
    a, b = await Browser(base).open(), await Browser(base).open()
    # B: a message, then "转人工" (Rasa is down, so the gateway opens the handoff itself).
    await b.send({"type": "message", "id": "b-hello", "text": "我是B"})
    await b.until(lambda f: f == {"type": "typing", "on": False})
    await b.send(
        {"type": "message", "id": "b-human", "text": "转人工", "payload": "/request_human"}
    )
    await b.until(lambda f: f.get("type") == "handoff")
    await b.until(lambda f: f == {"type": "typing", "on": False})
    await a.send({"type": "message", "id": "a-hello", "text": "我是A"})
    await a.until(lambda f: f == {"type": "typing", "on": False})
    # A too finds nobody online: an offline handoff, after which A's tickets are stored.
    await a.send(
        {"type": "message", "id": "a-human", "text": "转人工", "payload": "/request_human"}
    )
    await a.until(lambda f: f.get("type") == "handoff")
    await a.until(lambda f: f == {"type": "typing", "on": False})
    b_conversation = conversation_of_client_id(database_url, "b-hello")
    with session_factory(database_url)() as session:
        handoff_id = session.execute(
            select(Handoff.id).where(Handoff.conversation_id == b_conversation)
        ).scalar_one()
    targets = Targets(b_conversation, ("b-hello", "b-human"), handoff_id)
    chat = Chat(
        database_url,
        a,
        b,
        conversation_of_client_id(database_url, "a-hello"),
        targets,
        messages_of(database_url, b_conversation),
    )
    assert [role for _, role, _ in chat.b_messages] == ["user", "user", "system"]
    caplog.set_level(logging.WARNING)
    caplog.clear()
    try:
        yield chat
        await b.assert_silent(0.3)  # nothing of A's answers, even late ones, reached B
        assert messages_of(database_url, b_conversation) == chat.b_messages
        no_errors_logged(caplog)  # nor did a late answer fail
    finally:
        await a.close()
        await b.close()


def expectation(frame: str | bytes) -> tuple[str, Any]:
    """What the server must answer to one frame, according to the parser."""
    if isinstance(frame, bytes):
        return ("error", ("bad_frame", None))
    try:
        parsed = parse_client_frame(frame)
    except ProtocolError as exc:
        return ("error", (exc.code, exc.client_id))
    except RecursionError:  # the parser's own bug, asserted above: the server must refuse it
        return ("error", ("bad_json", None))
    if parsed is None or isinstance(parsed, Typing):
        return ("nothing", None)
    return (type(parsed).__name__, parsed)


def answers(expected: tuple[str, Any], got: dict[str, Any]) -> bool:
    kind, detail = expected
    if kind == "error":
        code, client_id = detail
        return got["type"] == "error" and got["code"] == code and got.get("client_id") == client_id
    if kind == "UserMessage":
        return got["type"] == "ack" and got["client_id"] == detail.client_id
    if kind == "TicketRequest":
        return got.get("client_id") == detail.client_id and (
            got["type"] == "ticket_saved"
            or (got["type"] == "error" and got["code"] in ("bad_phone", "bad_ticket"))
        )
    assert kind == "RatingRequest"
    # Nothing in A's conversation is closed: every rating is refused, B's handoff included.
    return got["type"] == "error" and got["code"] == "bad_rating"


def direct_answer(frame: dict[str, Any]) -> bool:
    """A frame answering one client frame (not the bot's answer, which comes later)."""
    if frame["type"] in ("ack", "ticket_saved", "rating_saved"):
        return True
    return frame["type"] == "error" and frame["code"] not in ("busy", "no_answer")


async def fuzz_once(chat: Chat, frames: list[str | bytes], caplog: pytest.LogCaptureFixture) -> int:
    """Send `frames` from A and check every promise; returns how many messages were stored."""
    a = chat.a
    if a.ws is None or a.ws.closed:  # a failed example closed it: start this one fresh
        caplog.clear()  # that example's failure is reported already
        await a.connect()
    expected = [e for e in map(expectation, frames) if e[0] != "nothing"]
    for frame in frames:
        await a.send(frame)
    sentinel = uuid.uuid4().hex  # refused with its id: everything before it has been answered
    await a.send({"type": "message", "id": sentinel, "text": 0})
    received = await a.until(lambda f: f["type"] == "error" and f.get("client_id") == sentinel)
    got = [f for f in received[:-1] if direct_answer(f)]
    assert not [f for f in got if f.get("code") == "not_stored"], (
        "the database is healthy: a not_stored answer makes the page resend that frame forever",
        frames,
    )
    assert len(got) == len(expected), (expected, got)
    leaked = [f for f in received if f["type"] == "error" and not CHINESE.search(f["text"])]
    assert not leaked, ("an internal error message reached the user", leaked)
    for want, answer in zip(expected, got, strict=True):
        assert answers(want, answer), (want, answer)

    acks = [
        (want[1], answer)
        for want, answer in zip(expected, got, strict=True)
        if answer["type"] == "ack"
    ]
    with session_factory(chat.database_url)() as session:
        conversations = set(session.execute(select(Conversation.id)).scalars())
        assert conversations == {chat.a_conversation, chat.targets.conversation}
        for parsed, ack in acks:
            stored = session.get(Message, ack["id"])
            assert stored is not None and stored.conversation_id == chat.a_conversation
            assert (stored.role, stored.client_message_id) == ("user", parsed.client_id)
            if not ack["duplicate"]:  # stored exactly as parsed: HTML, SQL … are just text
                assert (stored.text, stored.payload) == (parsed.text, parsed.payload)
        tickets = set(session.execute(select(Ticket.conversation_id)).scalars())
        assert tickets <= {chat.a_conversation}
        handoff = session.get(Handoff, chat.targets.handoff_id)
        assert handoff is not None and handoff.rating is None
    assert messages_of(chat.database_url, chat.targets.conversation) == chat.b_messages
    await chat.b.assert_silent(0.01)
    no_errors_logged(caplog)
    return len(acks)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@FUZZ
@given(data=st.data())
async def test_websocket_fuzz_sqlite(chat: Chat, caplog: pytest.LogCaptureFixture, data) -> None:
    frames = data.draw(st.lists(client_frames(chat.targets), min_size=1, max_size=4))
    stored = await fuzz_once(chat, frames, caplog)
    event(f"{stored} stored of {len(frames)} frames")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@settings(FUZZ, max_examples=60)
@given(data=st.data())
async def test_websocket_fuzz_postgresql(
    chat: Chat, caplog: pytest.LogCaptureFixture, data
) -> None:
    frames = data.draw(st.lists(client_frames(chat.targets), min_size=1, max_size=4))
    stored = await fuzz_once(chat, frames, caplog)
    event(f"{stored} stored of {len(frames)} frames")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize(
    "raw", [*RAW_SPECIALS[:8], "[" * 20_000], ids=[*(f"special{i}" for i in range(8)), "nested"]
)
async def test_hostile_frames_each(chat: Chat, caplog: pytest.LogCaptureFixture, raw: str) -> None:
    """The known-hostile frames one by one, on both databases (the fuzz may not draw them)."""
    await fuzz_once(chat, [raw], caplog)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_frame_over_the_limit_closes_only_that_socket(chat: Chat) -> None:
    """Over 64 KiB the socket is closed with 1009 (message too big), the documented limit of
    aiohttp's reader; nothing is stored, and the page reconnects to its whole history."""
    await chat.a.send(json.dumps({"type": "message", "id": "big", "text": "x" * 70_000}))
    message = await chat.a.ws.receive(timeout=5)  # type: ignore[union-attr]
    assert message.type == WSMsgType.CLOSE and message.data == 1009
    history = await chat.a.connect()
    assert [m.get("client_id") for m in history["messages"] if m["type"] == "user"] == [
        "a-hello",
        "a-human",
    ]


ORIGINS = ["null", "http://evil.example", "file://", "http://[", "https://[::1"]
# aiohttp's client refuses CR and LF in a header (header injection) before anything is sent.
HEADER_CHARACTERS = st.characters(exclude_characters="\r\n")
COOKIE_CHARACTERS = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=';,"\\')


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(FUZZ, max_examples=60)
@given(
    origin=st.one_of(st.none(), st.text(HEADER_CHARACTERS, max_size=40), st.sampled_from(ORIGINS)),
    cookie=st.one_of(st.none(), st.text(alphabet=COOKIE_CHARACTERS, max_size=300)),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3),
)
async def test_websocket_handshake_fuzz(
    chat: Chat,
    caplog: pytest.LogCaptureFixture,
    origin: str | None,
    cookie: str | None,
    query: dict[str, str],
) -> None:
    """Any Origin, a forged or garbage session cookie, any query: 101 or a refusal, never 500;
    a forged cookie never lands in another conversation."""
    headers = {} if origin is None else {"Origin": origin}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        if cookie is not None:
            http.cookie_jar.update_cookies({"ipbot_session": cookie})
        try:
            ws = await http.ws_connect(chat.a.base + "/ws", headers=headers, params=query)
        except aiohttp.WSServerHandshakeError as exc:
            # 403: a foreign Origin; 400: aiohttp's HTTP parser refusing a control character
            assert exc.status in (400, 403), exc
            history = None
        else:
            history = await ws.receive_json(timeout=5)
            await ws.close()
    if history is not None:
        assert history["type"] == "history" and history["messages"] == []  # a new conversation
    # aiohttp's parser logs the requests it refuses (400) at ERROR; anything else is a crash.
    caplog.records[:] = [r for r in caplog.records if not is_bad_http(r)]
    no_errors_logged(caplog)


def is_bad_http(record: logging.LogRecord) -> bool:
    return record.exc_info is not None and type(record.exc_info[1]).__name__ == "BadHttpMessage"


MALFORMED_ORIGINS = ["http://[", "https://[::1", "http://]x["]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("origin", MALFORMED_ORIGINS)
async def test_a_malformed_origin_is_refused_not_a_500(
    chat: Chat, caplog: pytest.LogCaptureFixture, origin: str
) -> None:
    """urlsplit() raises on these; the origin checks must refuse them (403), not crash (500)."""
    http = chat.a.http
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(chat.a.base + "/ws", headers={"Origin": origin})
    statuses = [refused.value.status]
    headers = {"Origin": origin, "X-Requested-With": "ipbot"}
    async with http.post(chat.a.base + "/conversations/new", headers=headers) as response:
        statuses.append(response.status)
    # The staff login form checks the Origin once its CSRF token matches.
    async with http.get(chat.a.base + "/staff/login") as page:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert csrf is not None
    form = {"csrf_token": csrf.group(1), "username": "nobody", "password": "x" * 12}
    async with http.post(chat.a.base + "/staff/login", data=form, headers=headers) as response:
        statuses.append(response.status)
    assert statuses == [403, 403, 403]
    no_errors_logged(caplog)


# ---- (c) /wechat -----------------------------------------------------------------------------

FIELDS = [
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event",
    "EventKey", "Encrypt", "Location_X", "Location_Y", "Scale", "Label", "Latitude",
    "Longitude", "Precision", "Recognition", "MediaId", "PicUrl",
]  # fmt: skip
FIELD_VALUES = [
    "text", "event", "location", "voice", "image", "subscribe", "unsubscribe", "CLICK",
    "LOCATION", "]]>", "<![CDATA[", "&amp;", "&#0;", "&#xD800;", "/request_human",
    "留言 13800000000 你好", "1", "2", "-1", "1e400", "nan", "",
]  # fmt: skip
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "]>"
)
XXE = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
QUADRATIC = '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY q "' + "q" * 50_000 + '">]>'


def bomb(prolog: str, entity: str, openid: str) -> str:
    return (
        f"{prolog}<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>text</MsgType>"
        f"<Content>{entity}</Content><MsgId>{new_msg_id()}</MsgId></xml>"
    )


@dataclass
class Wechat:
    client: TestClient
    database_url: str

    def last_message_id(self) -> int:
        with session_factory(self.database_url)() as session:
            return max(session.execute(select(Message.id)).scalars(), default=0)

    def conversations_after(self, message_id: int) -> set[str]:
        with session_factory(self.database_url)() as session:
            rows = session.execute(select(Message).where(Message.id > message_id)).scalars()
            return {m.conversation_id for m in rows}


@pytest.fixture()
async def wechat(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Wechat]:
    database_url = f"sqlite:///{tmp_path / 'wechat.db'}"
    upgrade(database_url)
    settings_ = Settings(
        var_dir=tmp_path,
        database_url=database_url,
        rasa_port=free_port(),
        action_port=free_port(),
        rasa_auth_token="fuzz-token",
        session_secret="fuzz-session-secret",
        rasa_timeout=1,
        handoff_hours="always",
        wechat=WechatConfig(
            token=TOKEN,
            app_id=APP_ID,
            app_secret=APP_SECRET,
            aes_key=AES_KEY,
            api_base=f"http://127.0.0.1:{free_port()}",  # nothing leaves the machine
            reply_timeout=1,
        ),
    )
    yield Wechat(await aiohttp_client(create_app(settings_)), database_url)


async def post(wechat: Wechat, params: dict[str, str], body: bytes) -> tuple[int, str]:
    response = await wechat.client.post("/wechat", params=params, data=body)
    return response.status, await response.text()


queries = st.dictionaries(
    st.sampled_from(["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "openid"])
    | st.text(max_size=8),
    st.text(max_size=50),
    max_size=6,
)
field_values = st.one_of(st.sampled_from(FIELD_VALUES), st.text(max_size=40), st.integers())
fields = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=8)
few_fields = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=2)
# Mostly messages wechatpy recognises, with random content and random extra fields.
messages = st.tuples(
    st.fixed_dictionaries(
        {
            "MsgType": st.sampled_from(["text"] * 4 + ["event", "location", "voice", "image"]),
            "Content": st.one_of(st.text(max_size=60), st.sampled_from(MALICIOUS + HUGE)),
            "MsgId": st.one_of(st.integers(0, 2**63), st.builds(new_msg_id)),
            "Event": st.sampled_from(["subscribe", "unsubscribe", "CLICK", "LOCATION", "VIEW"]),
        }
    ),
    few_fields,
).map(lambda pair: {**pair[0], **pair[1]})
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.tuples(fields, st.sampled_from([new_openid(), "", "x" * 200, "o<>&"])).map(
        lambda pair: xml_of(pair[0], pair[1]).encode()
    ),
)


@settings(FUZZ, max_examples=200)
@given(query=queries, body=bodies)
async def test_wechat_bad_signatures_are_refused_and_store_nothing(
    wechat: Wechat, caplog: pytest.LogCaptureFixture, query: dict[str, str], body: bytes
) -> None:
    before = wechat.last_message_id()
    status, _ = await post(wechat, query, body)
    assert status == 403  # no valid signature: refused before the body is read as XML
    assert wechat.last_message_id() == before
    no_errors_logged(caplog)


@settings(FUZZ, max_examples=200)
@given(
    mode=st.sampled_from(["plaintext", "compatible", "safe"]),
    content=st.one_of(messages, messages, fields),
    openid=st.one_of(st.just(new_openid()), st.builds(new_openid), st.text(max_size=40)),
    garbage=st.one_of(st.none(), st.none(), st.none(), bodies),
    tamper=st.sampled_from([None] * 5 + ["msg_signature", "encrypt_type", "timestamp"]),
)
async def test_wechat_signed_pushes_of_anything_never_fail(
    wechat: Wechat,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    content: dict[str, Any],
    openid: str,
    garbage: bytes | None,
    tamper: str | None,
) -> None:
    """Valid signatures (and encrypted envelopes) around random content, or around garbage:
    200 with a well-formed reply, 400 or 403, never 500; messages only in the sender's
    conversation; a refusal stores nothing."""
    xml = xml_of(content, openid)
    signed = sign(xml, mode)
    params, body = dict(signed.params), garbage if garbage is not None else signed.body
    if tamper == "msg_signature" and mode != "plaintext":
        params["msg_signature"] = "0" * 40
    elif tamper == "encrypt_type":
        params["encrypt_type"] = "aes" if mode == "plaintext" else "raw"
    elif tamper == "timestamp":
        params["timestamp"] += "1"  # the signature no longer matches
    before = wechat.last_message_id()
    started = time.monotonic()
    status, text = await post(wechat, params, body)
    assert status in (200, 400, 403), (status, text)
    event(f"status {status}")
    assert time.monotonic() - started < 3
    if tamper == "timestamp":
        assert status == 403
    if status != 200:
        assert wechat.last_message_id() == before
    else:
        reply = open_reply(text, params)  # "success", or a reply WeChat can read
        assert reply is None or reply["MsgType"] == "text"
        sender = str(content.get("FromUserName", openid))
        assert wechat.conversations_after(before) <= {"wx-" + sender}
    no_errors_logged(caplog)


@settings(FUZZ, max_examples=100)
@given(query=queries, echostr=st.text(min_size=1, max_size=30), valid=st.booleans())
async def test_wechat_server_check_fuzz(
    wechat: Wechat,
    caplog: pytest.LogCaptureFixture,
    query: dict[str, str],
    echostr: str,
    valid: bool,
) -> None:
    if valid:
        query = {**query, "timestamp": "1700000000", "nonce": "n0nce", "echostr": echostr}
        query["signature"] = signature(TOKEN, "1700000000", "n0nce")
    response = await wechat.client.get("/wechat", params=query)
    assert response.status in (200, 400, 403)
    if response.status == 200:
        assert valid and await response.text() == echostr
    elif valid:
        pytest.fail(f"a valid check refused: {response.status}")
    no_errors_logged(caplog)


@pytest.mark.parametrize(
    ("prolog", "entity"),
    [(BILLION_LAUGHS, "&i;"), (QUADRATIC, "&q;" * 2_000), (XXE, "&x;")],
    ids=["billion-laughs", "quadratic-blowup", "external-entity"],
)
@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_wechat_xml_bombs_are_not_expanded(
    wechat: Wechat, caplog: pytest.LogCaptureFixture, prolog: str, entity: str, mode: str
) -> None:
    openid = new_openid()
    signed = sign(bomb(prolog, entity, openid), mode)
    before = wechat.last_message_id()
    started = time.monotonic()
    status, text = await post(wechat, signed.params, signed.body)
    assert time.monotonic() - started < 2
    # With an AES key configured, a plaintext push is refused before its body is parsed (403);
    # the encrypted one reaches the XML parser, which must not expand the entities.
    assert status in ((200, 400) if mode == "safe" else (403,))
    reply = open_reply(text, signed.params) if status == 200 else None
    shown = "" if reply is None else reply["Content"]
    assert not any(leak in shown for leak in ("root:", "aaaa", "qqqq")), shown[:200]
    with session_factory(wechat.database_url)() as session:
        stored = session.execute(select(Message.text).where(Message.id > before)).scalars().all()
    assert all(len(t) <= MAX_MESSAGE_CHARS and "root:" not in t and "aaaa" not in t for t in stored)
    no_errors_logged(caplog)
