"""The migrations build exactly the tables the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import bot.db.calendar_days
import bot.db.conversations
import bot.db.handoffs
import bot.db.knowledge
import bot.db.leads
import bot.db.lookups
import bot.db.ratings
import bot.db.review
import bot.db.rollup
import bot.db.staff  # noqa: F401
from bot.db.engine import make_engine
from bot.db.models import Base


def test_no_difference_between_migrations_and_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
