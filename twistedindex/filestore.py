# -*- test-case-name: tests.test_filestore -*-
"""
The package files, content-addressed under the data directory.

A file lives at C{packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>}, where
C{b2} is its BLAKE2b-256, as on PyPI.  A wheel's METADATA sits beside it as
C{<filename>.metadata} (PEP 658).

How a file arrives, so that a crash at any point leaves nothing half-stored:

 1. It is written to C{tmp/<instance>/recv-*} while hashes are computed, then
    flushed and fsynced (L{StagedFile}).
 2. L{FileStore.place} renames it, inside the staging directory, to a name
    that records where it is going (C{<b2>--<filename>}), then hard-links it
    into place.  The staged name stays behind as the record of the attempt.
 3. The caller commits the database row.  Only a committed row makes a file
    visible: pages and downloads are driven by rows, never by the directory.
 4. L{Placement.done} removes the staged names; L{Placement.undo} removes the
    placed links as well, when the commit did not happen.

Each process stages under its own C{tmp/<instance>/} directory and holds an
exclusive lock on it while it lives.  On start, L{FileStore.recover} visits the
directories nobody holds (their process died) and rolls back what it finds:
partial receptions are deleted, and a placed file whose row never committed
is unlinked.  Daemons sharing one data directory therefore never clean up
each other's uploads in flight.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import socket
from collections.abc import Callable
from typing import IO

from attrs import define, frozen
from twisted.logger import Logger

log = Logger()

_SEPARATOR = "--"
_RECEIVING = "recv-"
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


def relative_path(blake2b_256: str, filename: str) -> str:
    """
    Where a file lives, relative to the store root, with C{/} separators.
    """
    return f"{blake2b_256[:2]}/{blake2b_256[2:4]}/{blake2b_256[4:]}/{filename}"


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagedFile:
    """
    A file being received.  Write to it, then L{finish} it; or L{discard} it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[bytes] | None = open(path, "xb")
        self._size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._blake2b_256 = hashlib.blake2b(digest_size=32)
        self.digests: Digests | None = None

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

    def finish(self) -> Digests:
        """
        Flush the file to disk (this blocks: call it off the reactor thread
        for large files) and return its digests.
        """
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
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
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@define
class Placement:
    """
    Files linked into the store whose rows are not committed yet.

    :ivar links: C{(staged name, placed path)} pairs.
    :ivar root: the store's root, up to which emptied directories go.
    """

    links: list[tuple[str, str]]
    root: str

    def done(self) -> None:
        """
        The rows committed: forget the staged names.
        """
        for staged, _ in self.links:
            _unlink_quietly(staged)

    def undo(self) -> None:
        """
        The rows did not commit: remove the placed files and the staged names.
        """
        for staged, placed in self.links:
            _unlink_if_same(placed, staged)
            _unlink_quietly(staged)
        if self.links:
            prune(os.path.dirname(self.links[0][1]), self.root)


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


def _link(source: str, target: str) -> None:
    """
    Hard-link C{source} at C{target}, making its directories.  Another
    process may prune an emptied directory between the two steps; then try
    again.
    """
    for attempt in range(3):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(source, target)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _unlink_if_same(placed: str, staged: str) -> bool:
    """
    Remove C{placed} only if it is the very file staged as C{staged}: never a
    file that another, committed upload put there.
    """
    try:
        if os.path.samefile(placed, staged):
            os.unlink(placed)
            return True
    except FileNotFoundError:
        pass
    return False


