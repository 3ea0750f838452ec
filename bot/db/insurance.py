"""Queries over insurance products, used by the action server (2.0-style SQLAlchemy)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import InsuranceProduct
from bot.domain.vocabulary import INSURANCE_TYPES


def all_products(session: Session) -> list[InsuranceProduct]:
    """Every product, in the contract's order of insurance types."""
    products = list(session.execute(select(InsuranceProduct)).scalars())
    order = {t: i for i, t in enumerate(INSURANCE_TYPES)}
    return sorted(products, key=lambda p: (order.get(p.insurance_type, len(order)), p.name))


def products_of_type(session: Session, insurance_type: str) -> list[InsuranceProduct]:
    query = (
        select(InsuranceProduct)
        .where(InsuranceProduct.insurance_type == insurance_type)
        .order_by(InsuranceProduct.name)
    )
    return list(session.execute(query).scalars())
