# -*- test-case-name: tests.test_mirror -*-
"""
Bringing one local project to the state an upstream snapshot shows.

The files come first: each new file is streamed from the upstream, checked
against its size and digests, and prepared in the file store exactly as an
upload is.  Then one write transaction makes the rows match the snapshot,
linking each prepared file into place under the write lock, and records the
project's upstream serial.  A file is visible only once its row commits, a
removed file goes only after its row's deletion commits, and a transaction
that fails settles its files under the write lock (see
L{twistedindex.filestore}): a crash or a bad upstream at any point leaves
nothing half-applied.

These writes go around L{PackageIndex}'s public changes on purpose: those
refuse every change on a mirror.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from attrs import frozen
from packaging.utils import canonicalize_version
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore
from twisted.logger import Logger

from .. import dists
from .. import metadata as core_metadata
from ..filestore import Digests, FileStore, Placement, Removal, StagedFile, SyncBatch, link_all, pay_all
from ..index import PackageIndex, settle_placement, settle_removal
from ..storage import Transaction
from ..storage.rows import File, NewFile, Project, Release
from .client import UpstreamClient, UpstreamError
from .snapshot import FileSnapshot, ProjectSnapshot, ReleaseMetadata

log = Logger()

# Files up to this size are read into memory, not streamed to disk.
SMALL_FILE = 1024 * 1024

# The largest PEP 658 metadata file fetched from an upstream.
METADATA_LIMIT = 16 * 1024 * 1024


@frozen
class PreparedFile:
    """
    An upstream file downloaded, checked, and ready to be linked into place.

    :ivar metadata_sha256: the SHA-256 of its PEP 658 metadata file, when one
        is served beside it.
    :ivar release_metadata: its release's description, read from the file's
        own metadata (for upstreams whose pages do not describe releases).
    :ivar owed: the batch whose payment makes it durable, if not paid yet
        (paid in the write that records it).
    """

    snapshot: FileSnapshot
    digests: Digests
    placement: Placement
    metadata_sha256: str | None
    release_metadata: ReleaseMetadata | None
    owed: SyncBatch | None = None


@frozen
class Applied:
    """
    What applying a snapshot did: the project's serial afterwards, and
    counts for the progress report.
    """

    serial: int
    files_added: int
    bytes_added: int
    files_removed: int


class Replica:
    """
    Applies upstream snapshots to the local index.
    """

    def __init__(self, index: PackageIndex, client: UpstreamClient, downloads: int, reactor: Any) -> None:
        self.index = index
        self.store = index.store
        self.files = index.files
        self.client = client
        self._reactor = reactor
        self._downloads = DeferredSemaphore(downloads)
        self._writes = _GroupedWrites(self.store)

    # Reading the local state

    async def local(self, normalized_name: str) -> tuple[Project | None, dict[str, Release], dict[str, File]]:
        async def read(tx: Transaction) -> tuple[Project | None, dict[str, Release], dict[str, File]]:
            project = await tx.get_project(normalized_name)
            if project is None:
                return None, {}, {}
            releases = {r.version: r for r in await tx.releases_for_project(project.id)}
            files = {f.filename: f for f in await tx.files_for_project(project.id)}
            return project, releases, files

        return await self.store.read(read)

    # Files

    async def fetch(self, files: Iterable[FileSnapshot], describe_releases: bool) -> list[PreparedFile]:
        """
        Download and prepare C{files}, several at once.  If any fails, those
        prepared are given back to the store and the first error is raised.
        """
        files = list(files)
        inline = [file for file in files if file.content is not None]
        fetching = [
            Deferred.fromCoroutine(self._fetch(file, describe_releases)) for file in files if file.content is None
        ]
        if inline:
            fetching.append(Deferred.fromCoroutine(self._take_inline(inline, describe_releases)))
        prepared: list[PreparedFile] = []
        failures = []
        for succeeded, value in await DeferredList(fetching, consumeErrors=True):
            if not succeeded:
                failures.append(value)
            elif isinstance(value, list):  # the inline files
                prepared += value
            else:
                prepared.append(value)
        if failures:
            await self.give_back(prepared)
            failures[0].raiseException()
        return prepared

    async def _fetch(self, file: FileSnapshot, describe_release: bool) -> PreparedFile:
        async with self._downloads:
            if file.size is not None and file.size <= SMALL_FILE:
                # Most files are small: read into memory, then one trip to
                # a worker thread writes, checks, reads and prepares them,
                # leaving the reactor thread only the HTTP.
                body = await self.client.fetch_small(file.url, file.size)
                staged, taken = await self.index.blocking(_take_small, self.files, body, file, describe_release)
            else:
                staged = self.files.stage()
                try:
                    await self.client.download(file.url, staged, file.size, file.sha256)
                    # One trip to a worker thread: flush, check, read the
                    # metadata, and prepare.
                    taken = await self.index.blocking(_take_download, self.files, staged, file, describe_release)
                except BaseException:
                    staged.discard()
                    raise
            try:
                return await self._completed(file, staged, taken)
            finally:
                if staged is not None:
                    staged.discard()  # nothing once prepared

    async def _take_inline(self, files: list[FileSnapshot], describe_releases: bool) -> list[PreparedFile]:
        """
        Files that came inside their project's page: all written, checked
        and prepared here on the reactor thread, as twisted.web reads small
        files, with the fsyncs they owe left to one batch, paid in the write
        that records them (see L{_GroupedWrites}).  (Handing each file to a
        thread cost more than writing it: the threads spent their time
        taking the GIL from one another, measured by bench/mirror_bench.py.)
        """
        taken: list[tuple[StagedFile | None, _Taken]] = []
        prepared: list[PreparedFile] = []
        async with self._downloads:
            batch = self.files.batch()
            try:
                _take_inline(self.files, files, describe_releases, batch, taken)
                for file, (staged, result) in zip(files, taken, strict=True):
                    prepared.append(await self._completed(file, staged, result, batch))
            except BaseException:
                batch.close()
                # Those completed, and those taken and placed but not yet
                # completed.
                rest = list(zip(files, taken, strict=False))[len(prepared) :]
                await self.give_back(
                    prepared + [PreparedFile(f, r[0], r[3], None, None) for f, (_, r) in rest if r[3] is not None]
                )
                for staged, _ in taken:
                    if staged is not None:
                        staged.discard()
                raise
        return prepared

    async def _completed(
        self, file: FileSnapshot, staged: StagedFile | None, taken: _Taken, owed: SyncBatch | None = None
    ) -> PreparedFile:
        """
        A taken file, prepared: when the upstream serves other metadata bytes
        than the wheel holds, its own are fetched and the file prepared with
        them.
        """
        digests, metadata, described, placement = taken
        if placement is None:
            assert staged is not None  # a file prepared from bytes has its placement
            metadata = await self._upstream_metadata(file)
            placement = await self.index.blocking(self.files.prepare, staged, file.filename, metadata)
        return PreparedFile(
            file, digests, placement, hashlib.sha256(metadata).hexdigest() if metadata else None, described, owed
        )

    async def _upstream_metadata(self, file: FileSnapshot) -> bytes:
        page = await self.client.page(file.url + ".metadata")
        body = page.body or b""
        if len(body) > METADATA_LIMIT or hashlib.sha256(body).hexdigest() != file.core_metadata:
            raise UpstreamError(f"{file.url}.metadata: does not match its sha256 {file.core_metadata}")
        return body

    async def give_back(self, prepared: Iterable[PreparedFile]) -> None:
        """
        Drop prepared files that will not be recorded.
        """
        prepared = list(prepared)
        for batch in _owed(prepared):
            batch.close()
        await self._settle(prepared, None)

    # Applying

    async def apply(
        self,
        snapshot: ProjectSnapshot,
        prepared: list[PreparedFile],
        descriptions: dict[str, ReleaseMetadata],
        serial: int | None,
        fingerprint: str | None = None,
        listed_serial: int | None = None,
        signature: bytes | None = None,
    ) -> Applied:
        """
        Make the local project match C{snapshot} in one transaction.

        :param descriptions: release descriptions fetched besides the
            snapshot's own, by version.
        :param serial: the upstream serial to give the project; C{None} for
            an upstream without serials, where each change gets a local
            journal entry and serial instead.
        :param fingerprint: a digest of the page applied (upstreams without
            serials), to know it again.
        :param listed_serial: the project's serial in such an upstream's
            listing, if it gives one, to know it again.
        :param signature: the upstream's PEP 381 signature of the project's
            page at C{serial} (C{b""}: it has none; C{None}: leave it).
        """
        now = self.index.now()
        try:
            serial_after, removal = await self._writes.apply(
                (self.files, snapshot, prepared, descriptions, serial, fingerprint, listed_serial, signature, now),
                _owed(prepared),
            )
        except BaseException:
            await self._settle(prepared, None)
            raise
        await self._settle(prepared, removal, committed=True)
        self.index.announce(snapshot.normalized_name, serial_after)
        return Applied(
            serial_after,
            len(prepared),
            sum(p.digests.size for p in prepared),
            len(removal.files) if removal is not None else 0,
        )

    async def remove(self, normalized_name: str, serial: int | None) -> int:
        """
        Remove a project the upstream no longer has.  The bookkeeping keeps
        C{serial}, so that the removal is not fetched again.
        """
        now = self.index.now()
        serial_after, removal = await self.store.write(_remove_project, self.files, normalized_name, serial, now)
        if removal is not None:
            await self.index.blocking(removal.done)
        if serial_after:
            self.index.announce(normalized_name, serial_after)
        return serial_after

    async def _settle(self, prepared: list[PreparedFile], removal: Removal | None, committed: bool = False) -> None:
        if committed:
            # The records of files put in place are their second names:
            # unlinking them frees nothing, and costs less here than a trip
            # to a worker thread.
            for file in prepared:
                if file.placement.placed:
                    file.placement.done()
        # Placements never put at their paths (their files go) in one trip
        # to a worker thread.
        plain = [file.placement for file in prepared if not file.placement.placed]
        if plain:
            await self.index.blocking(_undo_all, plain)
        for file in prepared:
            if file.placement.placed and not committed:
                # Linked, then the transaction failed: settled under the
                # write lock, asking the database (see filestore).
                await self.store.write(
                    settle_placement, file.placement, file.snapshot.filename, file.digests.blake2b_256
                )
        if removal is not None:
            if committed:
                await self.index.blocking(removal.done)
            else:
                await self.store.write(settle_removal, removal)


# The most projects applied in one write transaction.
GROUP_LIMIT = 16


_Outcome = tuple[int, Removal | None]

# A project waiting for its write: its _apply arguments, the batches it
# owes, and what hears its outcome.
_Waiting = tuple[tuple[Any, ...], list[SyncBatch], Deferred[_Outcome]]


class _GroupedWrites:
    """
    Applies projects' snapshots (L{_apply}), those that arrive while a
    write runs together in the next one: the fsyncs their files owe (one
    syncfs, in the write, before anything is applied), the trip to the
    SQLite thread, the write transaction and its commit are paid once for
    the group.  (Paying on a worker thread first cost one more trip per
    project; measured by bench/mirror_bench.py.)  A project's outcome is
    its own: if the group's transaction fails, each of its projects is
    applied again in a transaction of its own, so one bad project fails
    alone; a failed payment fails every project that owed it, even then.
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._waiting: list[_Waiting] = []
        self._writing = False

    def apply(self, arguments: tuple[Any, ...], owed: list[SyncBatch]) -> Deferred[_Outcome]:
        """
        Pay the batches C{owed}, then C{_apply(tx, *arguments)}, in a write
        transaction, perhaps with others.
        """
        done: Deferred[_Outcome] = Deferred()
        self._waiting.append((arguments, owed, done))
        if not self._writing:
            Deferred.fromCoroutine(self._write_waiting())
        return done

    async def _write_waiting(self) -> None:
        self._writing = True
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:GROUP_LIMIT], self._waiting[GROUP_LIMIT:]
                await self._write(group)
        except BaseException:
            # (A cancellation, say: no project is left waiting for a write
            # that will not come.)
            waiting, self._waiting = self._waiting, []
            for _, _, done in waiting:
                done.errback()
            raise
        finally:
            self._writing = False

    async def _write(self, group: list[_Waiting]) -> None:
        try:
            if len(group) > 1 and await self._write_together(group):
                return
            for arguments, owed, done in group:
                try:
                    outcome = await self._store.write(_pay_and_apply, owed, arguments)
                except Exception:
                    done.errback()
                else:
                    done.callback(outcome)
        except BaseException:
            for _, _, done in group:
                if not done.called:
                    done.errback()
            raise

    async def _write_together(self, group: list[_Waiting]) -> bool:
        """
        Apply the group in one transaction; C{False} if that failed.
        """
        planned: list[Removal] = []
        try:
            outcomes = await self._store.write(
                _apply_all, [arguments for arguments, _, _ in group], planned, [b for _, owed, _ in group for b in owed]
            )
        except Exception as e:
            log.debug("mirror: a group of {count} failed ({error}); applying each alone", count=len(group), error=e)
            # The removals planned in the failed transaction are settled
            # (under the write lock, asking the database) before each
            # project plans its own again.
            for removal in planned:
                try:
                    await self._store.write(settle_removal, removal)
                except Exception:
                    log.failure("settling {record} failed; the next start does", record=removal.record)
            return False
        for (_, _, done), outcome in zip(group, outcomes, strict=True):
            done.callback(outcome)
        return True


