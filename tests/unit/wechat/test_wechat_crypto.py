"""Signatures and the three message modes, round-tripped with wechatpy's own functions."""

from __future__ import annotations

import time

import pytest
from wechatpy.messages import TextMessage
from wechatpy.utils import check_signature

from bot.settings import Settings, WechatConfig, WechatConfigError
from bot.wechat.crypto import RequestRefused, open_request, seal_reply, verify_server
from bot.wechat.render import text_reply_xml
from tests.support.fake_wechat import (
    AES_KEY,
    APP_ID,
    TOKEN,
    new_openid,
    open_reply,
    sign,
    signature,
    text_xml,
)

CONFIG = WechatConfig(token=TOKEN, app_id=APP_ID, app_secret="s", aes_key=AES_KEY)
PLAIN = WechatConfig(token=TOKEN, app_id=APP_ID, app_secret="s")  # plaintext mode: no AES key


def test_server_check_echoes_echostr_only_with_a_valid_signature() -> None:
    params = {"signature": signature(TOKEN, "1700000000", "n1"), "timestamp": "1700000000"}
    params |= {"nonce": "n1", "echostr": "8812345"}
    check_signature(TOKEN, params["signature"], "1700000000", "n1")  # wechatpy agrees
    assert verify_server(CONFIG, params) == "8812345"
    with pytest.raises(RequestRefused) as refused:
        verify_server(CONFIG, {**params, "nonce": "n2"})
    assert refused.value.status == 403
    with pytest.raises(RequestRefused) as missing:
        verify_server(CONFIG, {k: v for k, v in params.items() if k != "signature"})
    assert missing.value.status == 403


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_every_mode_is_opened_and_answered_in_kind(mode: str) -> None:
    openid = new_openid()
    signed = sign(text_xml(openid, "商标受理窗口在哪", msg_id=42), mode)
    inbound = open_request(PLAIN if mode == "plaintext" else CONFIG, signed.params, signed.body)
    assert isinstance(inbound.message, TextMessage)
    assert (inbound.message.content, inbound.message.source, inbound.message.id) == (
        "商标受理窗口在哪",
        openid,
        42,
    )
    assert inbound.encrypted == (mode != "plaintext")
    assert (b"<Content>" in signed.body) == (mode != "safe")  # safe mode: ciphertext only
    sealed = seal_reply(CONFIG, inbound, text_reply_xml(inbound.message, "宁波市商标受理窗口"))
    assert ("<Encrypt>" in sealed) == (mode != "plaintext")
    reply = open_reply(sealed, signed.params)  # decrypted, msg_signature checked by wechatpy
    assert reply is not None
    assert (reply["ToUserName"], reply["MsgType"], reply["Content"]) == (
        openid,
        "text",
        "宁波市商标受理窗口",
    )


def test_bad_signatures_are_refused_with_403() -> None:
    signed = sign(text_xml(new_openid(), "你好"), "safe")
    for params in (
        {**signed.params, "signature": "0" * 40},
        {**signed.params, "msg_signature": "0" * 40},
        {k: v for k, v in signed.params.items() if k != "msg_signature"},
    ):
        with pytest.raises(RequestRefused) as refused:
            open_request(CONFIG, params, signed.body)
        assert refused.value.status == 403
    other_token = sign(text_xml(new_openid(), "你好"), "plaintext", token="another-token")
    with pytest.raises(RequestRefused) as refused:
        open_request(CONFIG, other_token.params, other_token.body)
    assert refused.value.status == 403


def test_a_push_must_be_signed_within_five_minutes() -> None:
    for timestamp in ("1500000000", str(int(time.time()) - 301), str(int(time.time()) + 301)):
        for config, mode in ((PLAIN, "plaintext"), (CONFIG, "safe")):
            signed = sign(text_xml(new_openid(), "你好"), mode, timestamp=timestamp)
            with pytest.raises(RequestRefused) as refused:
                open_request(config, signed.params, signed.body)
            assert refused.value.status == 403 and "timestamp" in refused.value.reason
    recent = sign(text_xml(new_openid(), "你好"), "safe", timestamp=str(int(time.time()) - 250))
    assert open_request(CONFIG, recent.params, recent.body).encrypted


def test_plaintext_is_refused_once_an_aes_key_is_configured() -> None:
    plain = sign(text_xml(new_openid(), "你好"), "plaintext")
    with pytest.raises(RequestRefused) as refused:
        open_request(CONFIG, plain.params, plain.body)
    assert refused.value.status == 403, "plaintext accepted with an AES key"


