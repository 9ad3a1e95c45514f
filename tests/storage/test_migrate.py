"""
Schema creation and the refusal of databases newer than the code.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from twistedindex.config import Settings
from twistedindex.storage import SchemaError, StartupDatabase
from twistedindex.storage.migrate import SCHEMA_VERSION

TABLES = {"schema_version", "users", "projects", "roles", "releases", "files", "file_registry", "tokens", "journal"}


def tables(settings: Settings) -> set[str]:
    if settings.uses_postgres:
        import psycopg2

        with psycopg2.connect(settings.database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row[0] for row in cursor.fetchall()}
    connection = sqlite3.connect(settings.sqlite_path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def set_version(settings: Settings, version: int) -> None:
    if settings.uses_postgres:
        import psycopg2

        with psycopg2.connect(settings.database) as connection, connection.cursor() as cursor:
            cursor.execute("UPDATE schema_version SET version = %s", (version,))
        return
    connection = sqlite3.connect(settings.sqlite_path)
    with connection:
        connection.execute("UPDATE schema_version SET version = ?", (version,))
    connection.close()


def migrate(settings: Settings) -> int:
    database = StartupDatabase(settings)
    try:
        return database.migrate()
    finally:
        database.close()


def test_new_database_gets_the_current_schema(settings: Settings) -> None:
    """
    Migrating an empty database creates every table at the current version;
    migrating again finds it current and changes nothing.
    """
    assert migrate(settings) == 0
    assert TABLES <= tables(settings)
    assert migrate(settings) == SCHEMA_VERSION


def test_database_newer_than_the_code_is_refused(settings: Settings) -> None:
    """
    A database whose schema version is above the code's is refused with a
    message that names both versions.
    """
    migrate(settings)
    set_version(settings, SCHEMA_VERSION + 5)
    with pytest.raises(SchemaError) as raised:
        migrate(settings)
    message = str(raised.value)
    assert f"schema version {SCHEMA_VERSION + 5}" in message
    assert f"newer than the {SCHEMA_VERSION} this twistedindex knows" in message


def test_sqlite_database_is_in_wal_mode(tmp_path: Any) -> None:
    """
    The SQLite database uses write-ahead logging, so reads go on during
    writes (and across processes).
    """
    settings = Settings(data_dir=str(tmp_path))
    migrate(settings)
    connection = sqlite3.connect(settings.sqlite_path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()