def _owed(prepared: list[PreparedFile]) -> list[SyncBatch]:
    """
    The batches that C{prepared} files owe, each once.
    """
    return list({id(file.owed): file.owed for file in prepared if file.owed is not None}.values())


# What taking a file gives: its digests, its metadata file's bytes, its
# release's description (when asked for), and its placement (None when the
# upstream's metadata file must be fetched first).
_Taken = tuple[Digests, bytes | None, ReleaseMetadata | None, Placement | None]


def _undo_all(placements: list[Placement]) -> None:
    for placement in placements:
        placement.undo()


def _take_small(
    store: FileStore, body: bytes, file: FileSnapshot, describe_release: bool, batch: SyncBatch | None = None
) -> tuple[StagedFile | None, _Taken]:
    """
    A file read whole: check its SHA-256, then, when it need not be opened
    for its metadata, write it straight to its record (no staged file:
    C{None} in its place); otherwise stage it and go on as
    L{_take_download} does.
    """
    digests = Digests.of(body)
    if not hmac.compare_digest(digests.sha256, file.sha256):
        raise UpstreamError(f"{file.url}: sha256 {digests.sha256} instead of {file.sha256}")
    if not describe_release:
        metadata = _metadata_sent(file)
        if metadata is not None or not file.filename.endswith(".whl") or file.core_metadata is False:
            _check_digests(file, digests)
            placement = store.prepare_bytes(body, digests, file.filename, metadata, batch)
            return None, (digests, metadata, None, placement)
    staged = store.stage()
    try:
        staged.write(body)
        return staged, _take_download(store, staged, file, describe_release, batch)
    except BaseException:
        staged.discard()
        raise


