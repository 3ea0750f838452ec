"""The gateway's access log (`bot serve`) names the path only: WeChat's query string carries the
signature, nonce, timestamp and the user's OpenID, none of which belongs in a log file."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_log import AccessLogger

import bot.__main__ as cli
from bot.settings import Settings


def serve_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, Any]:
    """What `cmd_serve` passes to aiohttp's run_app (which is not started)."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: captured.update(kwargs))
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)
    original_factory = logging.getLogRecordFactory()
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("RASA_AUTH_TOKEN", "t")
    monkeypatch.setenv("SESSION_SECRET", "s")
    monkeypatch.delenv("BOT_ENV", raising=False)
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    try:
        assert cli.cmd_serve(Settings.from_env()) == 0
    finally:
        logging.setLogRecordFactory(original_factory)
    return captured


async def test_the_access_log_has_no_query_string(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    arguments = serve_arguments(monkeypatch, tmp_path)
    logger_kwargs = {
        "access_log_class": arguments.get("access_log_class", AccessLogger),
        "access_log_format": arguments.get("access_log_format", AccessLogger.LOG_FORMAT),
    }
    app = web.Application()
    app.router.add_post("/wechat", lambda _: web.Response(text="success"))
    server = TestServer(app)
    await server.start_server(**logger_kwargs)  # as run_app hands them to its AppRunner
    client = TestClient(server)
    await client.start_server()
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            query = "signature=abc123&timestamp=1700000000&nonce=98765&openid=o6_bmjrPTlm6"
            response = await client.post(f"/wechat?{query}&encrypt_type=aes", data=b"<xml/>")
            assert response.status == 200
    finally:
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert lines and "POST /wechat" in lines[0] and " 200 " in lines[0], lines
    for secret in ("signature=", "nonce=", "openid=", "timestamp=", "abc123", "o6_bmjrPTlm6"):
        assert secret not in lines[0], f"{secret!r} in the access log: {lines[0]}"
