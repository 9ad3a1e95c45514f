# -*- test-case-name: tests.storage.test_migrate -*-
"""
Schema versions and their upgrades.

The schema ships as SQL files: C{schema/<dialect>/v1.sql} creates version 1,
and C{schema/<dialect>/upgrade-to-v<N>.sql} takes version N-1 to N.  A new
database is created at version 1 and brought forward by the same steps as an
old one, so there is one account of each change, and every step is run on
every fresh database.  A step may also carry a data migration (see
L{DATA_MIGRATIONS}), written with the same L{Transaction} queries the daemon
uses.  Each step (SQL, data, version number) commits as one transaction.  A
one-row C{schema_version} table records where a database stands.

This runs synchronously, from C{makeService}, before anything listens: a
daemon never serves from a database it has not brought up to date, and a
database newer than the code is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import Any

from twisted.logger import Logger

from .transaction import SyncCursor, Transaction, run_to_end

log = Logger()

SCHEMA_VERSION = 4

# Held while migrating, so that daemons starting together on one PostgreSQL
# database upgrade it once.
_PG_MIGRATION_LOCK = 0x7477_6973_7465_6401  # "twisted" + 1


class SchemaError(Exception):
    """
    The database cannot be used by this version of the code.
    """


async def _fill_search_and_classifiers(tx: Transaction) -> None:
    """
    Version 2: index every project for search, and list every release's
    classifiers.
    """
    for project in await tx.list_projects():
        for release in await tx.releases_for_project(project.id):
            await tx.set_release_classifiers(release.id, release.metadata.get("classifiers", []))
        await tx.refresh_search_document(project.id)


# Data migrations by the version they belong to, run after that version's SQL.
DATA_MIGRATIONS: dict[int, Callable[[Transaction], Awaitable[None]]] = {
    2: _fill_search_and_classifiers,
}


def schema_sql(dialect: str, name: str) -> str:
    """
    The text of one schema file, e.g. C{schema_sql("sqlite", "v1.sql")}.
    """
    return (resources.files(__package__) / "schema" / dialect / name).read_text(encoding="utf-8")


def _steps(dialect: str, found: int, target: int) -> Iterator[tuple[int, str]]:
    if found == 0:
        yield 1, schema_sql(dialect, "v1.sql")
        found = 1
    for version in range(found + 1, target + 1):
        yield version, schema_sql(dialect, f"upgrade-to-v{version}.sql")


def _too_new(found: int) -> SchemaError:
    return SchemaError(
        f"the database has schema version {found}, newer than the {SCHEMA_VERSION} this "
        "twistedindex knows; run a newer twistedindex or restore a backup"
    )


def _statements(script: str) -> Iterator[str]:
    """
    The statements of an SQLite script, trigger bodies kept whole.
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and line.strip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


def migrate_sqlite(connection: sqlite3.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """
    Create or upgrade an SQLite database (an autocommit connection) to
    schema version C{target}.  Before upgrading an existing database, copy it
    to C{<path>-backup-v<old>}.

    :return: the version the database had (0 when it was new).
    """
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    found = connection.execute("SELECT version FROM schema_version").fetchone()[0] if exists else 0
    if found > SCHEMA_VERSION:
        raise _too_new(found)
    if found >= target:
        return found
    if found > 0:
        backup_path = f"{path}-backup-v{found}"
        with sqlite3.connect(backup_path) as backup:
            connection.backup(backup)
        log.info("copied the database to {backup} before upgrading it", backup=backup_path)
    for version, script in _steps("sqlite", found, target):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                connection.execute(statement)
            _finish_step(connection.cursor(), "sqlite", version)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        log.info("brought the SQLite database to schema version {version}", version=version)
    return found


def _finish_step(cursor: Any, dialect: str, version: int) -> None:
    """
    Run a step's data migration and record its version (in its transaction).
    """
    data_migration = DATA_MIGRATIONS.get(version)
    if data_migration is not None:
        run_to_end(data_migration(Transaction(SyncCursor(cursor, dialect))))
    placeholder = "?" if dialect == "sqlite" else "%s"
    if version == 1:
        cursor.execute(f"INSERT INTO schema_version (version) VALUES ({placeholder})", (version,))
    else:
        cursor.execute(f"UPDATE schema_version SET version = {placeholder}", (version,))


def migrate_postgres(connection: Any, target: int = SCHEMA_VERSION) -> int:
    """
    Create or upgrade a PostgreSQL database (a psycopg2 connection) to schema
    version C{target}.

    :return: the version the database had (0 when it was new).
    """
    cursor = connection.cursor()
    cursor.execute("SELECT pg_advisory_lock(%s)", (_PG_MIGRATION_LOCK,))
    try:
        cursor.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        exists = cursor.fetchone()[0]
        found = 0
        if exists:
            cursor.execute("SELECT version FROM schema_version")
            found = cursor.fetchone()[0]
        connection.commit()
        if found > SCHEMA_VERSION:
            raise _too_new(found)
        for version, script in _steps("postgres", found, target):
            try:
                cursor.execute(script)
                _finish_step(cursor, "postgres", version)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            log.info("brought the PostgreSQL database to schema version {version}", version=version)
        return found
    finally:
        cursor.execute("SELECT pg_advisory_unlock(%s)", (_PG_MIGRATION_LOCK,))
        connection.commit()