def _take_inline(
    store: FileStore,
    files: list[FileSnapshot],
    describe_release: bool,
    batch: SyncBatch,
    taken: list[tuple[StagedFile | None, _Taken]],
) -> None:
    """
    L{_take_small} for each of C{files}, whose bytes came inline, onto
    C{taken}, their fsyncs left to C{batch}.  If one fails, C{taken} holds
    those taken before it, for the caller to give back.
    """
    for file in files:
        assert file.content is not None
        if file.size is not None and len(file.content) != file.size:
            raise UpstreamError(f"{file.url}: {len(file.content)} bytes instead of {file.size}")
        taken.append(_take_small(store, file.content, file, describe_release, batch))


def _take_download(
    store: FileStore, staged: StagedFile, file: FileSnapshot, describe_release: bool, batch: SyncBatch | None = None
) -> _Taken:
    """
    On a worker thread: make a downloaded file durable, check its other
    digests, read its metadata, and prepare it for the store.  The
    placement is C{None} when the wheel's METADATA is not the metadata file
    the upstream serves (the caller fetches that one).
    """
    digests = staged.finish(batch)
    _check_digests(file, digests)
    is_wheel = file.filename.endswith(".whl")
    contents = None
    if is_wheel or describe_release:
        try:
            contents = dists.inspect(staged.path, file.filename)
        except Exception as e:
            log.debug("cannot read the metadata of {filename}: {error}", filename=file.filename, error=e)
    described = _describe(contents.metadata) if describe_release and contents is not None else None
    metadata = None
    if is_wheel and file.core_metadata is not False:
        extracted = contents.metadata if contents is not None and contents.is_wheel else None
        if file.core_metadata is not None and (
            extracted is None or not hmac.compare_digest(hashlib.sha256(extracted).hexdigest(), file.core_metadata)
        ):
            return digests, None, described, None
        metadata = extracted
    return digests, metadata, described, store.prepare(staged, file.filename, metadata, batch)


