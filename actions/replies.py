"""Building blocks of the bot's rich replies (buttons and cards), shared by the actions.

Cards go out as Rasa `custom` payloads: {"kind": "service_points", "items": [...]}; the gateway
renders them in the web chat and turns them into text for channels without cards.
"""

from __future__ import annotations

import json
from typing import Any

from bot.db.models import InsuranceProduct, ServicePoint
from bot.domain.vocabulary import DISTRICTS
from bot.domain.vocabulary import HUMAN_BUTTON as HUMAN_BUTTON  # the actions' 转人工 button

UNVERIFIED = "待核实"


def district_buttons() -> list[dict[str, str]]:
    return [
        {"title": d, "payload": "/inform" + json.dumps({"district": d}, ensure_ascii=False)}
        for d in DISTRICTS
    ]


def service_point_card(point: ServicePoint, distance_km: float | None = None) -> dict[str, Any]:
    card = {
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
    if distance_km is not None:
        card["distance_km"] = round(distance_km, 1)
    return card


def service_points_payload(
    points: list[ServicePoint], distances: list[float] | None = None
) -> dict[str, Any]:
    if distances is None:
        return {"kind": "service_points", "items": [service_point_card(p) for p in points]}
    items = [service_point_card(p, d) for p, d in zip(points, distances, strict=True)]
    return {"kind": "service_points", "items": items}


def missing_details(points: list[ServicePoint]) -> bool:
    return any(not (p.address and p.phone) for p in points)


def insurance_product_card(product: InsuranceProduct) -> dict[str, Any]:
    """Exactly the keys the web chat renders; unknown values stay None ("待核实" on screen)."""
    return {
        "name": product.name,
        "insurance_type": product.insurance_type,
        "coverage": product.coverage,
        "audience": product.audience,
        "limits": product.limits,
        "premium": product.premium,
        "insurer": product.insurer,
        "source": product.source,
    }


def insurance_products_payload(products: list[InsuranceProduct]) -> dict[str, Any]:
    return {"kind": "insurance_products", "items": [insurance_product_card(p) for p in products]}


def consultation_button(title: str = "预约保险咨询") -> dict[str, str]:
    return {"title": title, "payload": "/request_insurance_consultation"}


def shorten(text: str, limit: int = 40) -> str:
    """A user's text echoed back: kept as plain text, cut when very long."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
