"""WeChat settings (the channel is on only when WECHAT_TOKEN is set).

bot/settings.py reads the WECHAT_* variables into `Settings.wechat`; a WechatConfig checks itself
when it is made, so a present but unusable variable stops the start with its name.
"""

from __future__ import annotations

import base64
import binascii
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
    # Seconds to wait for the answer before replying "success" and sending it later.
    reply_timeout: float = DEFAULT_REPLY_TIMEOUT

    def __post_init__(self) -> None:
        if self.aes_key:
            check_aes_key(self.aes_key)
            if not self.app_id:
                raise WechatConfigError(
                    "WECHAT_AES_KEY needs WECHAT_APP_ID (the AppID is in every encrypted message)"
                )
        if not 0 < self.reply_timeout < 5:
            raise WechatConfigError("WECHAT_REPLY_TIMEOUT must be between 0 and 5 seconds")

    @property
    def can_send(self) -> bool:
        """Customer-service messages need an access token, i.e. AppID and AppSecret."""
        return bool(self.app_id and self.app_secret)


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
