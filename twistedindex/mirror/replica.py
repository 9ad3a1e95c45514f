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
from ..filestore import Digests, FileStore, Placement, Removal
from ..index import PackageIndex, settle_placement, settle_removal
from ..storage import Transaction
from ..storage.rows import File, Project, Release
from .client import UpstreamClient, UpstreamError
from .snapshot import FileSnapshot, ProjectSnapshot, ReleaseMetadata

log = Logger()

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
    """

    snapshot: FileSnapshot
    digests: Digests
    placement: Placement
    metadata_sha256: str | None
    release_metadata: ReleaseMetadata | None


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
        results = await DeferredList(
            [Deferred.fromCoroutine(self._fetch(file, describe_releases)) for file in files], consumeErrors=True
        )
        prepared = [value for succeeded, value in results if succeeded]
        failures = [value for succeeded, value in results if not succeeded]
        if failures:
            await self.give_back(prepared)
            failures[0].raiseException()
        return prepared

    async def _fetch(self, file: FileSnapshot, describe_release: bool) -> PreparedFile:
        async with self._downloads:
            staged = self.files.stage()
            try:
                await self.client.download(file.url, staged, file.size, file.sha256)
                digests = await self.index.blocking(staged.finish)
                _check_digests(file, digests)
                metadata, described = await self._metadata(file, staged.path, describe_release)
                placement = await self.index.blocking(self.files.prepare, staged, file.filename, metadata)
            finally:
                staged.discard()  # nothing once prepared
        return PreparedFile(
            file, digests, placement, hashlib.sha256(metadata).hexdigest() if metadata else None, described
        )

    async def _metadata(
        self, file: FileSnapshot, path: str, describe_release: bool
    ) -> tuple[bytes | None, ReleaseMetadata | None]:
        """
        The file's PEP 658 metadata bytes (wheels the upstream serves them
        for), and its release's description if asked for.
        """
        if file.packagetype != "bdist_wheel" and not describe_release:
            return None, None
        try:
            contents = await self.index.blocking(dists.inspect, path, file.filename)
        except Exception as e:
            log.debug("cannot read the metadata of {filename}: {error}", filename=file.filename, error=e)
            contents = None
        described = _describe(contents.metadata) if describe_release and contents is not None else None
        if not file.filename.endswith(".whl") or file.core_metadata is False:
            return None, described
        extracted = contents.metadata if contents is not None and contents.is_wheel else None
        if file.core_metadata is None or (
            extracted is not None and hmac.compare_digest(hashlib.sha256(extracted).hexdigest(), file.core_metadata)
        ):
            return extracted, described
        # The upstream serves other bytes than the wheel holds: take its own.
        page = await self.client.page(file.url + ".metadata")
        body = page.body or b""
        if len(body) > METADATA_LIMIT or hashlib.sha256(body).hexdigest() != file.core_metadata:
            raise UpstreamError(f"{file.url}.metadata: does not match its sha256 {file.core_metadata}")
        return body, described

    async def give_back(self, prepared: Iterable[PreparedFile]) -> None:
        """
        Drop prepared files that were never linked.
        """
        for file in prepared:
            await self.index.blocking(file.placement.undo)

    # Applying

    async def apply(
        self,
        snapshot: ProjectSnapshot,
        prepared: list[PreparedFile],
        descriptions: dict[str, ReleaseMetadata],
        serial: int | None,
        fingerprint: str | None = None,
        listed_serial: int | None = None,
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
        """
        now = self.index.now()
        try:
            serial_after, removal = await self.store.write(
                _apply, self.files, snapshot, prepared, descriptions, serial, fingerprint, listed_serial, now
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
        for file in prepared:
            if not file.placement.linked:
                await self.index.blocking(file.placement.undo)
            elif committed:
                await self.index.blocking(file.placement.done)
            else:
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

    # Signatures

    async def set_serversig(self, normalized_name: str, serial: int, signature: bytes | None) -> None:
        async def change(tx: Transaction) -> None:
            if signature is None:
                await tx.delete_serversig(normalized_name)
            else:
                await tx.set_serversig(normalized_name, serial, signature)

        await self.store.write(change)


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
    now: int,
) -> tuple[int, Removal | None]:
    normalized = snapshot.normalized_name
    changes: list[tuple[str | None, str]] = []  # for upstreams without serials
    project = await tx.get_project(normalized)
    if project is None:
        project = await tx.insert_project(snapshot.name, normalized, now)
        changes.append((None, "create"))
    elif project.name != snapshot.name:
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
            created = min(
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

    # New files, linked into place under the write lock.
    kept = {f.filename for f in files.values() if f not in gone_files}
    for file in prepared:
        shown = file.snapshot
        if shown.filename in kept:
            continue
        elsewhere = await tx.get_file(shown.filename)
        if elsewhere is not None:
            raise UpstreamError(f"{shown.filename} is already a file of another project here")
        await tx.blocking(file.placement.link)
        release = releases[shown.version]
        await tx.insert_file(
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
            yanked=release.yanked or shown.yanked,
            yanked_reason=(shown.yanked_reason or release.yanked_reason) if (release.yanked or shown.yanked) else None,
        )
        changes.append((shown.version, f"add {shown.python_version} file {shown.filename}"))

    if snapshot.roles is not None:
        await _match_roles(tx, project, snapshot.roles, now)
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
    return after, removal


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


async def _match_roles(tx: Transaction, project: Project, roles: tuple[tuple[str, str], ...], now: int) -> None:
    """
    Give the project the upstream's roles, making (password-less) accounts
    for the users this index has not seen.
    """
    current = set(await tx.roles_for_project(project.id))
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
