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

from psycopg2.extensions import parse_dsn
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from txpostgres import retrying, txpostgres
from txpostgres.reconnection import DeadConnectionDetector
from zope.interface import implementer

from .interfaces import IStore
from .transaction import JOURNAL_CHANNEL, WRITE_LOCK, Transaction

log = Logger()

T = TypeVar("T")


class _PostgresCursor:
    """
    The L{Cursor} shape over a txpostgres cursor.
    """

    dialect = "postgres"

    def __init__(self, cursor: Any, reactor: Any) -> None:
        self._cursor = cursor
        self._reactor = reactor

    def call(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), function, *args)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Deferred[Any]:
        return self._cursor.execute(sql, tuple(params))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


# How often the store checks that its LISTEN connection is alive.  A server
# restart or a cut connection is found within this, the connection is made
# again, and watchers are told to catch up on what they may have missed.
LISTENER_CHECK_INTERVAL = 2.0

# TCP keepalives and a user timeout for every connection, unless the DSN sets
# its own: a peer that vanished (a crashed host, a partition) shows up as a
# failed connection within about half a minute, not the kernel's 15 minutes.
KEEPALIVE_SETTINGS = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}

# How long stop() waits for transactions in flight before closing anyway.
STOP_TIMEOUT = 10.0


def connection_settings(dsn: str) -> dict[str, str]:
    """
    The keyword arguments for psycopg2.connect beside C{dsn}: the keepalive
    settings the DSN does not choose itself.
    """
    chosen = parse_dsn(dsn)
    return {key: value for key, value in KEEPALIVE_SETTINGS.items() if key not in chosen}


class _Detector(DeadConnectionDetector):  # type: ignore[misc]
    """
    txpostgres's dead-connection detector (fail at once while the server is
    gone; reconnect in the background, backing off up to 10 s), which can
    also be stopped: the base class would go on reconnecting after the store
    stopped, forever if the server stays away.
    """

    stopped = False
    _reconnecting: Deferred[None] | None = None

    def startReconnecting(self, f: Any) -> None:  # noqa: N802  (txpostgres's name)
        if self.stopped:
            return
        call = retrying.RetryingCall(self.reconnect)
        call.reactor = self.reactor
        reconnecting = call.start(self.reconnectionIterator())
        reconnecting.addCallback(lambda _: self.connectionRecovered())
        reconnecting.addErrback(self._gave_up)
        self._reconnecting = reconnecting

    def _gave_up(self, failure: Any) -> None:
        if not failure.check(CancelledError):
            log.failure("reconnecting to the database failed", failure)

    def stop(self) -> None:
        self.stopped = True
        if self._reconnecting is not None and not self._reconnecting.called:
            self._reconnecting.cancel()


def _reconnecting_connection(reactor: Any, cooperator: Any = None) -> Any:
    """
    A txpostgres connection that, once its server goes away, fails what is
    sent to it at once and connects again in the background.
    """
    return txpostgres.Connection(reactor, cooperator, detector=_Detector(reactor=reactor))


class _Pool(txpostgres.ConnectionPool):  # type: ignore[misc]
    """
    txpostgres's pool, of connections that reconnect.
    """

    def __init__(self, dsn: str, reactor: Any, size: int) -> None:
        self.reactor = reactor
        # Every connection made, idle or not (the pool's own set holds the
        # idle ones only), so that stop() reaches them all.
        self.made: list[Any] = []
        super().__init__(None, dsn, min=size, **connection_settings(dsn))

    def connectionFactory(self, reactor: Any, cooperator: Any) -> Any:  # noqa: N802  (txpostgres's name)
        connection = _reconnecting_connection(reactor, cooperator)
        self.made.append(connection)
        return connection


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
        self._check = LoopingCall(self._check_listener)
        self._check.clock = reactor

    async def start(self) -> None:
        try:
            pool = _Pool(self.dsn, self._reactor, self._pool_size)
            await pool.start()
            listener = _reconnecting_connection(self._reactor)
            await listener.connect(self.dsn, **connection_settings(self.dsn))
            listener.addNotifyObserver(self._notified)
            await listener.runOperation(f"LISTEN {JOURNAL_CHANNEL}")
        except Exception as e:
            # Transactions waiting for the pool fail instead of hanging.
            self._ready.errback(e)
            raise
        listener.detector.addRecoveryHandler(self._listener_recovered)
        self._pool, self._listener = pool, listener
        self._ready.callback(None)
        self._check.start(LISTENER_CHECK_INTERVAL, now=False).addErrback(
            lambda failure: log.failure("checking the LISTEN connection failed", failure)
        )

    async def _check_listener(self) -> None:
        # A query on a dead connection fails, which sets its detector
        # reconnecting; _listener_recovered follows.
        listener = self._listener
        if listener is None or listener.detector.connectionIsDead:
            return
        try:
            await listener.runOperation("SELECT 1")
        except Exception as e:
            log.warn("the database connection for change notices failed ({error}); reconnecting", error=e)

    async def _listener_recovered(self) -> None:
        listener = self._listener
        if listener is None:
            return
        await listener.runOperation(f"LISTEN {JOURNAL_CHANNEL}")
        log.info("listening for changes again after a lost database connection")
        # Changes committed while it was down were announced to nobody.
        self._notified(None)

    def watch(self, callback: Callable[[], None]) -> None:
        self._watchers.append(callback)

    def _notified(self, notify: Any) -> None:
        for callback in self._watchers:
            callback()

    def may_have_changed(self) -> bool:
        # Changes arrive by NOTIFY, promptly and without asking.
        return False

    async def stop(self) -> None:
        if self._check.running:
            self._check.stop()
        if self._listener is not None:
            self._listener.detector.stop()
            self._listener.close()
            self._listener = None
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for connection in pool.made:
            connection.detector.stop()
        # Let transactions in flight finish: take every slot of the pool's
        # semaphore, so every connection is back in the pool, then close them.
        # A connection hung on a vanished server is not waited for long.
        try:
            for _ in range(self._pool_size):
                await pool._semaphore.acquire().addTimeout(STOP_TIMEOUT, self._reactor)
        except DeferredTimeout:
            log.warn("closing the database connections with transactions still in flight")
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
                return await body(Transaction(_PostgresCursor(cursor, self._reactor)), *args)

            return Deferred.fromCoroutine(run())

        result: T = await self._pool.runInteraction(interaction)
        return result

    def read(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        return Deferred.fromCoroutine(
            self._interact("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", (), body, args)
        )

    def write(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        return Deferred.fromCoroutine(self._interact("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,), body, args))
