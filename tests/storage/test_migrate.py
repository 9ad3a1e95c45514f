"""
Schema creation and the refusal of databases newer than the code.
"""

from __future__ import annotations

import os
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


def connect(settings: Settings) -> Any:
    if settings.uses_postgres:
        import psycopg2

        return psycopg2.connect(settings.database)
    return sqlite3.connect(settings.sqlite_path, isolation_level=None)


def schema(settings: Settings) -> list[tuple[Any, ...]]:
    """
    The tables, columns, indexes and triggers of a database, comparable.
    """
    connection = connect(settings)
    try:
        cursor = connection.cursor()
        if settings.uses_postgres:
            cursor.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
            )
            columns = cursor.fetchall()
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
            indexes = cursor.fetchall()
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
            return [*columns, *indexes, *cursor.fetchall()]
        cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
        return [(kind, name, " ".join(sql.split())) for kind, name, sql in cursor.fetchall()]
    finally:
        connection.close()


def test_upgrade_from_v1_fills_version_2_data(
    settings: Settings, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    """
    A version 1 database with releases is upgraded to a schema equal to a
    new database's, with each release's classifiers listed and each project
    indexed for search from its newest release.
    """
    from twistedindex.storage import migrate as migration

    database = StartupDatabase(settings)
    try:
        if settings.uses_postgres:
            migration.migrate_postgres(database._connection, target=1)
        else:
            migration.migrate_sqlite(database._connection, settings.sqlite_path, target=1)
    finally:
        database.close()
    connection = connect(settings)
    cursor = connection.cursor()
    p = "%s" if settings.uses_postgres else "?"
    cursor.execute(
        f"INSERT INTO projects (id, name, normalized_name, created) VALUES (1, {p}, {p}, 1)", ("Old.Pkg", "old-pkg")
    )
    rows = [
        (1, "1.0", '{"classifiers": ["Framework :: Twisted"], "keywords": ["old", "pkg"]}', False, "First"),
        (2, "2.0", '{"classifiers": ["Framework :: Twisted", "Typing :: Typed"]}', False, "Second"),
        (3, "3.0", "{}", True, "Yanked"),
    ]
    for release_id, version, metadata, yanked, summary in rows:
        cursor.execute(
            "INSERT INTO releases (id, project_id, version, canonical_version, created, yanked, summary, metadata) "
            f"VALUES ({p}, 1, {p}, {p}, 1, {p}, {p}, {p})",
            (release_id, version, version, yanked, summary, metadata),
        )
    connection.commit()
    connection.close()
    assert migrate(settings) == 1
    upgraded = schema(settings)

    connection = connect(settings)
    cursor = connection.cursor()
    cursor.execute("SELECT release_id, classifier FROM release_classifiers ORDER BY 1, 2")
    assert [tuple(r) for r in cursor.fetchall()] == [
        (1, "Framework :: Twisted"),
        (2, "Framework :: Twisted"),
        (2, "Typing :: Typed"),
    ]
    cursor.execute("SELECT name, version, ordering, summary, keywords FROM search_documents")
    assert [tuple(r) for r in cursor.fetchall()] == [("Old.Pkg", "2.0", 1, "Second", "")]
    connection.close()

    os.makedirs(tmp_path / "fresh")
    if settings.uses_postgres:
        server = request.getfixturevalue("pg_server")
        fresh = Settings(data_dir=str(tmp_path / "fresh"), database=server.create_database())
    else:
        fresh = Settings(data_dir=str(tmp_path / "fresh"))
    try:
        migrate(fresh)
        assert schema(fresh) == upgraded
    finally:
        if settings.uses_postgres:
            server.drop_database(fresh.database)