def _metadata_sent(file: FileSnapshot) -> bytes | None:
    """
    The metadata file the upstream sent along with C{file}, checked against
    the SHA-256 its page gives, or C{None} if it sent none.
    """
    if file.metadata_content is None or not isinstance(file.core_metadata, str):
        return None
    if not hmac.compare_digest(hashlib.sha256(file.metadata_content).hexdigest(), file.core_metadata):
        raise UpstreamError(f"{file.url}.metadata: does not match its sha256 {file.core_metadata}")
    return file.metadata_content


def _check_digests(file: FileSnapshot, digests: Digests) -> None:
    for name, expected, actual in (
        ("md5", file.md5, digests.md5),
        ("blake2b_256", file.blake2b_256, digests.blake2b_256),
    ):
        if expected is not None and not hmac.compare_digest(expected, actual):
            raise UpstreamError(f"{file.url}: {name} {actual} instead of {expected}")


def _describe(raw: bytes) -> ReleaseMetadata | None:
    """
    A release's description from a distribution's own metadata, leniently:
    a mirror takes what its upstream took.
    """
    try:
        parsed = core_metadata.from_file(raw)
    except Exception:
        return None
    return ReleaseMetadata(
        parsed.summary,
        parsed.description,
        parsed.description_content_type,
        str(parsed.requires_python) if parsed.requires_python else None,
        core_metadata.as_record(parsed),
    )


