# -*- test-case-name: tests.test_mirror -*-
"""
The mirror service: a round every C{--mirror-interval} seconds that brings
the local index up to its upstream.

A round, for an upstream with serials:

 1. The first round lists every project with its serial; later rounds read
    the changelog after the mirror serial (50,000 entries at most per call;
    a full page is followed at once by another round).
 2. Each project that moved is brought forward, several at once: its page
    is read (and refused if older than the changelog promised; from a
    twistedindex, several projects' pages come in one request), its new
    files are streamed and checked, and one transaction applies it all and
    records the project's serial.
 3. The changelog entries are copied into the local journal, in order, up
    to the first entry of a project that failed; the mirror serial moves
    there.  What failed is tried again next round, with everything after it.

A failing project never stops a round, and a failing round never stops the
service: both are logged and retried.  Only one daemon on a database runs
rounds at a time (a lease in the database), and a mirror round that a kill
cuts short is finished by the next one, since nothing is recorded before it
is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..config import Settings
from ..index import PackageIndex
from ..names import normalize
from ..storage import Transaction
from ..storage.rows import MirrorProject
from .client import UpstreamClient, UpstreamError
from .replica import Replica
from .snapshot import ProjectSnapshot, ReleaseMetadata
from .upstream import (
    CHANGELOG_PAGE,
    JournalEntry,
    PageUpstream,
    SerialUpstream,
    Wanted,
    discover,
    replica_batch,
    wanted_from_changelog,
)

log = Logger()

# Seconds between progress reports during a round.
PROGRESS_INTERVAL = 5.0

# How long a round's lease lasts without being renewed: another daemon on
# the same database takes over a mirror whose daemon died after this.
LEASE_SECONDS = 300.0

# How long stopping waits for the projects in hand before giving up on them
# (the next start finishes what they left).
STOP_TIMEOUT = 10.0


class Stopping(Exception):
    """
    The service stopped before the project was begun.
    """


class Progress:
    """
    A round's counts, and their report: projects to do, done and failed,
    files and bytes, rate and time left.
    """

    def __init__(self, todo: int, clock: Callable[[], float]) -> None:
        self.todo = todo
        self.done = 0
        self.failed = 0
        self.files = 0
        self.bytes = 0
        self.removed = 0
        self._clock = clock
        self._started = clock()

    @property
    def elapsed(self) -> float:
        return max(self._clock() - self._started, 1e-6)

    def report(self, final: bool = False) -> None:
        finished = self.done + self.failed
        rate = finished / self.elapsed
        left = (self.todo - finished) / rate if rate > 0 else float("inf")
        log.info(
            "mirror: {finished}/{todo} projects ({failed} failed), {files} files, {mib:.1f} MiB "
            "({mib_rate:.1f} MiB/s, {rate:.1f} projects/s), {removed} files removed, {left}",
            finished=finished,
            todo=self.todo,
            failed=self.failed,
            files=self.files,
            mib=self.bytes / 2**20,
            mib_rate=self.bytes / 2**20 / self.elapsed,
            rate=rate,
            removed=self.removed,
            left=f"done in {self.elapsed:.1f} s" if final else _time_left(left),
        )


def _time_left(seconds: float) -> str:
    if seconds == float("inf"):
        return "time left unknown"
    return f"about {seconds:.0f} s left"


class MirrorService(Service):
    """
    Runs mirror rounds against the upstream in C{settings.mirror_of}.
    """

    def __init__(self, settings: Settings, index: PackageIndex, reactor: Any) -> None:
        assert settings.mirror_of is not None
        self.settings = settings
        self.upstream_url = settings.mirror_of
        self.index = index
        self.store = index.store
        self._reactor = reactor
        self._allowed = frozenset(settings.mirror_project)
        self._held_by: str | None = None
        self._loop = LoopingCall(self._round_safely)
        self._loop.clock = reactor
        self._client: UpstreamClient | None = None
        self._replica: Replica | None = None
        self._following: SerialUpstream | PageUpstream | None = None
        self._round: Deferred[None] | None = None
        self._stopping = False
        self.rounds = 0

    # Service

    def startService(self) -> None:  # noqa: N802  (Twisted's name)
        super().startService()
        self._stopping = False
        self._client = UpstreamClient(self.upstream_url, self._reactor, self.settings.mirror_workers)
        self._replica = Replica(self.index, self._client, self.settings.mirror_workers, self._reactor)
        log.info(
            "mirroring {upstream} every {interval:g} s",
            upstream=self.upstream_url,
            interval=self.settings.mirror_interval,
        )
        self._loop.start(self.settings.mirror_interval, now=True)

    def stopService(self) -> Deferred[None]:  # noqa: N802
        super().stopService()
        self._stopping = True
        if self._loop.running:
            self._loop.stop()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if isinstance(self._following, SerialUpstream):
            self._following.stop()  # projects not yet asked for are left for the next start
        if self._round is not None and not self._round.called:
            log.info("mirror: stopping; finishing the projects in hand (at most {timeout:.0f} s)", timeout=STOP_TIMEOUT)
            waiting: Deferred[None] = Deferred()
            self._round.addBoth(lambda _: None if waiting.called else waiting.callback(None))
            timeout = self._reactor.callLater(STOP_TIMEOUT, lambda: None if waiting.called else waiting.callback(None))
            await waiting
            if timeout.active():
                timeout.cancel()
                log.info("mirror: stopped between projects")
            else:
                log.warn("mirror: stopped with projects unfinished; the next start takes them up again")
        await self._release_lease()
        if self._client is not None:
            await self._client.close()

    # Rounds

    def _round_safely(self) -> Deferred[None]:
        """
        One round, whose every failure is logged here: the loop goes on.
        """
        self._round = Deferred.fromCoroutine(self._rounds())
        self._round.addErrback(lambda failure: log.failure("the mirror round failed; retrying next round", failure))
        return self._round

    async def _rounds(self) -> None:
        holder = await self._take_lease()
        if holder is not None:
            if holder != self._held_by:
                log.info("daemon {holder} runs the mirror rounds; this one waits", holder=holder)
            self._held_by = holder
            return
        self._held_by = None
        assert self._client is not None
        upstream = self._following = await self._upstream(self._client)
        while not self._stopping:
            self.rounds += 1
            more = await (
                self._serial_round(upstream) if isinstance(upstream, SerialUpstream) else self._page_round(upstream)
            )
            if not more:
                break

    async def _upstream(self, client: UpstreamClient) -> SerialUpstream | PageUpstream:
        mode = await self.store.read(_get_state, "mirror_mode")
        if mode == SerialUpstream.mode:
            return SerialUpstream(client, await replica_batch(client))
        if mode == PageUpstream.mode:
            return PageUpstream(client)
        upstream = await discover(client)
        await self.store.write(_set_state, "mirror_mode", upstream.mode)
        how = "simple pages" if isinstance(upstream, PageUpstream) else "serials"
        if isinstance(upstream, SerialUpstream) and upstream.replica:
            how += " (a twistedindex: its /+replica/ pages)"
        log.info("following {upstream} by its {how}", upstream=self.upstream_url, how=how)
        return upstream

    def _is_allowed(self, normalized_name: str) -> bool:
        return not self._allowed or normalized_name in self._allowed

    async def _serial_round(self, upstream: SerialUpstream) -> bool:
        """
        One round against an upstream with serials.

        :return: whether the changelog had more to give at once.
        """
        applied, known = await self.store.read(_mirror_state)
        entries: list[JournalEntry] = []
        # The projects here at the start of a first sync: one not among them
        # has nothing local to read (only this round, holding the lease,
        # adds projects to a mirror).  None: read each project's.
        present: frozenset[str] | None = None
        if applied is None:
            listing = await upstream.listing()
            target = max(listing.values(), default=0)
            wanted = [
                Wanted(name, serial)
                for name, serial in sorted(listing.items())
                if self._is_allowed(normalize(name)) and _behind(known, normalize(name), serial)
            ]
            listed = {normalize(name) for name in listing}
            present = frozenset(await self.store.read(_local_projects))
            wanted += [Wanted(name, None) for name in sorted(present) if name not in listed and self._is_allowed(name)]
            log.info("mirror: first sync, {todo} projects to serial {target}", todo=len(wanted), target=target)
        else:
            entries = await upstream.changelog(applied)
            target = entries[-1].serial if entries else applied
            touched = wanted_from_changelog(e for e in entries if self._is_allowed(e.normalized_name))
            wanted = [w for key, w in sorted(touched.items()) if _behind(known, key, w.serial)]
            if wanted:
                log.info(
                    "mirror: {todo} projects to bring from serial {applied} to {target}",
                    todo=len(wanted),
                    applied=applied,
                    target=target,
                )
        signatures = not upstream.replica and await self._upstream_signs(upstream)
        failed = await self._bring_all(
            wanted, upstream.projects_a_request, lambda w, p: self._bring_serial(upstream, w, p, signatures, present)
        )
        if applied is None:
            reached: int | None = None if failed else target
        else:
            blocked = [e.serial for e in entries if e.normalized_name in failed]
            reached = min(blocked) - 1 if blocked else target
        copied = [e for e in entries if e.serial <= (reached or 0) and self._is_allowed(e.normalized_name)]
        if reached is not None and (applied is None or reached > applied or not failed):
            await self.store.write(_advance, copied, reached, None if failed else self.index.now())
        if failed:
            log.warn(
                "mirror: {count} projects failed; the mirror serial stays at {serial} until they succeed",
                count=len(failed),
                serial=reached,
            )
        return bool(entries) and len(entries) >= CHANGELOG_PAGE and not failed

    async def _upstream_signs(self, upstream: SerialUpstream) -> bool:
        """
        Whether the upstream serves PEP 381 signatures (a twistedindex does;
        Warehouse took them down in 2014).
        """
        try:
            await upstream.client.page("serverkey")
        except UpstreamError:
            return False
        return True

    async def _page_round(self, upstream: PageUpstream) -> bool:
        _, known = await self.store.read(_mirror_state)
        listing = await upstream.listing()
        listed = {normalize(name): (name, serial) for name, serial in listing.items()}
        wanted = [
            Wanted(name, serial)
            for key, (name, serial) in sorted(listed.items())
            if self._is_allowed(key) and (serial is None or _behind(known, key, serial))
        ]
        wanted += [
            Wanted(name, None)
            for name in await self.store.read(_local_projects)
            if name not in listed and self._is_allowed(name)
        ]
        failed = await self._bring_all(wanted, 1, lambda w, p: self._bring_pages(upstream, w, p, known))
        if not failed:
            await self.store.write(_advance, [], None, self.index.now())
        return False

    async def _bring_all(
        self, wanted: list[Wanted], projects_a_request: int, bring: Callable[[Wanted, Progress], Any]
    ) -> set[str]:
        """
        Bring every wanted project forward, as many at once as
        C{mirror_workers} requests for their pages bring.

        :return: the normalized names of those that failed.
        """
        if not wanted:
            return set()
        progress = Progress(len(wanted), self._reactor.seconds)
        reporter = LoopingCall(self._report, progress)
        reporter.clock = self._reactor
        reporter.start(PROGRESS_INTERVAL, now=False)
        limit = DeferredSemaphore(self.settings.mirror_workers * projects_a_request)
        failed: set[str] = set()

        async def one(item: Wanted) -> None:
            async with limit:
                if self._stopping:
                    failed.add(item.normalized_name)
                    return
                try:
                    await bring(item, progress)
                except Exception as e:
                    failed.add(item.normalized_name)
                    if self._stopping:
                        return  # left for the next start, as is every project not begun
                    progress.failed += 1
                    message = _one_line(e)
                    log.warn("mirror: {project} failed: {error}", project=item.normalized_name, error=message)
                    await self.store.write(_failed, item.normalized_name, message)
                else:
                    progress.done += 1

        try:
            await DeferredList([Deferred.fromCoroutine(one(item)) for item in wanted])
        finally:
            reporter.stop()
        progress.report(final=True)
        return failed

    async def _report(self, progress: Progress) -> None:
        progress.report()
        await self._take_lease()  # renewed while the round goes on

    async def _bring_serial(
        self,
        upstream: SerialUpstream,
        wanted: Wanted,
        progress: Progress,
        signatures: bool,
        present: frozenset[str] | None = None,
    ) -> None:
        snapshot = await upstream.project(wanted)
        try:
            self._check_running()
            await self._apply_serial(upstream, wanted, snapshot, progress, signatures, present)
        finally:
            upstream.done_with(wanted)

    async def _apply_serial(
        self,
        upstream: SerialUpstream,
        wanted: Wanted,
        snapshot: ProjectSnapshot | None,
        progress: Progress,
        signatures: bool,
        present: frozenset[str] | None,
    ) -> None:
        """
        Bring the project to C{snapshot}, its upstream page: C{None} if the
        upstream has no such project.
        """
        replica = self.replica
        key = wanted.normalized_name
        if snapshot is None:
            await replica.remove(key, wanted.serial or 0)
            return
        serial = snapshot.serial if snapshot.serial is not None else wanted.serial
        if present is not None and key not in present:
            releases, files = {}, {}
        else:
            _, releases, files = await replica.local(key)
        needed = [f for f in snapshot.files if f.filename not in files or files[f.filename].sha256 != f.sha256]
        describe = [
            version
            for version, release in snapshot.releases.items()
            if release.metadata is None and (version not in releases or version in wanted.versions)
        ]
        # The releases' descriptions, the files and the signature, at once.
        described = DeferredList(
            [Deferred.fromCoroutine(upstream.release(key, version, serial)) for version in describe],
            consumeErrors=True,
        )
        if upstream.replica:
            signed: Deferred[bytes | None] = succeed(snapshot.signature)
        elif signatures:
            signed = Deferred.fromCoroutine(self._signature(upstream, key, serial))
        else:
            signed = succeed(None)
        try:
            prepared = await replica.fetch(needed, describe_releases=False)
        finally:
            results = await described
            signature = await signed
        failures = [value for succeeded, value in results if not succeeded]
        if failures:
            await replica.give_back(prepared)
            failures[0].raiseException()
        descriptions = {r.version: r.metadata for _, r in results if r.metadata is not None}
        applied = await replica.apply(snapshot, prepared, descriptions, serial, signature=signature)
        progress.files += applied.files_added
        progress.bytes += applied.bytes_added
        progress.removed += applied.files_removed

    async def _signature(self, upstream: SerialUpstream, key: str, serial: int | None) -> bytes | None:
        """
        The upstream's signature of the project's page at C{serial}: its
        bytes, C{b""} if it signs none, or C{None} if it has signed a newer
        page meanwhile (the next round copies that one).
        """
        try:
            signed = await upstream.serversig(key)
        except UpstreamError as e:
            log.info("no signature for {project} this round: {error}", project=key, error=_one_line(e))
            return None
        if signed is None:
            return b""
        page_serial, signature = signed
        return signature if page_serial in (None, serial) else None

    async def _bring_pages(
        self, upstream: PageUpstream, wanted: Wanted, progress: Progress, known: dict[str, MirrorProject]
    ) -> None:
        replica = self.replica
        key = wanted.normalized_name
        found = await upstream.project(wanted)
        self._check_running()
        if found is None:
            await replica.remove(key, None)
            return
        snapshot, fingerprint = found
        record = known.get(key)
        if record is not None and record.fingerprint == fingerprint:
            return
        _, releases, files = await replica.local(key)
        needed = [f for f in snapshot.files if f.filename not in files or files[f.filename].sha256 != f.sha256]
        prepared = await replica.fetch(needed, describe_releases=True)
        descriptions: dict[str, ReleaseMetadata] = {}
        for file in sorted(prepared, key=lambda p: p.snapshot.packagetype != "bdist_wheel"):
            version = file.snapshot.version
            if version not in releases and version not in descriptions and file.release_metadata is not None:
                descriptions[version] = file.release_metadata
        applied = await replica.apply(snapshot, prepared, descriptions, None, fingerprint, wanted.serial)
        progress.files += applied.files_added
        progress.bytes += applied.bytes_added
        progress.removed += applied.files_removed

    def _check_running(self) -> None:
        """
        :raises Stopping: if the service is stopping: a project whose page
            arrives then is left for the next start, not begun.
        """
        if self._stopping:
            raise Stopping("the mirror is stopping")

    @property
    def replica(self) -> Replica:
        assert self._replica is not None, "the service is not running"
        return self._replica

    # The lease

    async def _take_lease(self) -> str | None:
        """
        Take (or renew) the lease on running rounds.

        :return: C{None} if this daemon holds it now, else its holder.
        """
        now = self.index.now()
        expires = now + int(max(LEASE_SECONDS, 3 * self.settings.mirror_interval) * 1_000_000)
        files = self.index.files
        return await self.store.write(_take_lease, files.instance_name, files.is_alive, now, expires)

    async def _release_lease(self) -> None:
        try:
            await self.store.write(_release_lease, self.index.files.instance_name)
        except Exception:
            log.failure("releasing the mirror lease failed")


def _behind(known: dict[str, MirrorProject], key: str, serial: int | None) -> bool:
    record = known.get(key)
    return record is None or serial is None or record.serial < serial


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# The transactions


async def _get_state(tx: Transaction, key: str) -> str | None:
    return await tx.get_state(key)


async def _set_state(tx: Transaction, key: str, value: str) -> None:
    await tx.set_state(key, value)


async def _mirror_state(tx: Transaction) -> tuple[int | None, dict[str, MirrorProject]]:
    applied = await tx.get_state("mirror_serial")
    return (int(applied) if applied is not None else None), await tx.mirror_projects()


async def _local_projects(tx: Transaction) -> list[str]:
    return [project.normalized_name for project in await tx.list_projects()]


async def _failed(tx: Transaction, normalized_name: str, error: str) -> None:
    await tx.mirror_project_failed(normalized_name, error[:1000])


async def _advance(tx: Transaction, entries: list[JournalEntry], serial: int | None, synced: int | None) -> None:
    """
    Copy upstream changelog entries into the journal and move the mirror
    serial past them; note the time of a round that applied everything.
    """
    for entry in entries:
        await tx.append_journal(
            entry.name,
            entry.normalized_name,
            entry.version,
            entry.action,
            entry.timestamp * 1_000_000,
            serial=entry.serial,
        )
    if serial is not None:
        await tx.set_state("mirror_serial", str(serial))
    if synced is not None:
        await tx.set_state("mirror_synced", str(synced))


async def _take_lease(
    tx: Transaction, instance: str, is_alive: Callable[[str], bool], now: int, expires: int
) -> str | None:
    """
    The lease names the daemon by its file-store instance, whose lock shows
    whether it still runs: a killed daemon's lease is taken at once, and
    the expiry is a backstop only.
    """
    held = await tx.get_state("mirror_lease")
    if held is not None:
        holder, _, until = held.partition("|")
        if holder != instance and int(until or 0) > now and is_alive(holder):
            return holder
    await tx.set_state("mirror_lease", f"{instance}|{expires}")
    return None


async def _release_lease(tx: Transaction, instance: str) -> None:
    held = await tx.get_state("mirror_lease")
    if held is not None and held.partition("|")[0] == instance:
        await tx.set_state("mirror_lease", f"{instance}|0")
