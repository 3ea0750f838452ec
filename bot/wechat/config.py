"""WeChat settings, read from the environment (the channel is on only when WECHAT_TOKEN is set)."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# WeChat drops the connection after 5 s and retries; answer well before that.
DEFAULT_REPLY_TIMEOUT = 4.5


class WechatConfigError(ValueError):
    """A WECHAT_* variable is present but unusable; the message names it."""


@dataclass(frozen=True)
class WechatConfig:
    token: str = field(repr=False)
    app_id: str = ""
    app_secret: str = field(default="", repr=False)
    # EncodingAESKey: 43 characters; needed for the compatible and safe (encrypted) modes.
    aes_key: str = field(default="", repr=False)
    api_base: str = DEFAULT_API_BASE
    redis_url: str = field(default="", repr=False)
    # Seconds to wait for the answer before replying "success" and sending it later.
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT

    @property
    def can_send(self) -> bool:
        """Customer-service messages need an access token, i.e. AppID and AppSecret."""
        return bool(self.app_id and self.app_secret)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WechatConfig | None:
        """The configuration, or None when WeChat is not configured (no WECHAT_TOKEN)."""
        env = os.environ if environ is None else environ
        token = env.get("WECHAT_TOKEN", "").strip()
        if not token:
            return None
        app_id = env.get("WECHAT_APP_ID", "").strip()
        aes_key = env.get("WECHAT_AES_KEY", "").strip()
        if aes_key:
            check_aes_key(aes_key)
            if not app_id:
                raise WechatConfigError(
                    "WECHAT_AES_KEY needs WECHAT_APP_ID (the AppID is in every encrypted message)"
                )
        raw_timeout = env.get("WECHAT_REPLY_TIMEOUT", "").strip()
        try:
            reply_timeout = float(raw_timeout) if raw_timeout else DEFAULT_REPLY_TIMEOUT
        except ValueError as exc:
            raise WechatConfigError(
                f"WECHAT_REPLY_TIMEOUT must be a number, got {raw_timeout!r}"
            ) from exc
        if not 0 < reply_timeout < 5:
            raise WechatConfigError("WECHAT_REPLY_TIMEOUT must be between 0 and 5 seconds")
        return cls(
            token=token,
            app_id=app_id,
            app_secret=env.get("WECHAT_APP_SECRET", "").strip(),
            aes_key=aes_key,
            api_base=(env.get("WECHAT_API_BASE", "").strip() or DEFAULT_API_BASE).rstrip("/"),
            redis_url=env.get("REDIS_URL", "").strip(),
            reply_timeout=reply_timeout,
        )


def check_aes_key(aes_key: str) -> None:
    """An EncodingAESKey is 43 base64 characters that decode (with one "=") to 32 bytes."""
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WechatConfigError(
            "WECHAT_AES_KEY is not a valid EncodingAESKey (43 characters)"
        ) from exc
    if len(aes_key) != 43 or len(key) != 32:
        raise WechatConfigError("WECHAT_AES_KEY must be the 43-character EncodingAESKey")
