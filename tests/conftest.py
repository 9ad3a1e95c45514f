"""
Shared fixtures: a real PostgreSQL server, per-test databases on both
backends, and started stores.

PostgreSQL tests skip, with the reason, when no server can be had, except
under C{CI=true}, where that is an error.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_twisted

from twistedindex.config import Settings
from twistedindex.storage import StartupDatabase, open_store

from .daemon import stop_leftovers
from .pgserver import PostgresServer, Unavailable

BACKENDS = ["sqlite", "postgres"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session", autouse=True)
def stop_leftover_daemons() -> Iterator[None]:
    """
    No daemon outlives the test session, even when a test or a fixture
    failed before stopping its own.
    """
    yield
    stop_leftovers()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
    except Unavailable as e:
        server.stop()
        if in_ci():
            pytest.fail(f"PostgreSQL is required under CI=true: {e}")
        pytest.skip(f"PostgreSQL not available: {e}")
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> Iterator[str]:
    """
    The DSN of a new, empty PostgreSQL database, dropped afterwards.
    """
    dsn = pg_server.create_database()
    yield dsn
    pg_server.drop_database(dsn)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> Settings:
    """
    Settings for a fresh index on the parametrized backend.
    """
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    if backend == "postgres":
        return Settings(data_dir=data_dir, database=request.getfixturevalue("pg_dsn"))
    return Settings(data_dir=data_dir)


def migrated(settings: Settings) -> None:
    database = StartupDatabase(settings)
    try:
        database.migrate()
    finally:
        database.close()


@pytest_twisted.async_yield_fixture
async def store(settings: Settings) -> AsyncIterator[Any]:
    """
    A started store on a migrated, empty database.
    """
    from twisted.internet import reactor

    migrated(settings)
    opened = open_store(settings, reactor)
    await opened.start()
    yield opened
    await opened.stop()
