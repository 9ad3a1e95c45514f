# -*- test-case-name: tests.test_tap -*-
"""
Put the daemon together: data directory, database, file store, domain, web
resources and listeners, in the order that keeps start-up safe.

 1. The data directory is created and checked for writing.
 2. The schema is migrated, synchronously, before anything listens.
 3. The file store is recovered from any crash (see L{twistedindex.filestore}).
 4. The service tree is built.  Listeners bind when the service starts; the
    database connections open at the same time, and requests that arrive
    before they are ready wait for them.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from .config import Settings
from .filestore import FileStore
from .index import PackageIndex
from .mirror.service import MirrorService
from .pep381 import Pep381
from .storage import IStore, SchemaError, StartupDatabase, StorageUnavailable, Transaction, open_store
from .web import build_root
from .web.request import IndexSite

log = Logger()


class StartupError(Exception):
    """
    The daemon cannot start.  The message is one line for the operator.
    """


def prepare_data_dir(path: str) -> None:
    """
    Create the data directory if needed and make sure it can be written.
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise StartupError(f"cannot use data directory {path}: {e.strerror}") from None


def prepare_storage(settings: Settings) -> FileStore:
    """
    Bring the database schema up to date, recover the file store, and
    record whether the index is a mirror.
    """
    prepare_data_dir(settings.data_dir)
    files = FileStore(settings.data_dir)
    try:
        database = StartupDatabase(settings)
        try:
            database.migrate()
            with database.write_locked() as file_is_stored:
                files.recover(file_is_stored)
            upstream = database.write(_claim_mirror, settings.mirror_of)
        finally:
            database.close()
    except (StorageUnavailable, SchemaError) as e:
        raise StartupError(str(e)) from None
    if upstream is not None and settings.mirror_of is None:
        log.warn(
            "this index is a mirror of {upstream}; without --mirror-of it is served read-only and not synced",
            upstream=upstream,
        )
    return files


async def _claim_mirror(tx: Transaction, upstream: str | None) -> str | None:
    """
    Make the database a mirror of C{upstream}, if given: only an empty index
    becomes a mirror, and a mirror follows one upstream for good (serials
    from two upstreams do not mix).

    :return: the upstream the database mirrors, if any.
    """
    current = await tx.get_state("mirror_of")
    if upstream is None or current == upstream:
        return current
    if current is not None:
        raise StartupError(
            f"this database mirrors {current}; a mirror of {upstream} needs a database and data directory of its own"
        )
    if await tx.list_projects():
        raise StartupError(f"this database holds an index of its own; a mirror of {upstream} needs an empty one")
    await tx.set_state("mirror_of", upstream)
    return upstream


class _Listener(StreamServerEndpointService):
    """
    A listening endpoint that binds when L{bind} is called, from
    C{makeService}: a port that cannot be bound then stops start-up with a
    clear message, under both C{twistd} and C{twist}.
    """

    _raiseSynchronously = True

    def __init__(self, description: str, endpoint: Any, factory: Any) -> None:
        super().__init__(endpoint, factory)
        self.description = description
        self.port: Any = None

    def bind(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
            raise StartupError(f"cannot listen on {self.description}: {reason}") from None
        assert self._waitingForPort is not None
        self._waitingForPort.addCallback(self._bound)

    def _bound(self, port: Any) -> Any:
        self.port = port
        return port

    def announce(self) -> None:
        address = self.port.getHost()
        host, number = getattr(address, "host", None), getattr(address, "port", None)
        if number is not None:
            shown = f"[{host}]" if host and ":" in host else host
            log.info("serving HTTP on http://{host}:{port}/", host=shown, port=number)
        else:
            log.info("serving HTTP on {address}", address=address)

    def privilegedStartService(self) -> None:
        if self._waitingForPort is None:
            self.bind()
        else:
            Service.privilegedStartService(self)


class CheeseshopService(MultiService):
    """
    The daemon: the store's connections plus the listeners (children).
    """

    def __init__(
        self,
        store: IStore,
        files: FileStore,
        index: PackageIndex,
        pep381: Pep381,
        mirror: MirrorService | None,
        reactor: Any,
    ) -> None:
        super().__init__()
        self.store = store
        self.files = files
        self.index = index
        self.pep381 = pep381
        self.mirror = mirror
        self._reactor = reactor
        self.ready: Deferred[None] | None = None

    def bind(self) -> None:
        """
        Bind every listener now.

        :raises StartupError: when one cannot be bound.
        """
        for listener in self:
            if isinstance(listener, _Listener):
                listener.bind()

    def startService(self) -> None:
        self.ready = Deferred.fromCoroutine(self._start())
        self.ready.addErrback(self._startFailed)
        super().startService()

    async def _start(self) -> None:
        await self.store.start()
        await self.index.start()
        self.pep381.start(signs=await self.index.mirror_of() is None)
        if self.mirror is not None:
            self.mirror.startService()
        for listener in self:
            if isinstance(listener, _Listener):
                listener.announce()

    def _startFailed(self, failure: Any) -> None:
        log.critical("cannot open the database: {error}", error=failure.getErrorMessage())
        self._reactor.stop()

    async def _stop(self) -> None:
        stopping = [Deferred.fromCoroutine(_maybe(s.stopService())) for s in reversed(list(self))]
        if self.mirror is not None and self.mirror.running:
            stopping.append(Deferred.fromCoroutine(_maybe(self.mirror.stopService())))
        await DeferredList(stopping)
        try:
            await self.pep381.stop()
        except Exception:
            log.failure("writing the last download counts failed")
        self.index.stop()
        await self.store.stop()
        self.files.close_instance()

    def stopService(self) -> Deferred[None]:
        super(MultiService, self).stopService()
        return Deferred.fromCoroutine(self._stop())


async def _maybe(result: Any) -> None:
    if isinstance(result, Deferred):
        await result


def build_service(settings: Settings, reactor: Any) -> CheeseshopService:
    """
    The whole daemon for C{settings}, ready for C{twistd} to start.  Its
    listeners are not bound yet; see L{CheeseshopService.bind}.

    :raises StartupError: when the data directory or the database is unusable.
    """
    files = prepare_storage(settings)
    store = open_store(settings, reactor)
    files.open_instance()
    index = PackageIndex(store, files, reactor)
    pep381 = Pep381(settings.data_dir, settings.ring_mirror, store, reactor)
    root = build_root(index, settings, pep381)
    site = IndexSite(root, files, settings.max_upload_size, reactor, settings.access_log)
    site.simple = root.simple
    mirror = MirrorService(settings, index, reactor) if settings.mirror_of else None
    service = CheeseshopService(store, files, index, pep381, mirror, reactor)
    for description in settings.listen:
        _Listener(description, serverFromString(reactor, description), site).setServiceParent(service)
    return service