# The transactions


async def _apply(
    tx: Transaction,
    store: FileStore,
    snapshot: ProjectSnapshot,
    prepared: list[PreparedFile],
    descriptions: dict[str, ReleaseMetadata],
    serial: int | None,
    fingerprint: str | None,
    listed_serial: int | None,
    signature: bytes | None,
    now: int,
) -> tuple[int, Removal | None]:
    normalized = snapshot.normalized_name
    changes: list[tuple[str | None, str]] = []  # for upstreams without serials
    project = await tx.get_project(normalized)
    new_project = project is None
    # (A new project has no releases, files or roles to read.)
    releases: dict[str, Release] = {}
    files: dict[str, File] = {}
    if project is None:
        project = await tx.insert_project(snapshot.name, normalized, now)
        changes.append((None, "create"))
    else:
        if project.name != snapshot.name:
            await tx.rename_project(project.id, snapshot.name)
            changes.append((None, f"rename from {project.name}"))
        releases = {r.version: r for r in await tx.releases_for_project(project.id)}
        files = {f.filename: f for f in await tx.files_for_project(project.id)}
    wanted = {f.filename: f for f in snapshot.files}

    # What goes: releases the upstream no longer has, and files it no longer
    # has (or has with other bytes).
    gone_releases = [r for version, r in releases.items() if version not in snapshot.releases]
    gone_release_ids = {r.id for r in gone_releases}
    gone_files = [
        f
        for f in files.values()
        if f.release_id in gone_release_ids or f.filename not in wanted or wanted[f.filename].sha256 != f.sha256
    ]
    removal = None
    if gone_files:
        removal = await tx.blocking(store.plan_removal, [(f.blake2b_256, f.filename) for f in gone_files])
    for file in gone_files:
        if file.release_id not in gone_release_ids:
            await tx.delete_file(file.id)
            changes.append((file.version, f"remove file {file.filename}"))
    for release in gone_releases:
        await tx.delete_release(release.id)
        changes.append((release.version, "remove release"))

    # Releases: new ones, new descriptions, yanks.
    for version, shown in snapshot.releases.items():
        description = descriptions.get(version) or shown.metadata
        release = releases.get(version)
        if release is None:
            values = description.values() if description is not None else {}
            created = shown.created or min(
                (f.upload_time for f in snapshot.files if f.version == version and f.upload_time), default=now
            )
            release = await tx.insert_release(project.id, version, canonicalize_version(version), created, **values)
            releases[version] = release
            changes.append((version, "new release"))
        elif description is not None and _differs(release, description):
            await tx.update_release_metadata(release.id, **description.values())
            changes.append((version, "update description"))
        if (release.yanked, release.yanked_reason if release.yanked else None) != (shown.yanked, shown.yanked_reason):
            await tx.set_release_yanked(release.id, shown.yanked, shown.yanked_reason)
            changes.append((version, "yank release" if shown.yanked else "unyank release"))

    # New files, linked into place under the write lock, all at once.
    kept = {f.filename for f in files.values() if f not in gone_files}
    adding = [file for file in prepared if file.snapshot.filename not in kept]
    taken = await tx.existing_filenames([file.snapshot.filename for file in adding])
    if taken:
        raise UpstreamError(f"{sorted(taken)[0]} is already a file of another project here")
    if adding:
        await tx.blocking(link_all, [file.placement for file in adding])
    rows = []
    for file in adding:
        shown = file.snapshot
        release = releases[shown.version]
        yanked = release.yanked or shown.yanked
        rows.append(
            NewFile(
                release.id,
                shown.filename,
                shown.packagetype,
                shown.python_version,
                file.digests.size,
                file.digests.sha256,
                file.digests.blake2b_256,
                file.digests.md5,
                shown.upload_time or now,
                requires_python=shown.requires_python,
                metadata_sha256=file.metadata_sha256,
                comment_text=shown.comment_text,
                uploaded_by=shown.uploaded_by,
                yanked=yanked,
                yanked_reason=(shown.yanked_reason or release.yanked_reason) if yanked else None,
            )
        )
        changes.append((shown.version, f"add {shown.python_version} file {shown.filename}"))
    await tx.insert_files(rows)

    if snapshot.roles is not None:
        await _match_roles(tx, project, snapshot.roles, now, new_project)
    await tx.refresh_search_document(project.id)

    if serial is not None:
        # The upstream's journal entries are copied in order by the round
        # (see MirrorService); the project takes its upstream serial now.
        await tx.set_project_serial(project.id, serial)
        after = serial
    else:
        after = project.last_serial
        for version, action in changes:
            after = await tx.append_journal(snapshot.name, normalized, version, action, now)
    await tx.set_mirror_project(normalized, serial if serial is not None else (listed_serial or 0), fingerprint)
    if signature is not None:
        # The upstream's PEP 381 signature of this very page, or b"" when it
        # has none.
        if signature:
            await tx.set_serversig(normalized, after, signature)
        else:
            await tx.delete_serversig(normalized)
    return after, removal


