"""The gateway's application factory."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.conversation.bus import make_bus
from bot.conversation.hours import WorkingHours
from bot.conversation.pipeline import BackOffice, Pipeline
from bot.conversation.store import ChatStore
from bot.rasa.pool import RasaPool
from bot.rasa.queue import QueueLimits
from bot.settings import Settings
from bot.staff.backoffice_pages import setup_backoffice_pages
from bot.staff.dashboard_pages import setup_dashboard_pages
from bot.staff.knowledge_pages import setup_knowledge_pages
from bot.staff.live import setup_staff_live
from bot.staff.pages import setup_staff_pages
from bot.staff.review_pages import setup_review_pages
from bot.web.assets import setup_common_static
from bot.web.health import healthz
from bot.web.keys import BUS, HTTP_CLIENT, PIPELINE, RASA_CLIENT, SETTINGS
from bot.web.middlewares import security_headers
from bot.webchat.routes import setup_routes as setup_webchat
from bot.wechat.routes import setup_wechat

TEMPLATES_DIR = __file__.rsplit("/", 1)[0] + "/webchat/templates"


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with aiohttp.ClientSession() as http:
        app[HTTP_CLIENT] = http
        app[RASA_CLIENT] = RasaPool(
            http,
            settings.rasa_urls,
            settings.rasa_timeout,
            settings.rasa_auth_token,
            queue=QueueLimits(
                settings.rasa_concurrency,
                settings.rasa_queue_depth,
                settings.rasa_queue_notice,
                settings.rasa_queue_max_wait,
            ),
        )
        hours = WorkingHours.parse(settings.handoff_hours, settings.handoff_timezone)
        back_office = BackOffice(
            rating_idle=timedelta(minutes=settings.rating_idle_minutes),
            follow_up_days=settings.follow_up_days,
            lookup_max_tries=settings.lookup_max_tries,
        )
        app[PIPELINE] = Pipeline(
            ChatStore(settings.database_url, settings.db_timeout),
            app[RASA_CLIENT],
            hours,
            back_office,
        )
        app[BUS] = make_bus(settings.redis_url, settings.redis_namespace)
        await app[BUS].start()
        yield
        await app[PIPELINE].close()
        await app[RASA_CLIENT].close()
        await app[BUS].close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[security_headers])
    app[SETTINGS] = settings
    cookie_key = hashlib.sha256(settings.session_secret.encode()).digest()  # 32 bytes for Fernet
    setup_session(
        app,
        EncryptedCookieStorage(
            cookie_key,
            cookie_name="ipbot_session",
            httponly=True,
            samesite="Lax",
            max_age=None,
            secure=settings.environment == "production",  # behind HTTPS in production
        ),
    )
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    app.cleanup_ctx.append(_http_client)
    setup_common_static(app)  # common.js, for the web chat and the staff console
    setup_webchat(app)
    setup_staff_pages(app)
    setup_knowledge_pages(app)
    setup_backoffice_pages(app)  # leads, follow-ups, ratings, calendar (issue 16)
    setup_review_pages(app)
    setup_dashboard_pages(app)
    setup_staff_live(app)
    setup_wechat(app)  # only when WECHAT_TOKEN is set
    app.router.add_get("/healthz", healthz)
    return app
