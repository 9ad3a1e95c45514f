# -*- test-case-name: tests.test_filestore -*-
"""
The package files, content-addressed under the data directory.

A file lives at C{packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>}, where
C{b2} is its BLAKE2b-256, as on PyPI.  A wheel's METADATA sits beside it as
C{<filename>.metadata} (PEP 658).

How a file arrives, so that a crash at any point leaves nothing half-stored:

 1. It is received into C{tmp/<instance>/recv-*} while hashed, then flushed
    and fsynced (L{StagedFile}).
 2. L{FileStore.prepare} renames it, with a wheel's METADATA beside it, to
    a record C{tmp/<instance>/place-<b2>-<n>} that says what it is, and
    hard-links it at its path if that is free (L{Placement.prelink}).  The
    record is a second name of the placed file: recovery finds the placed
    file by comparing the two.
 3. Inside the write transaction that records it (holding the database's
    write lock, after the checks that no committed row has its name or its
    bytes), L{Placement.link} links what prepare could not.  A file already
    at that path then belongs to no committed row: it is left over from a
    crash or a failed upload, and is replaced.
 4. The transaction commits.  Only a committed row makes a file visible:
    pages and downloads follow rows, never the directory.  (Every fsync
    the steps above owe is paid before this; a mirror taking many small
    files pays them together, see L{SyncBatch}.)
 5. L{Placement.done} unlinks the record.  If the transaction failed, the
    index asks the database, again under the write lock, whether a row holds
    the file (a commit's outcome can be unknown) and calls L{Placement.done}
    or L{Placement.undo}, which unlinks what was linked, then the record.

Records are plain names in the staging directory, never a directory each:
unlinking a record frees no inode (the file keeps its place in the store),
so storing many files deletes nothing.  That matters on ext4, whose inode
allocator steps over every inode freed in the last minute or so, one
buffer lookup each: a directory made and removed per file slowed a mirror's
sync several times over (measured by bench/mirror_bench.py).

Removal runs the other way: L{FileStore.plan_removal} records the files in
the transaction that deletes their rows, and L{Removal.done} unlinks them
after the commit.  A deleted file's name is never used again, so nothing can
be placed at its path meanwhile.

Each process stages under its own C{tmp/<instance>/} and holds a lock on it
while it lives.  On start, L{FileStore.recover} visits the directories nobody
holds (their process died) and settles what it finds by asking the database:
a placed file is kept if a committed row holds it and unlinked if not; a
planned removal is finished if the row is gone.  Daemons sharing a data
directory (on a filesystem whose locks work across hosts) never settle each
other's uploads in flight.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import io
import itertools
import os
import secrets
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TypeVar

from attrs import Factory, define, frozen
from twisted.logger import Logger

log = Logger()

T = TypeVar("T")

_RECEIVING = "recv-"
_PLACING = "place-"
_REMOVING = "remove-"
_NEW = ".new-"
METADATA_SUFFIX = ".metadata"


@frozen
class Digests:
    """
    The hex digests of one file.
    """

    size: int
    md5: str
    sha256: str
    blake2b_256: str

    @classmethod
    def of(cls, content: bytes) -> Digests:
        return cls(
            len(content),
            hashlib.md5(content, usedforsecurity=False).hexdigest(),
            hashlib.sha256(content).hexdigest(),
            hashlib.blake2b(content, digest_size=32).hexdigest(),
        )


def relative_path(blake2b_256: str, filename: str) -> str:
    """
    Where a file lives, relative to the store root, with C{/} separators.
    """
    return f"{blake2b_256[:2]}/{blake2b_256[2:4]}/{blake2b_256[4:]}/{filename}"


# A file's device and inode numbers.  A record keeps its file's inode
# allocated, so while the record exists, a path showing that identity holds
# the recorded file (what os.path.samefile tells, for one stat, not two).
Identity = tuple[int, int]


def _identity(status: os.stat_result) -> Identity:
    return status.st_dev, status.st_ino


def _identity_at(path: str) -> Identity | None:
    try:
        return _identity(os.stat(path))
    except FileNotFoundError:
        return None


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directories(path: str, batch: SyncBatch | None = None) -> None:
    """
    C{os.makedirs}, fsyncing the parent of every directory it creates, so
    that a new directory survives a power loss with the file linked into it.
    """
    # Tried first, not looked at first: most paths are new leaves under an
    # existing parent, and each system call counts here.
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    except FileNotFoundError:
        _make_directories(os.path.dirname(path), batch)
        try:
            os.mkdir(path)
        except FileExistsError:
            return
    parent = os.path.dirname(path)
    if batch is None:
        _fsync_directory(parent)
    else:
        batch.directory(parent)


def _find_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs  # type: ignore[no-any-return]


_syncfs = _find_syncfs()


# Errors by which syncfs says it cannot be used here at all (a sandbox that
# forbids it, say), rather than that a write failed.
_SYNCFS_UNAVAILABLE = (errno.ENOSYS, errno.EPERM, errno.EACCES)


class SyncBatch:
    """
    The fsyncs owed by several files written one after another (a mirror
    taking a project's small files), paid together by L{pay}: one
    C{syncfs(2)} of the store's filesystem where Linux offers it, which
    writes back and flushes everything at once, instead of three or four
    fsyncs a file (measured: bench/mirror_bench.py).  Elsewhere, each file
    and directory is fsynced in turn.  Nothing that needs the files to be
    durable may happen before L{pay} returns.  Use it in a C{with} block,
    which lets go of the descriptors it holds.
    """

    def __init__(self, root: str) -> None:
        self._root = root
        # syncfs reports the write-back errors met since its descriptor was
        # opened: opened before the batch's writes, it misses none of
        # theirs (even one that another caller's syncfs reported first).
        self._filesystem = os.open(root, os.O_RDONLY | os.O_DIRECTORY) if _syncfs is not None else None
        self._opened = next(_batches_opened)
        # What pay_all found: paid, or the error that means a write may be
        # lost (kept, so that paying again never passes for durable).
        self.paid = False
        self.failure: OSError | None = None
        self._owed = False
        # Without syncfs: descriptors of the files, not their paths (they
        # are renamed to their records before the batch is paid).
        self._files: list[int] = []
        self._directories: set[str] = set()

    def file(self, descriptor: int) -> None:
        self._owed = True
        if self._filesystem is None:
            self._files.append(os.dup(descriptor))

    def directory(self, path: str) -> None:
        self._owed = True
        if self._filesystem is None:
            self._directories.add(path)

    def pay(self) -> None:
        pay_all([self])

    def _fsync_each(self) -> None:
        for descriptor in self._files:
            os.fsync(descriptor)
        for directory in sorted(self._directories):
            _fsync_directory(directory)

    def _sync_filesystem(self, descriptor: int) -> None:
        global _syncfs
        syncfs = _syncfs
        if syncfs is not None:
            if syncfs(descriptor) == 0:
                return
            code = ctypes.get_errno()
            if code not in _SYNCFS_UNAVAILABLE:
                # A write-back error: some write may be lost.
                raise OSError(code, f"syncfs: {os.strerror(code)}", self._root)
            log.warn("syncfs is not available ({error}); fsyncing each file instead", error=os.strerror(code))
            _syncfs = None
        # syncfs is forbidden here: this batch, whose descriptors were not
        # kept, is made durable by sync(2); later ones fsync each file.
        os.sync()

    def close(self) -> None:
        for descriptor in self._files:
            os.close(descriptor)
        if self._filesystem is not None:
            os.close(self._filesystem)
        self._owed, self._files, self._directories, self._filesystem = False, [], set(), None

    def __enter__(self) -> SyncBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_batches_opened = itertools.count()


def pay_all(batches: list[SyncBatch]) -> None:
    """
    Pay several batches, whose files are all written, at once: with
    syncfs, one call on the descriptor of the batch opened first, which
    reports the write-back errors met since then, and so those of every
    batch's writes.  Batches without syncfs pay their own fsyncs.  A batch
    paid already is passed over; one whose payment failed fails again.
    """
    unpaid = [batch for batch in batches if not batch.paid]
    try:
        for batch in unpaid:
            if batch.failure is not None:
                raise batch.failure
        syncing = [batch for batch in unpaid if batch._filesystem is not None and batch._owed]
        if syncing:
            first = min(syncing, key=lambda batch: batch._opened)
            assert first._filesystem is not None
            first._sync_filesystem(first._filesystem)
        for batch in unpaid:
            if batch._filesystem is None:
                batch._fsync_each()
    except OSError as e:
        for batch in unpaid:
            batch.failure = e
        raise
    else:
        for batch in unpaid:
            batch.paid = True
    finally:
        for batch in unpaid:
            batch.close()


def _link_into_place(recorded: str, target: str, prelinked: Identity | None = None) -> bool:
    """
    Hard-link C{recorded} at C{target}, replacing a leftover file there.  A
    replacement is linked under a hidden name beside the record first (where
    a crash leaves it for recovery to remove), then renamed over the target.

    :param prelinked: when L{Placement.prelink} put it there, the recorded
        file's identity: one look at the target then shows whether it still
        is (the record, which still exists, keeps that inode from being
        reused).  It can be gone: another process may replace it as a
        leftover, then give up its own upload.
    :return: whether the target changed (C{False}: it was this file already).
    """
    if prelinked is not None and _identity_at(target) == prelinked:
        return False
    for attempt in range(3):
        _make_directories(os.path.dirname(target))
        try:
            os.link(recorded, target)
            return True
        except FileExistsError:
            break
        except FileNotFoundError:
            # A removal in another process pruned an emptied parent between
            # our mkdir and link: make it again.
            if attempt == 2:
                raise
    if os.path.samefile(recorded, target):
        return False
    temporary = os.path.join(os.path.dirname(recorded), "." + os.path.basename(recorded))
    os.link(recorded, temporary)
    try:
        os.replace(temporary, target)
    except BaseException:
        _unlink_quietly(temporary)
        raise
    log.info("replaced a leftover file at {target}", target=target)
    return True


def _write_new(path: str, content: bytes, batch: SyncBatch | None) -> Identity:
    """
    Write a new file of C{content}, durably, or leave its fsync to C{batch};
    return its identity.  (Unbuffered: one write call as a rule, and no
    isatty() call.)
    """
    with open(path, "xb", buffering=0) as f:
        try:
            view = memoryview(content)
            while view:  # a short write is followed by one that says why
                view = view[f.write(view) :]
            if batch is None:
                os.fsync(f.fileno())
            else:
                batch.file(f.fileno())
            return _identity(os.fstat(f.fileno()))
        except BaseException:
            _unlink_quietly(path)
            raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except FileNotFoundError:
        return False


def _unlink_if_same(placed: str, record: str) -> bool:
    """
    Remove C{placed} only if it is the very file recorded as C{record}: never
    a file that another, committed upload put there.
    """
    if not _same_file(placed, record):
        return False
    try:
        os.unlink(placed)
    except FileNotFoundError:
        return False
    return True


def prune(directory: str, root: str) -> None:
    """
    Remove C{directory} and its parents below C{root} while they are empty.
    """
    root = os.path.abspath(root)
    directory = os.path.abspath(directory)
    while directory != root and directory.startswith(root + os.sep):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def _remove_tree(directory: str) -> None:
    for name in os.listdir(directory):
        _unlink_quietly(os.path.join(directory, name))
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass


class StagedFile:
    """
    A file being received.  Write to it, then L{finish} it; or L{discard} it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        # (An explicit buffer size spares the isatty() call behind the default.)
        self._file: IO[bytes] | None = open(path, "xb", buffering=io.DEFAULT_BUFFER_SIZE)
        self._size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._blake2b_256 = hashlib.blake2b(digest_size=32)
        self.digests: Digests | None = None
        self.identity: Identity | None = None
        self.prepared = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after finish"
        self._file.write(data)
        self._size += len(data)
        self._md5.update(data)
        self._sha256.update(data)
        self._blake2b_256.update(data)

    def peek_digests(self) -> Digests:
        """
        The digests of what was written so far, without finishing.
        """
        return Digests(
            self._size,
            self._md5.copy().hexdigest(),
            self._sha256.copy().hexdigest(),
            self._blake2b_256.copy().hexdigest(),
        )

    def finish(self, batch: SyncBatch | None = None) -> Digests:
        """
        Flush the file to disk (this blocks: call it off the reactor thread
        for large files) and return its digests.  With a C{batch}, the fsync
        is left to it.
        """
        assert self._file is not None
        self._file.flush()
        if batch is None:
            os.fsync(self._file.fileno())
        else:
            batch.file(self._file.fileno())
        self.identity = _identity(os.fstat(self._file.fileno()))
        self._file.close()
        self._file = None
        self.digests = Digests(
            self._size, self._md5.hexdigest(), self._sha256.hexdigest(), self._blake2b_256.hexdigest()
        )
        return self.digests

    def blake2b_512(self) -> str:
        """
        The file's BLAKE2b-512, read back from disk.  Only stdlib distutils asks
        for it: it sends a BLAKE2b-512 under the name C{blake2_256_digest}.
        """
        digest = hashlib.blake2b()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def discard(self) -> None:
        """
        Delete the file, unless it was prepared for the store: its placement
        owns it then.
        """
        if self.prepared:
            return
        if self._file is not None:
            self._file.close()
            self._file = None
        _unlink_quietly(self.path)


@define
class Placement:
    """
    A file (and a wheel's METADATA) prepared to go into the store.

    :ivar links: C{(record, target path)} pairs: the file, then a wheel's
        METADATA.
    :ivar root: the store's root, up to which emptied directories go.
    :ivar identities: the recorded files' identities, by record.
    :ivar prelinked: the targets linked (durably) by L{prelink}, before the
        write lock was taken.
    :ivar linked: L{link} ran.
    """

    links: list[tuple[str, str]]
    root: str
    identities: dict[str, Identity]
    prelinked: set[str] = Factory(set)
    linked: bool = False

    @property
    def placed(self) -> bool:
        """
        Whether any file may be at its target: the placement must then be
        settled under the write lock (see L{FileStore}).
        """
        return self.linked or bool(self.prelinked)

    def prelink(self, batch: SyncBatch | None = None) -> None:
        """
        Before the write lock: link each file at its target if nothing is
        there, and make that durable.  Only a free path is taken here, never
        a file replaced or removed: those happen under the lock alone, so
        that a check of which file a path holds, made under the lock, stays
        true until the lock is let go.  Linking then costs the locked
        transaction no fsync.
        """
        for recorded, target in self.links:
            try:
                os.link(recorded, target)
            except (FileExistsError, FileNotFoundError):
                continue  # taken, or its directory went: link() sees to it
            self.prelinked.add(target)
        if self.prelinked:
            if batch is None:
                _fsync_directory(os.path.dirname(self.links[0][1]))
            else:
                batch.directory(os.path.dirname(self.links[0][1]))

    def link(self) -> None:
        """
        Hard-link the files into place, durably.  Call it holding the write
        lock, after checking that no committed row has this file: anything
        found at a target is then a leftover, and is replaced.
        """
        link_all([self])

    def _link_unsynced(self) -> str | None:
        """
        Link what L{prelink} did not; return the directory to fsync, if
        anything was linked here, or by an earlier call whose transaction
        failed (its links found in place now may never have been fsynced).
        """
        tried_before = self.linked
        # Set first: once a link is tried, a file may be at its target, and
        # the placement must be settled under the write lock if this fails.
        self.linked = True
        changed = False
        for recorded, target in self.links:
            changed |= _link_into_place(
                recorded, target, self.identities[recorded] if target in self.prelinked else None
            )
        return os.path.dirname(self.links[0][1]) if changed or tried_before else None

    def done(self) -> None:
        """
        The rows committed: forget the records.
        """
        for recorded, _ in self.links:
            _unlink_quietly(recorded)

    def undo(self) -> None:
        """
        The rows did not commit: remove what was linked, then the records.
        Call it holding the write lock if the placement is L{placed}.
        """
        for recorded, target in self.links:
            _unlink_if_same(target, recorded)
        if self.links:
            prune(os.path.dirname(self.links[0][1]), self.root)
        for recorded, _ in self.links:
            _unlink_quietly(recorded)


def link_all(placements: list[Placement]) -> None:
    """
    Link several placements into place (see L{Placement.link}), then make
    their directories durable.  The fsyncs of several directories run at
    once: this runs under the write lock, where every other writer waits.
    """
    directories = sorted({d for d in (placement._link_unsynced() for placement in placements) if d is not None})
    if len(directories) < PARALLEL_FSYNCS:
        for directory in directories:
            _fsync_directory(directory)
        return
    list(_syncer().map(_fsync_directory, directories))


# From this many directories on, link_all fsyncs them on several threads.
PARALLEL_FSYNCS = 4
_SYNC_THREADS = 8
_sync_pool: ThreadPoolExecutor | None = None


def _syncer() -> ThreadPoolExecutor:
    global _sync_pool
    if _sync_pool is None:
        _sync_pool = ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="cheeseshop-fsync")
    return _sync_pool


