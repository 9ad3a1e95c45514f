# -*- test-case-name: tests.storage.test_contract -*-
"""
The PostgreSQL backend, through txpostgres.

txpostgres (last released 2019) is used only here, behind L{IStore}, so it can
be replaced without touching the domain.  Its cursors return Deferreds from
C{execute}, which is the L{Cursor} shape the shared queries expect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from txpostgres import txpostgres
from zope.interface import implementer

from .interfaces import IStore
from .transaction import JOURNAL_CHANNEL, Transaction

log = Logger()

T = TypeVar("T")

# Every write transaction takes this transaction-level advisory lock first.
# Writers across all daemons on the database therefore run one at a time, and
# a journal serial is handed out and committed before the next writer starts:
# a mirror that has read serial N will never later find a new N-1.
WRITE_LOCK = 0x7477_6973_7465_6402


class _PostgresCursor:
    """
    The L{Cursor} shape over a txpostgres cursor.
    """

    dialect = "postgres"

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Deferred[Any]:
        return self._cursor.execute(sql, tuple(params))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


@implementer(IStore)
class PostgresStore:
    """
    L{IStore} on a PostgreSQL database, with a pool of connections.
    """

    dialect = "postgres"

    def __init__(self, dsn: str, reactor: Any, pool_size: int = 4) -> None:
        self.dsn = dsn
        self._reactor = reactor
        self._pool_size = pool_size
        self._pool: Any = None
        self._ready: Deferred[None] = Deferred()
        self._watchers: list[Callable[[], None]] = []
        self._listener: Any = None

    async def start(self) -> None:
        try:
            pool = txpostgres.ConnectionPool(None, self.dsn, min=self._pool_size)
            pool.reactor = self._reactor
            await pool.start()
            listener = txpostgres.Connection(self._reactor)
            await listener.connect(self.dsn)
            listener.addNotifyObserver(self._notified)
            await listener.runOperation(f"LISTEN {JOURNAL_CHANNEL}")
        except Exception as e:
            # Transactions waiting for the pool fail instead of hanging.
            self._ready.errback(e)
            raise
        self._pool, self._listener = pool, listener
        self._ready.callback(None)

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def _notified(self, notify: Any) -> None:
        for callback in self._watchers:
            callback()

    def may_have_changed(self) -> bool:
        # Changes arrive by NOTIFY, promptly and without asking.
        return False

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Let transactions in flight finish: take every slot of the pool's
        # semaphore, so every connection is back in the pool, then close them.
        for _ in range(self._pool_size):
            await pool._semaphore.acquire()
        pool.close()

    async def _interact(
        self, preamble: str, params: tuple[Any, ...], body: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> T:
        if self._pool is None:
            # Requests can arrive while the pool is still connecting.
            await self._ready

        def interaction(cursor: Any) -> Deferred[T]:
            async def run() -> T:
                await cursor.execute(preamble, params)
                return await body(Transaction(_PostgresCursor(cursor)), *args)

            return Deferred.fromCoroutine(run())

        result: T = await self._pool.runInteraction(interaction)
        return result

    def read(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        return Deferred.fromCoroutine(
            self._interact("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", (), body, args)
        )

    def write(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        return Deferred.fromCoroutine(self._interact("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,), body, args))
