# -*- test-case-name: tests.storage.test_migrate -*-
"""
Schema versions and their upgrades.

The schema ships as SQL files: C{schema/<dialect>/v<N>.sql} creates version N
from nothing, and C{schema/<dialect>/upgrade-to-v<N>.sql} takes version N-1 to
N.  A one-row C{schema_version} table records where a database stands.

This runs synchronously, from C{makeService}, before anything listens: a
daemon never serves from a database it has not brought up to date, and a
database newer than the code is refused.
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from typing import Any

from twisted.logger import Logger

log = Logger()

SCHEMA_VERSION = 1

# Held while migrating, so that daemons starting together on one PostgreSQL
# database upgrade it once.
_PG_MIGRATION_LOCK = 0x7477_6973_7465_6401  # "twisted" + 1


class SchemaError(Exception):
    """
    The database cannot be used by this version of the code.
    """


def schema_sql(dialect: str, name: str) -> str:
    """
    The text of one schema file, e.g. C{schema_sql("sqlite", "v1.sql")}.
    """
    return (resources.files(__package__) / "schema" / dialect / name).read_text(encoding="utf-8")


def _too_new(found: int) -> SchemaError:
    return SchemaError(
        f"the database has schema version {found}, newer than the {SCHEMA_VERSION} this "
        "twistedindex knows; run a newer twistedindex or restore a backup"
    )


def migrate_sqlite(connection: sqlite3.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """
    Create or upgrade an SQLite database to schema version C{target}.

    Before an upgrade the database is copied to C{<path>-backup-v<old>}.

    :return: the version the database had (0 when it was new).
    """
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    found = connection.execute("SELECT version FROM schema_version").fetchone()[0] if exists else 0
    if found > SCHEMA_VERSION:
        raise _too_new(found)
    if found == target:
        return found
    if found == 0:
        _sqlite_script(connection, schema_sql("sqlite", f"v{target}.sql"), target, create=True)
        log.info("created an SQLite database at schema version {version}", version=target)
        return found
    backup_path = f"{path}-backup-v{found}"
    with sqlite3.connect(backup_path) as backup:
        connection.backup(backup)
    log.info("copied the database to {backup} before upgrading it", backup=backup_path)
    for version in range(found + 1, target + 1):
        _sqlite_script(connection, schema_sql("sqlite", f"upgrade-to-v{version}.sql"), version, create=False)
        log.info("upgraded the database to schema version {version}", version=version)
    return found


def _sqlite_script(connection: sqlite3.Connection, script: str, version: int, create: bool) -> None:
    # executescript() runs in autocommit mode; the explicit BEGIN ... COMMIT
    # makes the whole step one transaction, so a failure leaves the old schema.
    record = (
        f"INSERT INTO schema_version (version) VALUES ({version});"
        if create
        else f"UPDATE schema_version SET version = {version};"
    )
    try:
        connection.executescript(f"BEGIN;\n{script}\n{record}\nCOMMIT;")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


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
        if found == target:
            return found
        steps: list[tuple[int, str, bool]]
        if found == 0:
            steps = [(target, schema_sql("postgres", f"v{target}.sql"), True)]
        else:
            steps = [
                (version, schema_sql("postgres", f"upgrade-to-v{version}.sql"), False)
                for version in range(found + 1, target + 1)
            ]
        for version, script, create in steps:
            try:
                cursor.execute(script)
                if create:
                    cursor.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                else:
                    cursor.execute("UPDATE schema_version SET version = %s", (version,))
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            log.info("brought the PostgreSQL database to schema version {version}", version=version)
        return found
    finally:
        cursor.execute("SELECT pg_advisory_unlock(%s)", (_PG_MIGRATION_LOCK,))
        connection.commit()


def sqlite_schema_dump(connection: sqlite3.Connection) -> list[str]:
    """
    The schema of an SQLite database as sorted SQL text, to compare an upgraded
    database with a freshly created one.
    """
    rows = connection.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name").fetchall()
    return [" ".join(row[0].split()) for row in rows]
