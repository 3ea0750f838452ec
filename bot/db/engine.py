"""Engine and session factory for SQLite (default) and PostgreSQL, and the server-level
PostgreSQL questions the scale-out set-up asks (create the database, connection limits)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.drivername == "postgresql":
        # psycopg2 in both environments: SQLAlchemy 2.1 (the gateway's) defaults to psycopg 3,
        # which SQLAlchemy 1.4 (Rasa's) does not know.
        url = url.set(drivername="postgresql+psycopg2")
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, future=True, connect_args={"check_same_thread": False, "timeout": 5}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.close()

        return engine
    # A short connect timeout so that a dead server gives a quick, clear failure.
    return create_engine(
        url,
        future=True,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": 3},
    )


@lru_cache(maxsize=8)
def session_factory(database_url: str) -> sessionmaker:
    """One engine (and pool) per URL per process."""
    return sessionmaker(
        make_engine(database_url), class_=Session, future=True, expire_on_commit=False
    )


def create_database_if_missing(database_url: str) -> bool:
    """Create the PostgreSQL database of the URL unless it exists; True when created.

    Connects to the server's `postgres` database to do so; connection errors propagate.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url}")
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(url.database)
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        admin.dispose()


def postgres_limits(database_url: str) -> tuple[int, int, int]:
    """max_connections, superuser_reserved_connections, connections in use now (by others)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(
                connection.execute(text("SHOW superuser_reserved_connections")).scalar_one()
            )
            in_use = int(
                connection.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar_one()
            )
    finally:
        engine.dispose()
    return limit, reserved, in_use - 1  # not counting this query's own connection
