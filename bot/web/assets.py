"""Files both pages load (the web chat's and the staff console's): bot/web/static/ at
/common-static/, e.g. common.js, the helpers chat.js and console.js share."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

COMMON_STATIC_DIR = Path(__file__).resolve().parent / "static"
COMMON_STATIC_PATH = "/common-static/"


def setup_common_static(app: web.Application) -> None:
    app.router.add_static(COMMON_STATIC_PATH, COMMON_STATIC_DIR)
