"""The back office's console pages (issue 16): leads (with their live feed), follow-ups, the
admin's ratings and calendar pages."""

from __future__ import annotations

from aiohttp import web

from bot.staff.calendar_pages import setup_calendar_pages
from bot.staff.lead_live import setup_lead_live
from bot.staff.lead_pages import setup_lead_pages
from bot.staff.rating_pages import setup_rating_pages


def setup_backoffice_pages(app: web.Application) -> None:
    """Call after setup_staff_pages (the templates and the /staff gate)."""
    setup_lead_pages(app)
    setup_lead_live(app)
    setup_rating_pages(app)
    setup_calendar_pages(app)
