"""Signatures and the three message modes, with wechatpy's own functions.

- plaintext: the body is the message XML; only the URL `signature` proves it is from WeChat.
- compatible: the body holds both the plain fields and <Encrypt>; the URL says encrypt_type=aes.
- safe: the body holds only <Encrypt>; encrypt_type=aes.
With encrypt_type=aes the message is decrypted from <Encrypt> (its `msg_signature` checked) and the
reply is encrypted; otherwise both are plain. Every request must carry a valid `signature`.

Against replays (issue 14): a push must be signed within MAX_CLOCK_SKEW_SECONDS of now (the
signature covers the timestamp), its nonce must be new (routes.py remembers nonces for longer than
that window), and once WECHAT_AES_KEY is configured only encrypted pushes (encrypt_type=aes with a
msg_signature) are accepted: a plaintext body would bypass the message signature.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.utils import WeChatSigner

from bot.settings import WechatConfig

# How far a push's timestamp may be from this server's clock (either way).
MAX_CLOCK_SKEW_SECONDS = 300


class RequestRefused(Exception):
    """The request cannot be handled: `status` (400 or 403) and a short reason for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Inbound:
    message: BaseMessage  # wechatpy's parsed message or event
    encrypted: bool  # answer in kind: an encrypted request gets an encrypted reply
    nonce: str


def _signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def check_url_signature(config: WechatConfig, query: Mapping[str, str]) -> None:
    """sha1 over the sorted token, timestamp and nonce (as `wechatpy.utils.check_signature`,
    compared in constant time). Raises RequestRefused(403)."""
    signature, timestamp, nonce = (query.get(k, "") for k in ("signature", "timestamp", "nonce"))
    if not (signature and timestamp and nonce):
        raise RequestRefused(403, "signature, timestamp or nonce missing")
    if not _same(_signature(config.token, timestamp, nonce), signature):
        raise RequestRefused(403, "bad signature")


def verify_server(config: WechatConfig, query: Mapping[str, str]) -> str:
    """The server-address check (GET): a valid signature gets `echostr` back unchanged."""
    check_url_signature(config, query)
    echostr = query.get("echostr", "")
    if not echostr:
        raise RequestRefused(400, "echostr missing")
    return echostr


def check_fresh(query: Mapping[str, str], now: float | None = None) -> None:
    """The (signed) timestamp is within MAX_CLOCK_SKEW_SECONDS of now; else RequestRefused(403)."""
    try:
        timestamp = int(query.get("timestamp", ""))
    except ValueError as exc:
        raise RequestRefused(403, "timestamp is not a number") from exc
    now = time.time() if now is None else now
    if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise RequestRefused(403, f"timestamp {timestamp} is more than 300 s off")


def open_request(config: WechatConfig, query: Mapping[str, str], body: bytes) -> Inbound:
    """Check (signature, timestamp, mode), decrypt if needed and parse one pushed message.
    Raises RequestRefused. The nonce's novelty is checked by the caller (it needs storage)."""
    check_url_signature(config, query)
    check_fresh(query)
    encrypted = query.get("encrypt_type", "raw").lower() == "aes"
    if config.aes_key and not encrypted:
        raise RequestRefused(403, "plaintext push, but WECHAT_AES_KEY is configured")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRefused(400, "body is not UTF-8") from exc
    if encrypted:
        text = _decrypt(config, query, text)
    try:
        message = parse_message(text)
        for name in getattr(type(message), "_fields", ()):  # wechatpy converts lazily: now
            getattr(message, name)
    except (ExpatError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise RequestRefused(400, f"malformed message XML: {exc!r}") from exc
    except OSError as exc:  # datetime.fromtimestamp() of a CreateTime out of range
        raise RequestRefused(400, f"malformed message XML: {exc!r}") from exc
    if message is None:
        raise RequestRefused(400, "empty body")
    if not message.source:
        raise RequestRefused(400, "FromUserName missing")
    return Inbound(message=message, encrypted=encrypted, nonce=query["nonce"])


def _decrypt(config: WechatConfig, query: Mapping[str, str], text: str) -> str:
    if not config.aes_key:
        raise RequestRefused(400, "encrypted message, but WECHAT_AES_KEY is not configured")
    msg_signature = query.get("msg_signature", "")
    if not msg_signature:
        raise RequestRefused(403, "msg_signature missing")
    crypto = WeChatCrypto(config.token, config.aes_key, config.app_id)
    try:
        return crypto.decrypt_message(text, msg_signature, query["timestamp"], query["nonce"])
    except InvalidSignatureException as exc:
        raise RequestRefused(403, "bad msg_signature") from exc
    except InvalidAppIdException as exc:
        raise RequestRefused(403, "encrypted for another AppID") from exc
    except ExpatError as exc:
        raise RequestRefused(400, f"malformed XML: {exc}") from exc
    except Exception as exc:  # missing <Encrypt>, bad base64, bad padding: not a WeChat message
        raise RequestRefused(400, f"cannot decrypt the message: {exc!r}") from exc


def seal_reply(config: WechatConfig, inbound: Inbound, reply_xml: str) -> str:
    """The passive reply as sent: encrypted (with msg_signature) when the request was."""
    if not inbound.encrypted:
        return reply_xml
    crypto = WeChatCrypto(config.token, config.aes_key, config.app_id)
    return crypto.encrypt_message(reply_xml, inbound.nonce, str(int(time.time())))