async def _pay_and_apply(tx: Transaction, owed: list[SyncBatch], arguments: tuple[Any, ...]) -> _Outcome:
    """
    Pay the batches C{owed} (nothing for those paid already), then
    L{_apply}: L{_apply_all} for one.
    """
    return (await _apply_all(tx, [arguments], [], owed))[0]


async def _apply_all(
    tx: Transaction, group: list[tuple[Any, ...]], planned: list[Removal], owed: list[SyncBatch]
) -> list[_Outcome]:
    """
    L{_apply} for each of a group, noting on C{planned} the removals it
    plans (for the caller to settle if the transaction fails).
    """
    if owed:
        await tx.blocking(pay_all, owed)
    outcomes = []
    for arguments in group:
        outcome = await _apply(tx, *arguments)
        if outcome[1] is not None:
            planned.append(outcome[1])
        outcomes.append(outcome)
    return outcomes


async def _remove_project(
    tx: Transaction, store: FileStore, normalized_name: str, serial: int | None, now: int
) -> tuple[int, Removal | None]:
    project = await tx.get_project(normalized_name)
    removal = None
    after = serial or 0
    if project is not None:
        files = await tx.files_for_project(project.id)
        if files:
            removal = await tx.blocking(store.plan_removal, [(f.blake2b_256, f.filename) for f in files])
        await tx.delete_project(project.id)
        if serial is None:
            after = await tx.append_journal(project.name, normalized_name, None, "remove project", now)
    await tx.set_mirror_project(normalized_name, after, None)
    return after, removal


def _differs(release: Release, description: ReleaseMetadata) -> bool:
    return (
        release.summary,
        release.description,
        release.description_content_type,
        release.requires_python,
        release.metadata,
    ) != (
        description.summary,
        description.description,
        description.description_content_type,
        description.requires_python,
        description.record,
    )


async def _match_roles(
    tx: Transaction, project: Project, roles: tuple[tuple[str, str], ...], now: int, new_project: bool
) -> None:
    """
    Give the project the upstream's roles, making (password-less) accounts
    for the users this index has not seen.
    """
    current = set() if new_project else set(await tx.roles_for_project(project.id))
    wanted = set(roles)
    for role, name in current - wanted:
        user = await tx.get_user(name)
        if user is not None and (role, name) not in wanted:
            await tx.delete_role(project.id, user.id)
    for role, name in sorted(wanted - current):
        user = await tx.get_user(name)
        if user is None:
            user = await tx.insert_user(name, None, None, now)
        await tx.set_role(project.id, user.id, role)
