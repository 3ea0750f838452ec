"""New leads pushed live to open leads pages (/staff/api/leads/live, a websocket).

A lead is stored by the action server (another process), so each gateway polls for leads newer
than the last it saw (one indexed query every POLL_SECONDS, only while a page is open) and sends
them to its own sockets: with several gateways every page still gets each lead exactly once.
This socket does not count as "online" for handoffs (the live console's /staff/ws does): an agent
reading leads is not waiting for citizens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp_session import get_session

from bot.conversation.frames import iso_time
from bot.db import leads
from bot.db.models import ConsultationRequest
from bot.db.runner import run_db
from bot.domain.masking import mask
from bot.staff.auth import SESSION_ID, StaffIdentity, require_staff
from bot.staff.live import RECHECK_SECONDS, SessionCheck, end_socket, send
from bot.web.keys import SETTINGS
from bot.web.origin import origin_allowed

logger = logging.getLogger(__name__)
POLL_SECONDS = 2.0


def lead_frame(lead: ConsultationRequest) -> dict[str, Any]:
    """A new lead as the page lists it: nobody owns it yet, so the phone is masked for all."""
    return {
        "type": "new_lead",
        "lead": {
            "id": lead.id,
            "reference": lead.reference,
            "company": lead.company,
            "contact_name": lead.contact_name,
            "phone": mask(lead.phone),
            "products": lead.products or "",
            "created_at": iso_time(lead.created_at),
        },
    }


class LeadFeed:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.sockets: dict[web.WebSocketResponse, StaffIdentity] = {}
        self.last_id: int | None = None

    async def poll_once(self) -> None:
        settings = self.app[SETTINGS]
        if self.last_id is None:
            self.last_id = await run_db(settings.database_url, leads.latest_lead_id, 5.0)
            return
        last = self.last_id
        new = await run_db(settings.database_url, lambda s: leads.leads_after(s, last), 5.0)
        for lead in new:
            self.last_id = max(self.last_id, lead.id)
            frame = lead_frame(lead)
            for ws in list(self.sockets):
                await send(ws, frame)

    async def catch_up(self, ws: web.WebSocketResponse, since: str) -> None:
        """A page rendered with leads up to `since`: what came before its socket opened."""
        settings = self.app[SETTINGS]
        if self.last_id is None:
            self.last_id = await run_db(settings.database_url, leads.latest_lead_id, 5.0)
        if not since.isdigit():
            return
        after, upto = int(since), self.last_id
        missed = await run_db(settings.database_url, lambda s: leads.leads_after(s, after), 5.0)
        for lead in missed:
            if lead.id <= upto:  # later ones come with the next poll, to every page
                await send(ws, lead_frame(lead))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.sockets and self.last_id is not None:
                self.last_id = None  # read afresh when a page opens: no backlog is pushed
                continue
            try:
                await self.poll_once()
            except Exception:
                logger.warning("could not poll for new leads", exc_info=True)


FEED = web.AppKey("lead_feed", LeadFeed)


async def lead_socket(request: web.Request) -> web.WebSocketResponse:
    staff = await require_staff(request)
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    sid = str((await get_session(request)).get(SESSION_ID))
    check = SessionCheck(request.config_dict[SETTINGS], sid, staff)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await ws.prepare(request)
    feed = request.app[FEED]
    await feed.catch_up(ws, request.query.get("since", ""))
    feed.sockets[ws] = staff
    watcher = asyncio.create_task(_watch(ws, check))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        watcher.cancel()
        feed.sockets.pop(ws, None)
    return ws


async def _watch(ws: web.WebSocketResponse, check: SessionCheck) -> None:
    """Close the socket once its staff session ends (logout, deactivation, expiry)."""
    while not ws.closed:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            valid = await check.still_valid(max_age=0)
        except Exception:
            continue
        if not valid:
            await end_socket(ws)
            return


async def _feed_context(app: web.Application) -> AsyncIterator[None]:
    feed = app[FEED] = LeadFeed(app)
    task = asyncio.create_task(feed.run())
    yield
    task.cancel()
    for ws in list(feed.sockets):
        await ws.close(code=1001, message=b"server shutdown")


def setup_lead_live(app: web.Application) -> None:
    app.cleanup_ctx.append(_feed_context)
    app.router.add_get("/staff/api/leads/live", lead_socket)
