"""How the gateway proves itself to Rasa's HTTP API without putting the token in a URL.

Rasa 3.6 takes its static `--auth-token` only as `?token=` in the query string, where access logs,
proxies and error reports keep it. It also accepts a JWT in the `Authorization: Bearer` header
when started with `--jwt-secret` (bot/rasa/server.py passes RASA_AUTH_TOKEN as that secret): the
gateway signs a short-lived token with it, so the secret itself never travels.
"""

from __future__ import annotations

import time

import jwt

JWT_METHOD = "HS256"
JWT_LIFETIME_SECONDS = 60


def bearer_header(secret: str, now: float | None = None) -> dict[str, str]:
    """The Authorization header for one call (role admin: Rasa lets it reach any conversation)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "user": {"username": "gateway", "role": "admin"},
        "username": "gateway",
        "iat": issued,
        "exp": issued + JWT_LIFETIME_SECONDS,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm=JWT_METHOD)}"}
