"""
The file store: content-addressed placement, and recovery after a crash at
each step of storing a file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest

from twistedindex.filestore import FileStore, relative_path

CONTENT = b"wheel bytes " * 1000
B2 = hashlib.blake2b(CONTENT, digest_size=32).hexdigest()


def staged(store: FileStore, content: bytes = CONTENT) -> Any:
    file = store.stage()
    file.write(content[:100])
    file.write(content[100:])
    file.finish()
    return file


def all_files(root: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs if f != ".lock")


def test_digests_and_place(tmp_path: Any) -> None:
    """
    A staged file's digests are those of its bytes, and placing it puts it,
    with its METADATA, at the content-addressed path.
    """
    store = FileStore(str(tmp_path))
    file = staged(store)
    assert file.digests.size == len(CONTENT)
    assert file.digests.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert file.digests.md5 == hashlib.md5(CONTENT).hexdigest()
    assert file.digests.blake2b_256 == B2
    assert file.blake2b_512() == hashlib.blake2b(CONTENT).hexdigest()
    placement = store.place(file, "demo-1.0-py3-none-any.whl", metadata=b"Metadata-Version: 2.1\n")
    placement.done()
    path = store.path(B2, "demo-1.0-py3-none-any.whl")
    assert path == os.path.join(str(tmp_path), "packages", *relative_path(B2, "demo-1.0-py3-none-any.whl").split("/"))
    assert relative_path(B2, "x.whl") == f"{B2[:2]}/{B2[2:4]}/{B2[4:]}/x.whl"
    with open(path, "rb") as f:
        assert f.read() == CONTENT
    with open(path + ".metadata", "rb") as f:
        assert f.read() == b"Metadata-Version: 2.1\n"
    assert all_files(store.tmp) == []


def test_undo_removes_what_was_placed(tmp_path: Any) -> None:
    """
    When the row does not commit, undo leaves no trace of the file.
    """
    store = FileStore(str(tmp_path))
    placement = store.place(staged(store), "demo-1.0.tar.gz")
    placement.undo()
    assert all_files(store.root) == []
    assert all_files(store.tmp) == []


def test_placing_over_a_stored_file_fails_and_keeps_it(tmp_path: Any) -> None:
    """
    Placing a second file at a taken path raises and leaves the first file
    untouched, even when the second attempt is undone.
    """
    store = FileStore(str(tmp_path))
    store.place(staged(store), "demo-1.0.tar.gz").done()
    with pytest.raises(FileExistsError):
        store.place(staged(store), "demo-1.0.tar.gz")
    with open(store.path(B2, "demo-1.0.tar.gz"), "rb") as f:
        assert f.read() == CONTENT
    assert all_files(store.tmp) == []


def test_remove(tmp_path: Any) -> None:
    """
    Removing a stored file deletes it and its METADATA.
    """
    store = FileStore(str(tmp_path))
    store.place(staged(store), "demo-1.0-py3-none-any.whl", metadata=b"M").done()
    store.remove(B2, "demo-1.0-py3-none-any.whl")
    assert all_files(store.root) == []


# A process that stages and places a file the way an upload does, then dies
# (os._exit, no clean-up) at the step named on its command line.
CRASHER = """
import os, sys
from twistedindex.filestore import FileStore
store = FileStore(sys.argv[1])
step = sys.argv[2]
file = store.stage()
file.write(b"wheel bytes " * 1000)
if step == "receiving":
    os._exit(9)
file.finish()
placement = store.place(file, "demo-1.0-py3-none-any.whl", metadata=b"META")
os._exit(9)
"""


def crash_at(data_dir: str, step: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", CRASHER, data_dir, step], env=env)
    assert result.returncode == 9


def test_recovery_removes_a_partial_reception(tmp_path: Any) -> None:
    """
    A process killed while receiving a file leaves a partial file, which the
    next start removes.
    """
    crash_at(str(tmp_path), "receiving")
    store = FileStore(str(tmp_path))
    assert len(all_files(store.tmp)) == 1
    report = store.recover(lambda filename, b2: False)
    assert (report.partial_removed, report.uncommitted_removed) == (1, 0)
    assert all_files(store.tmp) == [] and os.listdir(store.tmp) == []


def test_recovery_removes_a_placed_file_whose_row_never_committed(tmp_path: Any) -> None:
    """
    A process killed after placing a file but before its row committed leaves
    the file in place; recovery finds no row and removes it and its METADATA.
    """
    crash_at(str(tmp_path), "placed")
    store = FileStore(str(tmp_path))
    assert all_files(store.root) == sorted(
        [relative_path(B2, "demo-1.0-py3-none-any.whl"), relative_path(B2, "demo-1.0-py3-none-any.whl.metadata")]
    )
    asked: list[tuple[str, str]] = []
    report = store.recover(lambda filename, b2: asked.append((filename, b2)) or False)
    assert report.uncommitted_removed == 2
    assert set(asked) == {("demo-1.0-py3-none-any.whl", B2)}
    assert all_files(store.root) == [] and all_files(store.tmp) == []


def test_recovery_keeps_a_file_whose_row_committed(tmp_path: Any) -> None:
    """
    A process killed after the commit but before it forgot its staged names
    leaves a committed file; recovery keeps it and drops the staged names.
    """
    crash_at(str(tmp_path), "placed")
    store = FileStore(str(tmp_path))
    report = store.recover(lambda filename, b2: (filename, b2) == ("demo-1.0-py3-none-any.whl", B2))
    assert (report.committed_kept, report.uncommitted_removed) == (2, 0)
    assert len(all_files(store.root)) == 2
    assert all_files(store.tmp) == []


def test_recovery_leaves_live_processes_alone(tmp_path: Any) -> None:
    """
    Another process's staging directory is not touched while that process
    holds its lock (daemons sharing a data directory).
    """
    live = FileStore(str(tmp_path))
    receiving = live.stage()
    receiving.write(b"in flight")
    other = FileStore(str(tmp_path))
    report = other.recover(lambda filename, b2: False)
    assert report.partial_removed == 0
    assert os.path.exists(receiving.path)
    live.close_instance()
    assert os.listdir(live.tmp) == []