def test_a_message_sealed_for_another_account_is_refused() -> None:
    other_app = sign(text_xml(new_openid(), "你好"), "safe", app_id="wxanotheraccount1")
    with pytest.raises(RequestRefused) as refused:
        open_request(CONFIG, other_app.params, other_app.body)
    assert refused.value.status == 403 and "AppID" in refused.value.reason
    other_key = sign(text_xml(new_openid(), "你好"), "safe", aes_key="a" * 43)
    with pytest.raises(RequestRefused) as refused:
        open_request(CONFIG, other_key.params, other_key.body)
    assert refused.value.status in (400, 403)  # our token signed it, but it does not decrypt


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><MsgType>text",
        b"not xml at all",
        b"<foo/>",
        b"<xml></xml>",
        b"\xff\xfe<xml/>",
        # Entities (billion laughs, external files) are refused, never expanded.
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><MsgType>text</MsgType><FromUserName>o1234567</FromUserName>"
        b"<Content>&e;</Content></xml>",
    ],
)
def test_malformed_plaintext_bodies_get_400(body: bytes) -> None:
    signed = sign("", "plaintext")
    with pytest.raises(RequestRefused) as refused:
        open_request(PLAIN, signed.params, body)
    assert refused.value.status == 400


def test_malformed_encrypted_bodies_get_400() -> None:
    signed = sign(text_xml(new_openid(), "你好"), "safe")
    for body in (b"<xml><Encrypt>", b"<xml><Nothing/></xml>"):
        with pytest.raises(RequestRefused) as refused:
            open_request(CONFIG, signed.params, body)
        assert refused.value.status in (400, 403)  # no Encrypt: nothing to check it against
    # A valid signature over garbage ciphertext: not WeChat's, but not our failure either.
    timestamp, nonce = signed.params["timestamp"], signed.params["nonce"]
    params = {**signed.params, "msg_signature": signature(TOKEN, timestamp, nonce, "AAAA")}
    with pytest.raises(RequestRefused) as refused:
        open_request(CONFIG, params, b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>")
    assert refused.value.status == 400


def test_encrypted_push_without_a_configured_key_is_a_clear_400() -> None:
    plain_only = WechatConfig(token=TOKEN)
    signed = sign(text_xml(new_openid(), "你好"), "safe")
    with pytest.raises(RequestRefused) as refused:
        open_request(plain_only, signed.params, signed.body)
    assert refused.value.status == 400 and "WECHAT_AES_KEY" in refused.value.reason


def test_reply_text_with_a_cdata_terminator_survives() -> None:
    signed = sign(text_xml(new_openid(), "你好"), "plaintext")
    inbound = open_request(PLAIN, signed.params, signed.body)
    reply = open_reply(text_reply_xml(inbound.message, "a]]>b <c> & d"), signed.params)
    assert reply is not None and reply["Content"] == "a]]>b <c> & d"


def wechat_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> WechatConfig | None:
    """`Settings.from_env().wechat` with exactly these WECHAT_* variables set."""
    for name in ("TOKEN", "APP_ID", "APP_SECRET", "AES_KEY", "API_BASE", "REPLY_TIMEOUT"):
        monkeypatch.delenv(f"WECHAT_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RASA_AUTH_TOKEN", "t")  # no var/secrets.json is written
    monkeypatch.setenv("SESSION_SECRET", "s")
    return Settings.from_env().wechat


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert wechat_from_env(monkeypatch) is None  # no token: no channel
    env = {
        "WECHAT_TOKEN": "token-secret-1",
        "WECHAT_APP_ID": "wx1",
        "WECHAT_APP_SECRET": "app-secret-2",
        "WECHAT_AES_KEY": AES_KEY,
        "WECHAT_API_BASE": "http://127.0.0.1:9/",
    }
    config = wechat_from_env(monkeypatch, **env)
    assert config is not None and config.can_send
    assert (config.app_id, config.api_base, config.reply_timeout) == (
        "wx1",
        "http://127.0.0.1:9",
        4.5,
    )
    assert not any(secret in repr(config) for secret in ("token-secret-1", "app-secret-2", AES_KEY))
    passive = wechat_from_env(monkeypatch, WECHAT_TOKEN="t")
    assert passive is not None and not passive.can_send  # passive replies only
    bad_values = [
        {"WECHAT_AES_KEY": "short"},
        {"WECHAT_AES_KEY": "!" * 43},
        {"WECHAT_REPLY_TIMEOUT": "6"},
        {"WECHAT_REPLY_TIMEOUT": "soon"},
    ]
    for bad in bad_values:
        with pytest.raises(WechatConfigError):
            wechat_from_env(monkeypatch, WECHAT_TOKEN="t", WECHAT_APP_ID="wx1", **bad)
    with pytest.raises(WechatConfigError, match="WECHAT_APP_ID"):
        wechat_from_env(monkeypatch, WECHAT_TOKEN="t", WECHAT_AES_KEY=AES_KEY)
    with pytest.raises(WechatConfigError, match="WECHAT_REPLY_TIMEOUT"):
        WechatConfig(token="t", reply_timeout=0)  # however it is made