@frozen
class RecoveryReport:
    partial_removed: int
    uncommitted_removed: int
    committed_kept: int


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

    # Reading

    def path(self, blake2b_256: str, filename: str) -> str:
        return os.path.join(self.root, *relative_path(blake2b_256, filename).split("/"))

    # Staging and placing

    def open_instance(self) -> None:
        """
        Make this process's staging directory and hold its lock until
        L{close_instance}.
        """
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        name = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
        directory = os.path.join(self.tmp, name)
        os.mkdir(directory)
        fd = os.open(os.path.join(directory, ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._instance_dir, self._instance_lock = directory, fd

    def close_instance(self) -> None:
        if self._instance_dir is None or self._instance_lock is None:
            return
        directory = self._instance_dir
        for name in os.listdir(directory):
            if name != ".lock":
                _unlink_quietly(os.path.join(directory, name))
        _unlink_quietly(os.path.join(directory, ".lock"))
        os.close(self._instance_lock)
        try:
            os.rmdir(directory)
        except OSError:
            pass
        self._instance_dir = self._instance_lock = None

    def stage(self) -> StagedFile:
        """
        A new, empty file to receive an upload or a mirrored file into.
        """
        if self._instance_dir is None:
            self.open_instance()
        assert self._instance_dir is not None
        return StagedFile(os.path.join(self._instance_dir, _RECEIVING + secrets.token_hex(8)))

    def place(self, staged: StagedFile, filename: str, metadata: bytes | None = None) -> Placement:
        """
        Link a finished staged file (and, for wheels, its METADATA bytes) into
        its content-addressed place.  This blocks on disk; call it off the
        reactor thread.

        :raises FileExistsError: a file is already stored under that name and
            hash; nothing is changed.
        """
        assert staged.digests is not None, "place() before finish()"
        assert self._instance_dir is not None
        blake2b_256 = staged.digests.blake2b_256
        target = self.path(blake2b_256, filename)
        record = os.path.join(self._instance_dir, f"{blake2b_256}{_SEPARATOR}{filename}")
        os.rename(staged.path, record)
        staged.path = record
        placement = Placement([], self.root)
        try:
            _link(record, target)
            placement.links.append((record, target))
            if metadata is not None:
                metadata_record = record + METADATA_SUFFIX
                with open(metadata_record, "xb") as f:
                    f.write(metadata)
                    f.flush()
                    os.fsync(f.fileno())
                placement.links.append((metadata_record, target + METADATA_SUFFIX))
                _link(metadata_record, target + METADATA_SUFFIX)
            _fsync_directory(os.path.dirname(target))
        except BaseException:
            placement.undo()
            _unlink_quietly(record)
            raise
        return placement

    def remove(self, blake2b_256: str, filename: str) -> None:
        """
        Delete a stored file and its METADATA, after its row was deleted.
        """
        target = self.path(blake2b_256, filename)
        _unlink_quietly(target)
        _unlink_quietly(target + METADATA_SUFFIX)
        prune(os.path.dirname(target), self.root)

    # Recovery

    def recover(self, is_stored: Callable[[str, str], bool]) -> RecoveryReport:
        """
        Roll back what dead processes left in their staging directories.

        :param is_stored: C{is_stored(filename, blake2b_256)} tells whether a
            committed row holds the file.
        """
        partial = uncommitted = committed = 0
        if not os.path.isdir(self.tmp):
            return RecoveryReport(0, 0, 0)
        for instance in sorted(os.listdir(self.tmp)):
            directory = os.path.join(self.tmp, instance)
            if directory == self._instance_dir or not os.path.isdir(directory):
                continue
            lock = _try_lock(directory)
            if lock is None:
                continue  # its process is alive
            try:
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    if name == ".lock":
                        continue
                    if name.startswith(_RECEIVING) or _SEPARATOR not in name:
                        partial += 1
                    else:
                        blake2b_256, filename = name.split(_SEPARATOR, 1)
                        # Distribution filenames end in .whl, .tar.gz or
                        # .zip, so this suffix marks a wheel's METADATA,
                        # which belongs to the wheel's row.
                        owner = filename.removesuffix(METADATA_SUFFIX)
                        target = self.path(blake2b_256, owner) + filename[len(owner) :]
                        if is_stored(owner, blake2b_256):
                            committed += 1
                        elif _unlink_if_same(target, path):
                            uncommitted += 1
                            prune(os.path.dirname(target), self.root)
                    _unlink_quietly(path)
                _unlink_quietly(os.path.join(directory, ".lock"))
                os.rmdir(directory)
            finally:
                os.close(lock)
        if partial or uncommitted:
            log.info(
                "file store recovery: removed {partial} partial and {uncommitted} uncommitted files",
                partial=partial,
                uncommitted=uncommitted,
            )
        return RecoveryReport(partial, uncommitted, committed)


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
