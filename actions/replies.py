"""Building blocks of the bot's rich replies (buttons and cards), shared by the actions.

Cards go out as Rasa `custom` payloads: {"kind": "service_points", "items": [...]}; the gateway
renders them in the web chat and turns them into text for channels without cards.
"""

from __future__ import annotations

import json
from typing import Any

from bot.db.models import ServicePoint
from bot.vocabulary import DISTRICTS

UNVERIFIED = "待核实"
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


def district_buttons() -> list[dict[str, str]]:
    return [
        {"title": d, "payload": "/inform" + json.dumps({"district": d}, ensure_ascii=False)}
        for d in DISTRICTS
    ]


def service_point_card(point: ServicePoint) -> dict[str, Any]:
    return {
        "name": point.name,
        "service_type": point.service_type,
        "district": point.district,
        "address": point.address,
        "opening_hours": point.opening_hours,
        "phone": point.phone,
        "services": point.services,
        "note": point.note,
        "source": point.source,
        "last_verified": point.last_verified.isoformat() if point.last_verified else None,
    }


def service_points_payload(points: list[ServicePoint]) -> dict[str, Any]:
    return {"kind": "service_points", "items": [service_point_card(p) for p in points]}
