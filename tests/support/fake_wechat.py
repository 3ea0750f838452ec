"""WeChat's side, for tests: pushes built the way WeChat's servers build them (signatures and
encrypted bodies made with wechatpy's own functions), and a local stand-in for its HTTP API.

The API fake (api.weixin.qq.com) runs its own event loop in a thread, so the gateway process and
in-process tests can both use it, whatever pytest's loop does. It issues access tokens (with a
lifetime the test chooses), can expire all of them at once, records every customer-service send,
and can be told to refuse sends with an error code (e.g. 45015: the 48-hour window has passed).

With `enforce_quotas` it counts customer-service messages as WeChat does since June 2023: after
a user's message 5 within 48 hours, after a follow, a menu click or a scan 3 within one minute
(not added up: the larger count and the later end), answering 45047 when they are spent and
45015 when no window is open. Tests tell it what the user did with `saw_push(xml)`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from tests.support.running_stack import free_port

APP_ID = "wx0123456789abcdef"
APP_SECRET = "fake-app-secret-0123456789abcdef"


# ---- pushes -----------------------------------------------------------------------------------

TOKEN = "test-wechat-token"
AES_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode().rstrip("=")
ACCOUNT = "gh_ipbot_test"  # the Official Account's own id (ToUserName)
_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def new_openid() -> str:
    """A fresh user: OpenIDs look like "o6_bmjrPTlm6_2sgVt7hMZOPfL2M" (28 characters)."""
    return "o" + uuid.uuid4().hex[:27]


def new_msg_id() -> int:
    return next(_msg_ids)


def signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def text_xml(openid: str, content: str, msg_id: int | None = None) -> str:
    return xml_of({"MsgType": "text", "Content": content, "MsgId": msg_id or new_msg_id()}, openid)


def xml_of(fields: dict[str, Any], openid: str, created: int | None = None) -> str:
    """A pushed message: ToUserName, FromUserName, CreateTime, then `fields`."""
    body = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": created or int(time.time()),
    }
    body.update(fields)
    parts = [
        f"<{k}>{v}</{k}>" if isinstance(v, (int, float)) else f"<{k}><![CDATA[{v}]]></{k}>"
        for k, v in body.items()
    ]
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass(frozen=True)
class Signed:
    params: dict[str, str]
    body: bytes


def sign(
    xml: str,
    mode: str = "plaintext",
    token: str = TOKEN,
    aes_key: str = AES_KEY,
    app_id: str = APP_ID,
    timestamp: str | None = None,
) -> Signed:
    """Query and body of one push in `mode`: plaintext, compatible or safe (signed now, with a
    fresh nonce, unless `timestamp` is given)."""
    timestamp, nonce = timestamp or str(int(time.time())), os.urandom(5).hex()
    params = {
        "signature": signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    if mode == "plaintext":
        return Signed(params, xml.encode())
    crypto = WeChatCrypto(token, aes_key, app_id)
    sealed = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]
    params |= {"encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]}
    if mode == "safe":
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        body += f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
        return Signed(params, body.encode())
    assert mode == "compatible"  # the plain fields and <Encrypt> side by side
    return Signed(
        params,
        xml.replace("</xml>", f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>").encode(),
    )


def open_reply(body: str, params: dict[str, str], token: str = TOKEN) -> dict[str, Any] | None:
    """The passive reply as WeChat reads it: None for "success", else its fields (decrypted and
    its msg_signature checked when the request was encrypted)."""
    if body in ("success", ""):
        return None
    if params.get("encrypt_type") == "aes":
        sealed = xmltodict.parse(body)["xml"]
        crypto = WeChatCrypto(token, AES_KEY, APP_ID)
        body = crypto.decrypt_message(
            body, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
        )
    reply = xmltodict.parse(body)["xml"]
    parse_message(body)  # well-formed for wechatpy too
    return reply


# ---- the API ------------------------------------------------------------------------------------


@dataclass
class Sent:
    touser: str
    msgtype: str
    content: str
    token: str


# Events after which WeChat allows a few customer-service messages.
ALLOWANCE_EVENTS = ("subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg")


@dataclass
class FakeWechat:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    expires_in: int = 7200
    # Every send is answered with this errcode while it is set (0: accepted).
    send_errcode: int = 0
    token_requests: int = 0
    sends: list[Sent] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (errcode, token) of refusals
    enforce_quotas: bool = False
    message_quota: tuple[int, float] = (5, 48 * 3600)  # (messages, seconds) after a message
    event_quota: tuple[int, float] = (3, 60)  # after a follow, a menu click or a scan
    _windows: dict[str, tuple[int, float]] = field(default_factory=dict)  # openid → (left, end)
    _tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (time.time)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _changed: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- what tests do -------------------------------------------------------------------------

    def saw_push(self, xml: str) -> None:
        """WeChat delivered this push to the account: the customer-service allowance it opens."""
        fields = xmltodict.parse(xml)["xml"]
        openid = fields["FromUserName"]
        if fields["MsgType"] != "event":
            quota, seconds = self.message_quota
        elif fields.get("Event") in (
            "subscribe",
            "SCAN",
            "CLICK",
            "scancode_push",
            "scancode_waitmsg",
        ):
            quota, seconds = self.event_quota
        else:
            return  # unsubscribe, a location report, a menu link: nothing is allowed
        now = time.time()
        with self._changed:
            left, end = self._windows.get(openid, (0, 0.0))
            if end <= now:
                left, end = 0, 0.0
            self._windows[openid] = (max(left, quota), max(end, now + seconds))

    def allowance(self, openid: str) -> int:
        """Customer-service messages the user may still be sent now."""
        with self._changed:
            left, end = self._windows.get(openid, (0, 0.0))
            return left if end > time.time() else 0

    def _use_allowance(self, openid: str) -> int:
        """0 and one message fewer, or the errcode WeChat answers (called holding the lock)."""
        left, end = self._windows.get(openid, (0, 0.0))
        if end <= time.time():
            return 45015  # response out of time limit
        if left <= 0:
            return 45047  # out of response count limit
        self._windows[openid] = (left - 1, end)
        return 0

    def expire_tokens(self) -> None:
        """Every token issued so far is expired now (WeChat then answers 42001)."""
        with self._changed:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def sent_to(self, openid: str) -> list[str]:
        with self._changed:
            return [s.content for s in self.sends if s.touser == openid]

    def wait_for_sends(self, openid: str, count: int, timeout: float = 30) -> list[str]:
        """The texts sent to `openid`, once there are at least `count` (else AssertionError)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                texts = [s.content for s in self.sends if s.touser == openid]
                if len(texts) >= count:
                    return texts
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(texts)} of {count} sends to {openid}: {texts}")
                self._changed.wait(left)

    def wait_for_refusals(self, count: int, timeout: float = 30) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.refused) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.refused)} of {count} refusals")
                self._changed.wait(left)
            return list(self.refused)

    # ---- the API -------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        query = request.query
        with self._changed:
            self.token_requests += 1
            if query.get("grant_type") != "client_credential":
                return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
            if query.get("appid") != self.app_id:
                return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
            if query.get("secret") != self.app_secret:
                return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
            token = f"token-{next(self._counter)}"
            self._tokens[token] = time.time() + self.expires_in
            self._changed.notify_all()
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        raw = await request.read()
        with self._changed:
            errcode = self._check_token(token)
            if not errcode and self.send_errcode:
                errcode = self.send_errcode
            if errcode:
                self.refused.append((errcode, token))
                self._changed.notify_all()
                return web.json_response({"errcode": errcode, "errmsg": f"fake error {errcode}"})
            # Sent as raw UTF-8 (as wechatpy does); the fake refuses \\uXXXX escapes to catch a
            # client that would rely on WeChat decoding them.
            if b"\\u" in raw:
                return web.json_response({"errcode": 40033, "errmsg": "invalid charset"})
            body: dict[str, Any] = json.loads(raw.decode("utf-8"))
            content = body.get("text", {}).get("content", "")
            if len(content.encode("utf-8")) > 2048:
                return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
            if self.enforce_quotas:
                errcode = self._use_allowance(body["touser"])
                if errcode:
                    self.refused.append((errcode, token))
                    self._changed.notify_all()
                    return web.json_response({"errcode": errcode, "errmsg": f"quota {errcode}"})
            self.sends.append(Sent(body["touser"], body["msgtype"], content, token))
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _check_token(self, token: str) -> int:
        if token not in self._tokens:
            return 40001  # invalid credential
        if self._tokens[token] <= time.time():
            return 42001  # access_token expired
        return 0

    # ---- running -------------------------------------------------------------------------------

    def start(self) -> FakeWechat:
        self.port = self.port or free_port()
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/cgi-bin/token", self.token)
            app.router.add_post("/cgi-bin/message/custom/send", self.custom_send)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-wechat", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake WeChat API did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
