"""WeChat's HTTP API on aiohttp: the access token and customer-service (客服) text messages.

wechatpy's own client is blocking; this one shares the gateway's aiohttp session. The token is
cached until 5 minutes before it expires, fetched by one caller at a time, and fetched again when
WeChat says it is invalid or expired (another server may have taken a new one).

Every fetch invalidates the previous token after 5 minutes, so several gateways must share one:
with Redis the token lives there (`SharedToken`, under the deployment's REDIS_NAMESPACE) and only
the holder of a short Redis lock fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.conversation.channel import DeliveryFailed
from bot.settings import WechatConfig

logger = logging.getLogger(__name__)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)
REFRESH_MARGIN_SECONDS = 300
# 40001 invalid credential, 40014 invalid token, 42001 expired token: fetch a new one, retry once.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# What staff are told when a message cannot go out (errcode → Chinese explanation).
SEND_ERRORS = {
    45015: (
        "用户超过48小时没有与公众号互动，微信不允许再向其发送客服消息。"
        "请等用户再次发消息，或通过电话联系。"
    ),
    45047: "向该用户连续发送的客服消息已达微信上限，需等用户回复后才能继续发送。",
    43004: "该用户已取消关注公众号，无法发送消息。",
    40003: "用户的 OpenID 无效，无法发送消息。",
    48001: "公众号没有客服消息接口权限（需认证的服务号或已开通该权限）。",
    45002: "消息内容过长，微信拒绝发送。",
}
TOKEN_FETCH_ERRORS = {
    40013: "AppID 无效，请检查 WECHAT_APP_ID。",
    40125: "AppSecret 无效，请检查 WECHAT_APP_SECRET。",
    40164: "本服务器的 IP 不在公众号的 IP 白名单中（公众平台 → 设置与开发 → 基本配置）。",
}


class WechatApiError(DeliveryFailed):
    """WeChat answered with an error code; `text` (Chinese) is for the staff member."""

    def __init__(self, errcode: int, text: str) -> None:
        super().__init__(text)
        self.errcode = errcode


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic time after which a new token is fetched


class SharedToken:
    """The access token in Redis, shared by every gateway of one AppID."""

    LOCK_SECONDS = 15

    def __init__(self, redis: aioredis.Redis, key: str) -> None:
        self.redis = redis
        self.key = key

    @classmethod
    def for_app(cls, redis: aioredis.Redis, namespace: str, app_id: str) -> SharedToken:
        """The token of `app_id` for the deployment whose REDIS_NAMESPACE is `namespace`."""
        return cls(redis, f"{namespace}:wechat-token:{app_id}")

    async def get(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, value: str, ttl_seconds: float) -> None:
        await self.redis.set(self.key, value, ex=max(1, int(ttl_seconds)))

    async def forget(self, value: str) -> None:
        if await self.get() == value:
            await self.redis.delete(self.key)

    async def fetch_once(self, fetch: Callable[[], Awaitable[_Token]]) -> str:
        """The token, fetched by whichever gateway holds the lock; the others wait for it."""
        for _ in range(self.LOCK_SECONDS * 10):
            value = await self.get()
            if value:
                return value
            if await self.redis.set(self.key + ":lock", "1", nx=True, ex=self.LOCK_SECONDS):
                try:
                    token = await fetch()
                    await self.put(token.value, token.refresh_at - time.monotonic())
                    return token.value
                finally:
                    await self.redis.delete(self.key + ":lock")
            await asyncio.sleep(0.1)
        raise DeliveryFailed("获取微信 access_token 超时，消息未送达，请稍后重试。")


class WechatApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        config: WechatConfig,
        shared: SharedToken | None = None,
    ) -> None:
        self._http = http
        self._config = config
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self._shared = shared

    async def access_token(self) -> str:
        if self._shared is not None:
            try:
                return await self._shared.fetch_once(self._fetch_token)
            except RedisError:
                logger.warning("Redis unavailable: this gateway keeps its own WeChat token")
        token = self._token
        if token is not None and time.monotonic() < token.refresh_at:
            return token.value
        async with self._lock:  # one fetch at a time; the others reuse its result
            token = self._token
            if token is None or time.monotonic() >= token.refresh_at:
                self._token = token = await self._fetch_token()
            return token.value

    async def _forget(self, value: str) -> None:
        """Drop a token WeChat refused, unless a newer one has already replaced it."""
        if self._token is not None and self._token.value == value:
            self._token = None
        if self._shared is not None:
            with contextlib.suppress(RedisError):
                await self._shared.forget(value)

    async def _fetch_token(self) -> _Token:
        if not self._config.can_send:
            raise DeliveryFailed("公众号未配置 AppID 和 AppSecret，无法发送客服消息。")
        params = {
            "grant_type": "client_credential",
            "appid": self._config.app_id,
            "secret": self._config.app_secret,
        }
        body = await self._call("GET", "/cgi-bin/token", params=params)
        errcode = int(body.get("errcode") or 0)
        if errcode or not body.get("access_token"):
            reason = TOKEN_FETCH_ERRORS.get(errcode, f"错误码 {errcode}：{body.get('errmsg', '')}")
            logger.error("WeChat token request failed: %s", body)
            raise WechatApiError(errcode, f"获取微信 access_token 失败，{reason}")
        expires_in = float(body.get("expires_in") or 7200)
        # Refresh 5 minutes early (and never later than halfway, for short test lifetimes).
        margin = min(REFRESH_MARGIN_SECONDS, expires_in / 2)
        return _Token(body["access_token"], time.monotonic() + expires_in - margin)

    async def send_text(self, openid: str, content: str) -> None:
        """One customer-service text message. Raises DeliveryFailed with a Chinese reason."""
        message = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        await self._post_with_token("/cgi-bin/message/custom/send", message)

    async def _post_with_token(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        # WeChat reads \uXXXX escapes literally in some APIs: send UTF-8 as is.
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        for attempt in (1, 2):
            token = await self.access_token()
            body = await self._call("POST", path, params={"access_token": token}, data=data)
            errcode = int(body.get("errcode") or 0)
            if errcode == 0:
                return body
            if errcode in TOKEN_ERRORS and attempt == 1:
                logger.info("WeChat refused the access token (%s); fetching a new one", errcode)
                await self._forget(token)
                continue
            logger.warning("WeChat %s failed: %s", path, body)
            text = SEND_ERRORS.get(
                errcode,
                f"微信接口返回错误（错误码 {errcode}：{body.get('errmsg', '')}），消息未送达。",
            )
            raise WechatApiError(errcode, text)
        raise AssertionError("unreachable")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self._config.api_base + path
        headers = {"Content-Type": "application/json; charset=utf-8"} if "data" in kwargs else None
        try:
            async with self._http.request(
                method, url, timeout=REQUEST_TIMEOUT, headers=headers, **kwargs
            ) as response:
                if response.status != 200:
                    raise DeliveryFailed(f"微信服务器返回 HTTP {response.status}，消息未送达。")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            logger.warning("WeChat API %s unreachable: %r", path, exc)
            raise DeliveryFailed("无法连接微信服务器，消息未送达，请稍后重试。") from exc
        if not isinstance(body, dict):
            raise DeliveryFailed("微信服务器的回应无法识别，消息未送达。")
        return body
