# -*- test-case-name: tests.storage.test_contract -*-
"""
The SQLite backend: the zero-configuration default.

SQLite work stays off the reactor thread.  Each connection lives on its own
single worker thread: one connection writes, one reads (WAL lets reads go on
while a write is in progress).  A transaction body runs entirely on its
connection's thread: the cursor here executes synchronously and hands back a
finished awaitable, so the body's coroutine runs to its end in one go, with
one thread hop per transaction instead of one per statement.  The price is a
rule: a transaction body awaits its L{Transaction}'s methods and nothing else.
A body that awaits anything unfinished is stopped with L{TransactionBodyError}.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from .interfaces import IStore
from .transaction import SyncCursor, Transaction, TransactionBodyError, run_to_end

__all__ = ["SQLiteStore", "TransactionBodyError", "connect"]

log = Logger()

T = TypeVar("T")

# How often the reader asks SQLite whether another connection committed: the
# backstop behind the per-request check of the write-ahead log (see
# SQLiteStore.may_have_changed).
WATCH_INTERVAL = 0.5

# The least time between two looks at the write-ahead log from the request
# path (see SQLiteStore.may_have_changed).
CHECK_INTERVAL = 0.001

# After the write-ahead log is seen to change, the watchers are told again
# this many seconds later, for a commit not yet visible at the first look.
FOLLOW_UP_DELAYS = (0.01, 0.05)

# Seconds a connection waits for another process's write lock (the admin tool,
# or a second daemon on the same file) before giving up.
BUSY_TIMEOUT = 30.0


def connect(path: str) -> sqlite3.Connection:
    """
    Open an SQLite connection the way every part of twistedindex uses it:
    autocommit mode (transactions are explicit), WAL, foreign keys on.
    """
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    # WAL with synchronous=NORMAL is durable against process crashes; FULL
    # also survives power loss at the cost of an fsync per commit.
    connection.execute("PRAGMA synchronous = FULL")
    return connection


class _Worker:
    """
    One connection and the one thread that uses it.
    """

    def __init__(self, path: str, reactor: Any, name: str) -> None:
        self._path = path
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=name)
        self._connection: sqlite3.Connection | None = None

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        if self._connection is not None:
            self._pool.callInThread(self._connection.close)
        self._pool.stop()

    def run(self, begin: str, body: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, self._thd_run, begin, body, args)

    def data_version(self) -> Deferred[int]:
        return deferToThreadPool(self._reactor, self._pool, self._thd_data_version)

    def _thd_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect(self._path)
        return self._connection

    def _thd_data_version(self) -> int:
        return int(self._thd_connection().execute("PRAGMA data_version").fetchone()[0])

    def _thd_run(self, begin: str, body: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        connection = self._thd_connection()
        connection.execute(begin)
        try:
            result = run_to_end(body(Transaction(SyncCursor(connection.cursor(), "sqlite")), *args))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result


@implementer(IStore)
class SQLiteStore:
    """
    L{IStore} on an SQLite file.
    """

    dialect = "sqlite"

    def __init__(self, path: str, reactor: Any) -> None:
        self.path = path
        self._reactor = reactor
        self._writer = _Worker(path, reactor, "cheeseshop-sqlite-writer")
        self._reader = _Worker(path, reactor, "cheeseshop-sqlite-reader")
        self._watchers: list[Callable[[], None]] = []
        self._poll = LoopingCall(self._check_data_version)
        self._poll.clock = reactor
        self._data_version: int | None = None
        self._wal_state: tuple[int, ...] | None = None
        self._wal_fd: int | None = None
        self._wal_checked = 0.0
        self._stopped = False

    async def start(self) -> None:
        self._writer.start()
        self._reader.start()
        self._data_version = await self._reader.data_version()
        self.may_have_changed()
        self._poll.start(WATCH_INTERVAL, now=False).addErrback(
            lambda failure: log.failure("watching the database failed", failure)
        )

    async def stop(self) -> None:
        self._stopped = True
        if self._poll.running:
            self._poll.stop()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self._writer.stop()
        self._reader.stop()

    def read(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        # A deferred BEGIN in WAL mode reads one consistent snapshot.
        return self._reader.run("BEGIN", body, args)

    def write(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        # IMMEDIATE takes the write lock up front: writers across processes
        # queue here, so journal serials are handed out one at a time.
        return self._writer.run("BEGIN IMMEDIATE", body, args)

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    async def _check_data_version(self) -> None:
        # data_version changes when any other connection (our own writer, the
        # admin tool, another daemon) commits.
        version = await self._reader.data_version()
        if version != self._data_version:
            self._data_version = version
            self._notify()

    def _notify(self) -> None:
        if self._stopped:
            return
        for callback in self._watchers:
            callback()

    def may_have_changed(self) -> bool:
        """
        Every commit writes to the write-ahead log, so a change of its size,
        time or inode shows that someone committed.  The log is looked at
        (an fstat) at most once a millisecond, so the hottest requests pay a
        clock read only.

        A commit's frames reach the log a moment before readers can see
        them, so a change seen here is looked for again twice, soon after
        (L{FOLLOW_UP_DELAYS}): another process's commit reaches the pages
        within about 50 ms at most, usually at once, and the data_version
        poll is the backstop.
        """
        now = time.monotonic()
        if now - self._wal_checked < CHECK_INTERVAL:
            return False
        self._wal_checked = now
        try:
            if self._wal_fd is None:
                self._wal_fd = os.open(self.path + "-wal", os.O_RDONLY)
            status = os.fstat(self._wal_fd)
        except FileNotFoundError:
            state = (0, 0, 0, 0)
        else:
            # A log unlinked by SQLite (when every connection closed) shows
            # no links: open the new one next time.
            state = (status.st_mtime_ns, status.st_size, status.st_ino, status.st_nlink)
            if status.st_nlink == 0:
                os.close(self._wal_fd)
                self._wal_fd = None
        if state != self._wal_state:
            self._wal_state = state
            for delay in FOLLOW_UP_DELAYS:
                self._reactor.callLater(delay, self._notify)
            return True
        return False