@define
class Removal:
    """
    Files recorded for deletion in the transaction that deletes their rows.

    :ivar files: C{(blake2b_256, filename)} pairs.
    """

    record: str
    files: list[tuple[str, str]]
    store: FileStore

    def done(self, is_stored: Callable[[str, str], bool] = lambda filename, blake2b_256: False) -> int:
        """
        Delete the files whose rows are gone (all of them, once the deletion
        committed), then the record.

        :param is_stored: C{is_stored(filename, blake2b_256)}, for settling a
            removal whose transaction's outcome is not known.
        :return: how many files were deleted.
        """
        deleted = 0
        for blake2b_256, filename in self.files:
            if is_stored(filename, blake2b_256):
                continue
            target = self.store.path(blake2b_256, filename)
            _unlink_quietly(target)
            _unlink_quietly(target + METADATA_SUFFIX)
            prune(os.path.dirname(target), self.store.root)
            deleted += 1
        _remove_tree(self.record)
        return deleted


@frozen
class RecoveryReport:
    partial_removed: int
    uncommitted_removed: int
    committed_kept: int
    removals_finished: int = 0


class FileStore:
    """
    The package files under C{<data_dir>/packages}, staged under
    C{<data_dir>/tmp}.
    """

    def __init__(self, data_dir: str) -> None:
        self.root = os.path.join(data_dir, "packages")
        self.tmp = os.path.join(data_dir, "tmp")
        self._instance_dir: str | None = None
        self._instance_lock: int | None = None
        # Names in the staging directory, which is this process's alone,
        # need only a counter to be unique (no random bytes, no syscall).
        self._names = itertools.count()

    # Reading

    def path(self, blake2b_256: str, filename: str) -> str:
        return os.path.join(self.root, *relative_path(blake2b_256, filename).split("/"))

    def directory(self, blake2b_256: str) -> str:
        """
        The directory of the files whose content is C{blake2b_256}.
        """
        return os.path.dirname(self.path(blake2b_256, "-"))

    # This process's staging directory

    def open_instance(self) -> None:
        """
        Make this process's staging directory and hold its lock until
        L{close_instance}.  It is made and locked under a hidden name, then
        renamed, so that recovery never sees it unlocked.
        """
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        name = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
        hidden = os.path.join(self.tmp, _NEW + name)
        os.mkdir(hidden)
        fd = os.open(os.path.join(hidden, ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        directory = os.path.join(self.tmp, name)
        os.rename(hidden, directory)
        self._instance_dir, self._instance_lock = directory, fd

    def close_instance(self) -> None:
        """
        Drop partial receptions and the lock.  Records of placements or
        removals still unsettled stay for the next start's recovery, which
        settles them by asking the database.
        """
        if self._instance_dir is None or self._instance_lock is None:
            return
        directory = self._instance_dir
        for name in os.listdir(directory):
            if name.startswith(_RECEIVING):
                _unlink_quietly(os.path.join(directory, name))
        if os.listdir(directory) == [".lock"]:
            _unlink_quietly(os.path.join(directory, ".lock"))
            os.rmdir(directory)
        os.close(self._instance_lock)
        self._instance_dir = self._instance_lock = None

    @property
    def instance_name(self) -> str:
        """
        This process's name among those sharing the data directory (which
        names the mirror lease's holder: looked for each time, so that a
        staging directory taken away is not named).
        """
        if self._instance_dir is not None and not os.path.isdir(self._instance_dir):
            self._replace_instance()
        return os.path.basename(self._instance())

    def is_alive(self, instance_name: str) -> bool:
        """
        Whether the process that named itself C{instance_name} still runs:
        it holds its staging directory's lock while it does.
        """
        directory = os.path.join(self.tmp, instance_name)
        if directory == self._instance_dir:
            return True
        if not os.path.isdir(directory):
            return False
        lock = _try_lock(directory)
        if lock is None:
            return True
        os.close(lock)
        return False

    def _instance(self) -> str:
        if self._instance_dir is None:
            self.open_instance()
        assert self._instance_dir is not None
        return self._instance_dir

    def _make_in_instance(self, make: Callable[[str], T]) -> T:
        """
        C{make(directory)}, which makes something new in this process's
        staging directory.  Should that directory have gone away (taken for
        a dead process's by a daemon on a host that cannot see our lock: see
        README), a new one is made and C{make} called again.  The directory
        is looked at only then, not before every file.
        """
        try:
            return make(self._instance())
        except FileNotFoundError:
            if self._instance_dir is None or os.path.isdir(self._instance_dir):
                raise
        self._replace_instance()
        return make(self._instance())

    def _replace_instance(self) -> None:
        log.warn("the staging directory {path} went away; making a new one", path=self._instance_dir)
        if self._instance_lock is not None:
            os.close(self._instance_lock)
        self._instance_dir = self._instance_lock = None
        self.open_instance()

    # Adding files

    def batch(self) -> SyncBatch:
        """
        A L{SyncBatch} for files of this store.
        """
        self._instance()  # (which makes the store's directories)
        return SyncBatch(self.root)

    def stage(self) -> StagedFile:
        """
        A new, empty file to receive an upload or a mirrored file into.
        """
        return self._make_in_instance(lambda instance: StagedFile(self._name(instance, _RECEIVING)))

    def prepare(
        self, staged: StagedFile, filename: str, metadata: bytes | None = None, batch: SyncBatch | None = None
    ) -> Placement:
        """
        Rename a finished staged file to a record of what it is (and write a
        wheel's METADATA bytes beside it).  This blocks on disk: call it off
        the reactor thread, unless the file is small and its fsyncs are left
        to a C{batch} (paid off the reactor thread).
        """
        assert staged.digests is not None and staged.identity is not None, "prepare() before finish()"
        # The record goes beside the staged file, in this process's staging
        # directory.
        recorded = self._record(os.path.dirname(staged.path), staged.digests.blake2b_256)
        os.rename(staged.path, recorded)
        # The record owns the file now, whatever happens next.
        staged.path, staged.prepared = recorded, True
        return self._place(recorded, staged.identity, staged.digests.blake2b_256, filename, metadata, batch)

    def prepare_bytes(
        self, content: bytes, digests: Digests, filename: str, metadata: bytes | None, batch: SyncBatch | None
    ) -> Placement:
        """
        L{prepare} for a small file whose bytes are in memory (a mirror's,
        checked against C{digests}, which are theirs): written straight to
        its record, with no staged file.
        """

        def write(instance: str) -> tuple[str, Identity]:
            recorded = self._record(instance, digests.blake2b_256)
            return recorded, _write_new(recorded, content, batch)

        recorded, identity = self._make_in_instance(write)
        return self._place(recorded, identity, digests.blake2b_256, filename, metadata, batch)

    def _record(self, instance: str, blake2b_256: str) -> str:
        # A record names the content, not the file: recovery finds the
        # file's name at its path (filenames can be long).
        return self._name(instance, f"{_PLACING}{blake2b_256}-")

    def _name(self, instance: str, prefix: str) -> str:
        return os.path.join(instance, f"{prefix}{next(self._names):x}")

    def _place(
        self,
        recorded: str,
        identity: Identity,
        blake2b_256: str,
        filename: str,
        metadata: bytes | None,
        batch: SyncBatch | None,
    ) -> Placement:
        """
        Write a wheel's METADATA beside the C{recorded} file, and link both
        at their path if it is free.
        """
        target = self.path(blake2b_256, filename)
        placement = Placement([(recorded, target)], self.root, {recorded: identity})
        try:
            if metadata is not None:
                recorded_metadata = recorded + METADATA_SUFFIX
                placement.identities[recorded_metadata] = _write_new(recorded_metadata, metadata, batch)
                placement.links.append((recorded_metadata, target + METADATA_SUFFIX))
            # The directories the file goes into are made now, and the file
            # put at its path if that is free, outside the write lock (see
            # Placement.prelink).  (The record itself is not fsynced: a power
            # cut can lose a record, never a committed file; at worst a file
            # is left unowned at its path, never served, and replaced by the
            # next copy of it.)
            _make_directories(os.path.dirname(target), batch)
            placement.prelink(batch)
        except BaseException:
            if placement.prelinked:
                # Put at a free path before the failure: the records stay,
                # for the next start's recovery to settle under the write
                # lock (a file at its path is removed only there).
                raise
            # Nothing is linked: the records just go.
            for record, _ in placement.links:
                _unlink_quietly(record)
            raise
        return placement

    # Removing files

    def plan_removal(self, files: list[tuple[str, str]]) -> Removal:
        """
        Record C{(blake2b_256, filename)} files whose rows are being deleted.
        Call it inside the deleting transaction.
        """

        def make(instance: str) -> str:
            record = self._name(instance, _REMOVING)
            os.mkdir(record)
            return record

        record = self._make_in_instance(make)
        with open(os.path.join(record, "files"), "w", encoding="utf-8") as f:
            f.writelines(f"{blake2b_256} {filename}\n" for blake2b_256, filename in files)
            f.flush()
            os.fsync(f.fileno())
        _fsync_directory(record)
        _fsync_directory(self._instance())
        return Removal(record, list(files), self)

    # Recovery

    def recover(self, is_stored: Callable[[str, str], bool]) -> RecoveryReport:
        """
        Settle what dead processes left in their staging directories.

        :param is_stored: C{is_stored(filename, blake2b_256)} tells whether a
            committed row holds the file.
        """
        partial = uncommitted = committed = removals = 0
        if not os.path.isdir(self.tmp):
            return RecoveryReport(0, 0, 0)
        for instance in sorted(os.listdir(self.tmp)):
            directory = os.path.join(self.tmp, instance)
            if directory == self._instance_dir or not os.path.isdir(directory):
                continue
            if instance.startswith(_NEW):
                # A process died while making its directory: nothing in it
                # was ever used.
                self._remove_unused(directory)
                continue
            lock = _try_lock(directory)
            if lock is None:
                continue  # its process is alive
            try:
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    if name == ".lock":
                        continue
                    if name.startswith(_PLACING):
                        kept, removed = self._settle_record(path, is_stored)
                    elif name.startswith(_REMOVING):
                        removals += self._settle_removal(path, is_stored)
                        continue
                    elif os.path.isdir(path):
                        kept, removed = self._settle_record_directory(path, name.split(".")[0], is_stored)
                    else:
                        # A partial reception, or a replacement's link
                        # never renamed into place.
                        partial += name.startswith(_RECEIVING)
                        _unlink_quietly(path)
                        continue
                    committed += kept
                    uncommitted += removed
                _unlink_quietly(os.path.join(directory, ".lock"))
                os.rmdir(directory)
            finally:
                os.close(lock)
        if partial or uncommitted or removals:
            log.info(
                "file store recovery: removed {partial} partial and {uncommitted} uncommitted files, "
                "finished {removals} removals",
                partial=partial,
                uncommitted=uncommitted,
                removals=removals,
            )
        return RecoveryReport(partial, uncommitted, committed, removals)

    def _remove_unused(self, directory: str) -> None:
        lock = _try_lock(directory)
        if lock is None:
            return  # its process is still making it
        try:
            _remove_tree(directory)
        finally:
            os.close(lock)

    def _settle_record(self, record: str, is_stored: Callable[[str, str], bool]) -> tuple[int, int]:
        """
        Settle one placement record, C{place-<b2>-<n>}, or its METADATA's:
        the file at the content's path that is the record's other name, if
        any, is kept if a committed row holds it and unlinked if not.

        :return: files kept and removed (0 or 1 each).
        """
        blake2b_256 = os.path.basename(record)[len(_PLACING) :].split("-", 1)[0]
        directory = self.directory(blake2b_256)
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            names = []
        kept = removed = 0
        for name in names:
            placed = os.path.join(directory, name)
            if not _same_file(placed, record):
                continue  # another file, or one removed meanwhile
            # Distribution filenames end in .whl, .tar.gz or .zip, so this
            # suffix marks a wheel's METADATA, which belongs to the wheel.
            owner = name.removesuffix(METADATA_SUFFIX)
            if is_stored(owner, blake2b_256):
                kept = 1
            elif _unlink_if_same(placed, record):
                removed = 1
                prune(directory, self.root)
            break
        _unlink_quietly(record)
        return kept, removed

    def _settle_record_directory(
        self, record: str, blake2b_256: str, is_stored: Callable[[str, str], bool]
    ) -> tuple[int, int]:
        """
        Settle a record in the layout of earlier versions: a directory
        C{<b2>.<token>/} holding the file under its own name.
        """
        kept = removed = 0
        for filename in sorted(os.listdir(record)):
            if filename.startswith("."):
                continue  # a link not yet renamed into place; goes with the record
            # Distribution filenames end in .whl, .tar.gz or .zip, so this
            # suffix marks a wheel's METADATA, which belongs to the wheel.
            owner = filename.removesuffix(METADATA_SUFFIX)
            target = self.path(blake2b_256, owner) + filename[len(owner) :]
            if is_stored(owner, blake2b_256):
                kept += 1
            elif _unlink_if_same(target, os.path.join(record, filename)):
                removed += 1
                prune(os.path.dirname(target), self.root)
        _remove_tree(record)
        return kept, removed

    def _settle_removal(self, record: str, is_stored: Callable[[str, str], bool]) -> int:
        try:
            with open(os.path.join(record, "files"), encoding="utf-8") as f:
                files = [tuple(line.rstrip("\n").split(" ", 1)) for line in f if " " in line]
        except FileNotFoundError:
            files = []
        return Removal(record, files, self).done(is_stored)  # type: ignore[arg-type]


def _try_lock(directory: str) -> int | None:
    """
    Take a dead instance's lock, or C{None} if its process still holds it.
    """
    try:
        fd = os.open(os.path.join(directory, ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd
