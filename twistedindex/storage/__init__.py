"""
Storage: the database behind the index, on SQLite or PostgreSQL.

Start-up uses L{StartupDatabase}, a plain synchronous connection that brings
the schema up to date and answers the file store's recovery questions before
anything listens.  After that the daemon talks to the database only through
an L{IStore} from L{open_store}.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..config import Settings
from .interfaces import IStore
from .migrate import SchemaError, migrate_postgres, migrate_sqlite
from .transaction import WRITE_LOCK, SyncCursor, Transaction, run_to_end

T = TypeVar("T")

__all__ = ["IStore", "SchemaError", "StartupDatabase", "StorageUnavailable", "Transaction", "open_store"]


class StorageUnavailable(Exception):
    """
    The database cannot be reached or opened.  The message is one line.
    """


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class StartupDatabase:
    """
    A synchronous connection used only while the daemon or the admin tool
    starts: to migrate the schema and to recover the file store.
    """

    def __init__(self, settings: Settings) -> None:
        self.dialect = "postgres" if settings.uses_postgres else "sqlite"
        self._settings = settings
        self._connection: Any
        if self.dialect == "postgres":
            import psycopg2

            try:
                self._connection = psycopg2.connect(settings.database)
            except psycopg2.Error as e:
                raise StorageUnavailable(f"cannot connect to the PostgreSQL database: {_first_line(e)}") from None
        else:
            from .sqlite import connect

            path = settings.sqlite_path
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise StorageUnavailable(f"cannot open the SQLite database {path}: {directory} is not a directory")
            try:
                self._connection = connect(path)
            except sqlite3.Error as e:
                raise StorageUnavailable(f"cannot open the SQLite database {path}: {_first_line(e)}") from None

    def migrate(self) -> int:
        """
        Bring the schema to this code's version.

        :return: the version found (0 for a new database).
        :raises SchemaError: when the database is newer than the code.
        :raises StorageUnavailable: when the database refuses the change.
        """
        try:
            if self.dialect == "postgres":
                return migrate_postgres(self._connection)
            return migrate_sqlite(self._connection, self._settings.sqlite_path)
        except SchemaError:
            raise
        except Exception as e:
            raise StorageUnavailable(f"cannot prepare the database schema: {_first_line(e)}") from None

    def write(self, body: Callable[..., Awaitable[T]], *args: Any) -> T:
        """
        Run a transaction body (see L{Transaction}) as one write
        transaction, synchronously.
        """
        cursor = self._connection.cursor()
        if self.dialect == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        try:
            result = run_to_end(body(Transaction(SyncCursor(cursor, self.dialect)), *args))
        except BaseException:
            if self.dialect == "sqlite":
                cursor.execute("ROLLBACK")
            else:
                self._connection.rollback()
            raise
        finally:
            cursor.close()
        if self.dialect == "sqlite":
            self._connection.execute("COMMIT")
        else:
            self._connection.commit()
        return result

    @contextmanager
    def write_locked(self) -> Iterator[Callable[[str, str], bool]]:
        """
        Hold the writers' lock (the one every write transaction takes) and
        give a C{file_is_stored(filename, blake2b_256)} question to ask under
        it.  File recovery runs inside: no daemon sharing the database can
        link or record a file meanwhile, so the answers stay true while the
        files are settled.
        """
        cursor = self._connection.cursor()
        if self.dialect == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        placeholder = "?" if self.dialect == "sqlite" else "%s"
        query = f"SELECT 1 FROM files WHERE filename = {placeholder} AND blake2b_256 = {placeholder}"

        def file_is_stored(filename: str, blake2b_256: str) -> bool:
            cursor.execute(query, (filename, blake2b_256))
            return cursor.fetchone() is not None

        try:
            yield file_is_stored
        finally:
            # Nothing was written: ending the transaction releases the lock.
            if self.dialect == "sqlite":
                cursor.execute("ROLLBACK")
            else:
                self._connection.rollback()
            cursor.close()

    def close(self) -> None:
        self._connection.close()


def open_store(settings: Settings, reactor: Any) -> IStore:
    """
    The asynchronous store for these settings (not yet started).
    """
    if settings.uses_postgres:
        from .postgres import PostgresStore

        assert settings.database is not None
        return PostgresStore(settings.database, reactor)
    from .sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path, reactor)
