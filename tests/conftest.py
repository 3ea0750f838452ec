"""Shared fixtures: databases (SQLite and the local PostgreSQL) and the running product."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text

from bot.db.engine import make_engine, session_factory
from bot.db.migrate import upgrade
from bot.kb.seed import seed_if_empty
from bot.knowledge.embed import DEFAULT_CACHE, Embedder
from bot.knowledge.live import warm_up
from bot.rasa.model import ensure_trained
from tests.support.fake_rasa import FakeRasa
from tests.support.running_stack import RunningStack

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, error: Exception) -> None:
    """A needed service is down: fail under CI (it must be there), skip on a laptop."""
    message = f"{name} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture()
def postgres_schema_url() -> Iterator[str]:
    """A URL for a fresh, empty schema in the local PostgreSQL, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure
        admin.dispose()
        require_service("PostgreSQL", exc)
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty, migrated database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    upgrade(url)
    return url


@pytest.fixture()
def seeded_database_url(database_url: str) -> str:
    with session_factory(database_url)() as session:
        assert seed_if_empty(session) > 0
    return database_url


@pytest.fixture()
def db_session(seeded_database_url: str):
    with session_factory(seeded_database_url)() as session:
        yield session


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model for the current data: trained once, reused while the data is unchanged.

    Every test that starts the real processes uses it, so the knowledge search's embeddings are
    prepared here too (as `bot run` does before starting them): computed once into the shared
    cache, so that no action server spends its first question embedding the seed.
    """
    database_url = f"sqlite:///{tmp_path_factory.mktemp('warm-up') / 'seed.db'}"
    upgrade(database_url)
    with session_factory(database_url)() as session:
        seed_if_empty(session)
    warm_up(database_url, Embedder(DEFAULT_CACHE))
    return ensure_trained()


@pytest.fixture(scope="session")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """Action server, Rasa and gateway as real processes, on a seeded SQLite database."""
    var_dir = tmp_path_factory.mktemp("stack-var")
    database_url = f"sqlite:///{var_dir / 'ipbot.db'}"
    upgrade(database_url)
    with session_factory(database_url)() as session:
        seed_if_empty(session)
    running = RunningStack.on_free_ports(var_dir, database_url, trained_model)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture()
def actions_database_url(seeded_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A seeded database (SQLite and PostgreSQL) that the custom actions read via DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", seeded_database_url)
    return seeded_database_url


CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for one test module (Playwright's sync API keeps its own event loop,
    which must not outlive the module into the asyncio tests)."""
    if not Path(CHROMIUM).exists():
        require_service("Chromium", FileNotFoundError(f"{CHROMIUM} (.ci/run installs it)"))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture()
async def fake_rasa() -> FakeRasa:
    rasa = FakeRasa()
    server = TestServer(rasa.app(), host="127.0.0.1")
    await server.start_server()
    rasa.port = server.port
    yield rasa
    await server.close()
