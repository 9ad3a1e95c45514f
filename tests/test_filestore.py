"""
The file store: content-addressed placement, and recovery after a crash at
each step of storing a file.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from twistedindex import filestore
from twistedindex.filestore import FileStore, relative_path

CONTENT = b"wheel bytes " * 1000
B2 = hashlib.blake2b(CONTENT, digest_size=32).hexdigest()


def assert_wheel_stored(store: FileStore) -> None:
    """
    The wheel of CONTENT is at its path with its METADATA (b"META"), and
    nothing is left in the staging directories.
    """
    with open(store.path(B2, WHEEL), "rb") as f:
        assert f.read() == CONTENT
    with open(store.path(B2, WHEEL) + ".metadata", "rb") as f:
        assert f.read() == b"META"
    assert all_files(store.tmp) == []


def staged(store: FileStore, content: bytes = CONTENT) -> Any:
    file = store.stage()
    file.write(content[:100])
    file.write(content[100:])
    file.finish()
    return file


def all_files(root: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs if f != ".lock")


WHEEL = "demo-1.0-py3-none-any.whl"


def test_digests_prepare_and_link(tmp_path: Any) -> None:
    """
    A staged file's digests are those of its bytes; preparing and linking it
    puts it, with its METADATA, at the content-addressed path; done forgets
    the record.
    """
    store = FileStore(str(tmp_path))
    file = staged(store)
    assert file.digests.size == len(CONTENT)
    assert file.digests.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert file.digests.md5 == hashlib.md5(CONTENT).hexdigest()
    assert file.digests.blake2b_256 == B2
    assert file.blake2b_512() == hashlib.blake2b(CONTENT).hexdigest()
    placement = store.prepare(file, WHEEL, metadata=b"Metadata-Version: 2.1\n")
    # prepare() already puts the files at their free path (the web serves
    # only files with a committed row, so this shows nothing yet).
    assert placement.prelinked and placement.placed
    file.discard()  # a prepared file belongs to its placement: no effect
    placement.link()
    placement.done()
    path = store.path(B2, WHEEL)
    assert path == os.path.join(str(tmp_path), "packages", *relative_path(B2, WHEEL).split("/"))
    assert relative_path(B2, "x.whl") == f"{B2[:2]}/{B2[2:4]}/{B2[4:]}/x.whl"
    with open(path, "rb") as f:
        assert f.read() == CONTENT
    with open(path + ".metadata", "rb") as f:
        assert f.read() == b"Metadata-Version: 2.1\n"
    assert all_files(store.tmp) == []


@pytest.mark.parametrize("linked", [True, False])
def test_undo_removes_what_was_placed(tmp_path: Any, linked: bool) -> None:
    """
    When the row does not commit, undo leaves no trace of the file, whether
    it was linked or only prelinked by prepare().
    """
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), "demo-1.0.tar.gz")
    assert all_files(store.root) == [relative_path(B2, "demo-1.0.tar.gz")]
    if linked:
        placement.link()
    placement.undo()
    assert all_files(store.root) == []
    assert all_files(store.tmp) == []
    assert os.listdir(store.root) == []  # emptied directories go too


def test_prepare_takes_only_a_free_path(tmp_path: Any) -> None:
    """
    prepare() never replaces a file already at the target (that happens only
    in link(), under the write lock); link() then replaces the leftover.
    """
    store = FileStore(str(tmp_path))
    target = store.path(B2, "demo-1.0.tar.gz")
    os.makedirs(os.path.dirname(target))
    with open(target, "wb") as f:
        f.write(b"leftover")
    placement = store.prepare(staged(store), "demo-1.0.tar.gz")
    assert not placement.prelinked and not placement.placed
    with open(target, "rb") as f:
        assert f.read() == b"leftover"
    placement.link()
    placement.done()
    with open(target, "rb") as f:
        assert f.read() == CONTENT


@pytest.mark.parametrize("meanwhile", ["replaced", "removed"])
def test_link_puts_back_a_prelinked_file_another_process_took(tmp_path: Any, meanwhile: str) -> None:
    """
    Between prepare() and link(), another process may replace a prelinked
    file as a leftover, or replace it and then give up its own upload:
    link() sees that the path no longer holds the recorded file, and links
    it again.
    """
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), WHEEL, metadata=b"META")
    assert placement.prelinked == {store.path(B2, WHEEL), store.path(B2, WHEEL) + ".metadata"}
    for target in placement.prelinked:
        os.unlink(target)
        if meanwhile == "replaced":
            with open(target, "wb") as f:
                f.write(b"another process's copy")
    placement.link()
    placement.done()
    assert_wheel_stored(store)


def test_link_replaces_a_leftover_and_undo_spares_other_files(tmp_path: Any) -> None:
    """
    A file left at a path by an upload that never committed is replaced when
    the next upload of that file links; undoing the first placement then
    leaves the second's file alone.
    """
    store = FileStore(str(tmp_path))
    first = store.prepare(staged(store), "demo-1.0.tar.gz")
    first.link()
    second = store.prepare(staged(store), "demo-1.0.tar.gz")
    second.link()
    assert os.path.samefile(store.path(B2, "demo-1.0.tar.gz"), second.links[0][0])
    first.undo()
    second.done()
    with open(store.path(B2, "demo-1.0.tar.gz"), "rb") as f:
        assert f.read() == CONTENT
    assert all_files(store.tmp) == []


def test_removal(tmp_path: Any) -> None:
    """
    A planned removal deletes a stored file and its METADATA when done, and
    only the files whose rows are gone when told which are still stored.
    """
    store = FileStore(str(tmp_path))
    for name in (WHEEL, "demo-1.0.tar.gz"):
        placement = store.prepare(staged(store), name, metadata=b"M" if name == WHEEL else None)
        placement.link()
        placement.done()
    removal = store.plan_removal([(B2, WHEEL), (B2, "demo-1.0.tar.gz")])
    assert removal.done(lambda filename, b2: filename == "demo-1.0.tar.gz") == 1
    assert all_files(store.root) == [relative_path(B2, "demo-1.0.tar.gz")]
    store.plan_removal([(B2, "demo-1.0.tar.gz")]).done()
    assert all_files(store.root) == [] and all_files(store.tmp) == []


# A process that stages, prepares and links a file the way an upload does,
# or plans a removal, then dies (os._exit, no clean-up) at the named step.
CRASHER = """
import os, sys
from twistedindex.filestore import FileStore
store = FileStore(sys.argv[1])
step = sys.argv[2]
if step == "removing":
    store.plan_removal([(sys.argv[3], "demo-1.0-py3-none-any.whl")])
    os._exit(9)
file = store.stage()
file.write(b"wheel bytes " * 1000)
if step == "receiving":
    os._exit(9)
file.finish()
placement = store.prepare(file, "demo-1.0-py3-none-any.whl", metadata=b"META")
if step == "prepared":
    os._exit(9)
placement.link()
os._exit(9)
"""


def crash_at(data_dir: str, step: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-c", CRASHER, data_dir, step, B2], env=env)
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


def test_recovery_removes_a_prepared_file(tmp_path: Any) -> None:
    """
    A process killed after preparing a file, before its transaction linked
    it, leaves the record and the files prepare() put at their free path;
    recovery finds no row and removes both.
    """
    crash_at(str(tmp_path), "prepared")
    store = FileStore(str(tmp_path))
    assert all_files(store.root) == sorted([relative_path(B2, WHEEL), relative_path(B2, WHEEL + ".metadata")])
    assert len(all_files(store.tmp)) == 2
    report = store.recover(lambda filename, b2: False)
    assert (report.partial_removed, report.uncommitted_removed, report.committed_kept) == (0, 2, 0)
    assert all_files(store.root) == [] and all_files(store.tmp) == [] and os.listdir(store.tmp) == []


def test_recovery_removes_a_linked_file_whose_row_never_committed(tmp_path: Any) -> None:
    """
    A process killed after linking a file but before its row committed leaves
    the file in place; recovery finds no row and removes it and its METADATA.
    """
    crash_at(str(tmp_path), "linked")
    store = FileStore(str(tmp_path))
    assert all_files(store.root) == sorted([relative_path(B2, WHEEL), relative_path(B2, WHEEL + ".metadata")])
    asked: list[tuple[str, str]] = []
    report = store.recover(lambda filename, b2: asked.append((filename, b2)) or False)
    assert report.uncommitted_removed == 2
    assert set(asked) == {(WHEEL, B2)}
    assert all_files(store.root) == [] and all_files(store.tmp) == []


def test_recovery_keeps_a_file_whose_row_committed(tmp_path: Any) -> None:
    """
    A process killed after the commit but before it forgot its record leaves
    a committed file; recovery keeps it and drops the record.
    """
    crash_at(str(tmp_path), "linked")
    store = FileStore(str(tmp_path))
    report = store.recover(lambda filename, b2: (filename, b2) == (WHEEL, B2))
    assert (report.committed_kept, report.uncommitted_removed) == (2, 0)
    assert len(all_files(store.root)) == 2
    assert all_files(store.tmp) == []


@pytest.mark.parametrize("committed", [True, False])
def test_recovery_finishes_a_planned_removal(tmp_path: Any, committed: bool) -> None:
    """
    A process killed between planning a removal and unlinking the files:
    recovery deletes them if their rows are gone, and keeps them if not.
    """
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), WHEEL, metadata=b"M")
    placement.link()
    placement.done()
    store.close_instance()
    crash_at(str(tmp_path), "removing")
    report = FileStore(str(tmp_path)).recover(lambda filename, b2: not committed)
    assert report.removals_finished == (1 if committed else 0)
    assert len(all_files(store.root)) == (0 if committed else 2)
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


def test_a_staging_directory_taken_away_is_made_again(tmp_path: Any) -> None:
    """
    If another host's daemon (one that cannot see this process's lock)
    settles this process's staging directory, the next upload stages in a
    new one instead of failing.
    """
    store = FileStore(str(tmp_path))
    first = store.stage()
    first.discard()
    lost = os.path.dirname(first.path)
    for name in os.listdir(lost):
        os.unlink(os.path.join(lost, name))
    os.rmdir(lost)
    second = staged(store)
    assert os.path.dirname(second.path) != lost
    placement = store.prepare(second, "demo-1.0.tar.gz")
    placement.link()
    placement.done()
    assert all_files(store.root) == [relative_path(B2, "demo-1.0.tar.gz")]


def test_recovery_removes_a_directory_its_process_never_finished_making(tmp_path: Any) -> None:
    """
    A process that died while making its staging directory (before renaming
    it to its real name) leaves a hidden one, which recovery removes; a live
    process's own directory is left alone.
    """
    live = FileStore(str(tmp_path))
    live.open_instance()
    abandoned = os.path.join(live.tmp, ".new-host.1.abcd")
    os.mkdir(abandoned)
    open(os.path.join(abandoned, ".lock"), "w").close()
    FileStore(str(tmp_path)).recover(lambda filename, b2: False)
    assert os.listdir(live.tmp) == [os.path.basename(live._instance())]
    live.close_instance()


@pytest.mark.parametrize("syncfs", [True, False])
def test_files_prepared_in_a_batch(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, syncfs: bool) -> None:
    """
    Files finished and prepared in a L{SyncBatch} owe their fsyncs to it;
    paying it (one syncfs, or, where there is none, an fsync of each file
    and new directory, the files having moved into their records since)
    leaves them placed as without a batch.
    """
    if not syncfs:
        monkeypatch.setattr(filestore, "_syncfs", None)
    elif filestore._syncfs is None:
        pytest.skip("this platform has no syncfs")
    store = FileStore(str(tmp_path))
    contents = [CONTENT, CONTENT + b"2"]
    with store.batch() as batch:
        placements = []
        for index, content in enumerate(contents):
            file = store.stage()
            file.write(content)
            file.finish(batch)
            placements.append(store.prepare(file, f"demo-1.{index}-py3-none-any.whl", b"META", batch))
        batch.pay()
    for placement in placements:
        placement.link()
        placement.done()
    for index, content in enumerate(contents):
        b2 = hashlib.blake2b(content, digest_size=32).hexdigest()
        with open(store.path(b2, f"demo-1.{index}-py3-none-any.whl"), "rb") as f:
            assert f.read() == content
        with open(store.path(b2, f"demo-1.{index}-py3-none-any.whl") + ".metadata", "rb") as f:
            assert f.read() == b"META"
    assert all_files(store.tmp) == []


def test_storing_files_deletes_no_inode(tmp_path: Any) -> None:
    """
    A placement's records are second names of its files in the staging
    directory, never a directory each: storing files frees no inode (ext4
    makes new files slow for a while after many are freed), and leaves
    the staging directory as it found it.
    """
    store = FileStore(str(tmp_path))
    inodes = []
    for index in range(3):
        file = staged(store, CONTENT + bytes([index]))
        placement = store.prepare(file, f"demo-1.{index}-py3-none-any.whl", metadata=b"META")
        instance = os.path.dirname(placement.links[0][0])
        assert all(os.path.isfile(os.path.join(instance, name)) for name in os.listdir(instance))
        inodes += [os.stat(recorded).st_ino for recorded, _ in placement.links]
        placement.link()
        placement.done()
    b2s = [hashlib.blake2b(CONTENT + bytes([i]), digest_size=32).hexdigest() for i in range(3)]
    stored = [
        os.stat(store.path(b2, f"demo-1.{i}-py3-none-any.whl") + suffix).st_ino
        for i, b2 in enumerate(b2s)
        for suffix in ("", ".metadata")
    ]
    assert stored == inodes  # the very files staged, never copied or recreated
    assert all_files(store.tmp) == []


def test_a_long_filename_is_stored_and_recovered(tmp_path: Any) -> None:
    """
    A record names the content, not the file, so a filename near the
    filesystem's limit of 255 bytes can be placed (and its METADATA beside
    it), and recovery still finds it at its path.
    """
    name = "demo-1.0-cp312-abi3-" + ".".join(f"manylinux_2_{n}_x86_64" for n in range(5, 14)) + ".whl"
    assert 220 < len(name + ".metadata") <= 255
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), name, metadata=b"META")
    placement.link()
    store.close_instance()  # dies before its commit, with its records
    report = FileStore(str(tmp_path)).recover(lambda filename, b2: (filename, b2) == (name, B2))
    assert (report.committed_kept, report.uncommitted_removed) == (2, 0)
    assert all_files(store.root) == sorted([relative_path(B2, name), relative_path(B2, name + ".metadata")])
    assert all_files(store.tmp) == []


def test_recovery_removes_a_replacement_link_left_mid_rename(tmp_path: Any) -> None:
    """
    A process killed between linking a replacement under its hidden name
    and renaming it over the leftover leaves that name; recovery removes it
    with the rest, and settles the placement by its record.
    """
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), "demo-1.0.tar.gz")
    recorded = placement.links[0][0]
    os.link(recorded, os.path.join(os.path.dirname(recorded), "." + os.path.basename(recorded)))
    store.close_instance()
    report = FileStore(str(tmp_path)).recover(lambda filename, b2: False)
    assert report.uncommitted_removed == 1
    assert all_files(store.root) == [] and all_files(store.tmp) == []


def test_recovery_settles_records_of_the_earlier_layout(tmp_path: Any) -> None:
    """
    A record left as a directory C{<b2>.<token>/} holding the file under its
    own name (the layout of earlier versions) is settled the same way.
    """
    store = FileStore(str(tmp_path))
    target = store.path(B2, WHEEL)
    os.makedirs(os.path.dirname(target))
    with open(target, "wb") as f:
        f.write(CONTENT)
    dead = os.path.join(store.tmp, "otherhost.1.abcd")
    record = os.path.join(dead, f"{B2}.1234")
    os.makedirs(record)
    os.link(target, os.path.join(record, WHEEL))
    open(os.path.join(dead, ".lock"), "w").close()
    report = store.recover(lambda filename, b2: False)
    assert report.uncommitted_removed == 1
    assert all_files(store.root) == [] and os.listdir(store.tmp) == []


def syncfs_failing_with(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """
    Make syncfs fail with C{code} (where the platform has syncfs).
    """
    if filestore._syncfs is None:
        pytest.skip("this platform has no syncfs")

    def failing(fd: int) -> int:
        ctypes.set_errno(code)
        return -1

    monkeypatch.setattr(filestore, "_syncfs", failing)


def pay_for_one_file(store: FileStore) -> None:
    with store.batch() as batch:
        file = store.stage()
        file.write(CONTENT)
        file.finish(batch)
        batch.pay()


def test_a_failed_syncfs_fails_the_batch(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    syncfs reporting a write-back error means a write may be lost: paying
    the batch raises it rather than going on as if the files were durable.
    """
    syncfs_failing_with(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as raised:
        pay_for_one_file(FileStore(str(tmp_path)))
    assert raised.value.errno == errno.EIO


def test_a_forbidden_syncfs_falls_back(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Where syncfs exists but is forbidden (a sandbox), the batch in hand is
    still made durable, and later batches fsync each file.
    """
    syncfs_failing_with(monkeypatch, errno.EPERM)
    synced: list[str] = []
    monkeypatch.setattr(filestore.os, "sync", lambda: synced.append("sync"))
    store = FileStore(str(tmp_path))
    pay_for_one_file(store)
    assert synced == ["sync"] and filestore._syncfs is None
    fsynced: list[int] = []
    monkeypatch.setattr(filestore.os, "fsync", lambda fd: fsynced.append(fd))
    pay_for_one_file(store)
    assert len(fsynced) == 1 and synced == ["sync"]


def test_a_link_failing_part_way_leaves_the_placement_to_settle_under_the_lock(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    If linking the METADATA fails after the file itself was linked, the
    placement counts as placed: it is settled under the write lock, never
    undone as if nothing were at its path.
    """
    store = FileStore(str(tmp_path))
    target = store.path(B2, WHEEL)
    os.makedirs(os.path.dirname(target))
    for path in (target, target + ".metadata"):
        with open(path, "wb") as f:
            f.write(b"leftover")  # so that prepare() links nothing
    placement = store.prepare(staged(store), WHEEL, metadata=b"META")
    assert not placement.placed
    real = filestore._link_into_place
    calls: list[str] = []

    def failing_second(recorded: str, target: str, prelinked: Any = None) -> bool:
        calls.append(target)
        if len(calls) == 2:
            raise OSError(5, "injected", target)
        return real(recorded, target, prelinked)

    monkeypatch.setattr(filestore, "_link_into_place", failing_second)
    with pytest.raises(OSError):
        placement.link()
    assert placement.placed
    with open(target, "rb") as f:
        assert f.read() == CONTENT


def test_a_prelink_failing_part_way_keeps_the_records_for_recovery(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    If prepare() fails after putting the file at its free path, the records
    stay (a file at its path is removed only under the write lock), and the
    next start's recovery removes what no row holds.
    """
    store = FileStore(str(tmp_path))
    real = os.link
    links: list[str] = []

    def failing_second(source: str, destination: str) -> None:
        links.append(destination)
        if len(links) == 2:
            raise OSError(5, "injected", destination)
        real(source, destination)

    monkeypatch.setattr(filestore.os, "link", failing_second)
    with pytest.raises(OSError):
        store.prepare(staged(store), WHEEL, metadata=b"META")
    monkeypatch.setattr(filestore.os, "link", real)
    assert all_files(store.root) == [relative_path(B2, WHEEL)]
    assert len(all_files(store.tmp)) == 2  # the file's record and its METADATA's
    store.close_instance()
    report = FileStore(str(tmp_path)).recover(lambda filename, b2: False)
    assert report.uncommitted_removed == 1
    assert all_files(store.root) == [] and all_files(store.tmp) == []


@pytest.mark.parametrize("batched", [True, False])
def test_prepare_bytes_places_a_file_held_in_memory(tmp_path: Any, batched: bool) -> None:
    """
    A small file whose bytes are in memory goes straight to its record, with
    its METADATA, and is placed as a staged file is: durably on its own, or
    once its batch is paid.
    """
    store = FileStore(str(tmp_path))
    digests = filestore.Digests.of(CONTENT)
    probe = staged(store)
    assert digests == probe.digests
    probe.discard()
    if batched:
        with store.batch() as batch:
            placement = store.prepare_bytes(CONTENT, digests, WHEEL, b"META", batch)
            batch.pay()
    else:
        placement = store.prepare_bytes(CONTENT, digests, WHEEL, b"META", None)
    placement.link()
    placement.done()
    assert_wheel_stored(store)


@pytest.mark.parametrize("making", ["stage", "prepare_bytes", "plan_removal", "nothing"])
def test_a_staging_directory_taken_away_is_made_anew(tmp_path: Any, making: str) -> None:
    """
    If this process's staging directory goes away (a daemon on a host that
    cannot see its lock took it for a dead process's), the next file staged,
    record written or removal planned makes a new one and goes there; so
    does asking for the process's name (the mirror lease names it).
    """
    store = FileStore(str(tmp_path))
    gone = store.instance_name
    shutil.rmtree(os.path.join(store.tmp, gone))
    if making == "nothing":
        assert store.instance_name != gone
        path = os.path.join(store.tmp, store.instance_name, "-")
    elif making == "stage":
        path = staged(store).path
    elif making == "prepare_bytes":
        path = store.prepare_bytes(CONTENT, filestore.Digests.of(CONTENT), WHEEL, None, None).links[0][0]
    else:
        path = store.plan_removal([(B2, WHEEL)]).record
    assert store.instance_name != gone
    assert os.path.dirname(path) == os.path.join(store.tmp, store.instance_name)
    assert store.is_alive(store.instance_name) and not store.is_alive(gone)


def test_a_link_tried_again_owes_its_directory_fsync(tmp_path: Any) -> None:
    """
    Linking a prelinked file that is still in place changes nothing and
    owes no fsync; linking again after a transaction failed owes the
    directory's fsync, since the first try's links may never have been
    made durable.
    """
    store = FileStore(str(tmp_path))
    placement = store.prepare(staged(store), WHEEL, metadata=b"META")
    assert placement._link_unsynced() is None
    assert placement._link_unsynced() == os.path.dirname(store.path(B2, WHEEL))


def written_batch(store: FileStore, content: bytes) -> filestore.SyncBatch:
    batch = store.batch()
    file = store.stage()
    file.write(content)
    file.finish(batch)
    return batch


@pytest.mark.parametrize("fails", [False, True])
def test_batches_paid_together(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, fails: bool) -> None:
    """
    pay_all pays several batches with one syncfs, on the descriptor of the
    batch opened first (it reports the write-back errors of every later
    batch's writes too), and lets go of their descriptors.  Paying them
    again does nothing once paid, and fails again once failed: a failed
    payment never passes for a durable one.
    """
    if filestore._syncfs is None:
        pytest.skip("this platform has no syncfs")
    store = FileStore(str(tmp_path))
    first, second, third = (written_batch(store, CONTENT + bytes([n])) for n in range(3))
    descriptors = [batch._filesystem for batch in (first, second, third)]
    synced: list[int | None] = []

    def syncfs(fd: int) -> int:
        synced.append(fd)
        if fails:
            ctypes.set_errno(errno.EIO)
            return -1
        return 0

    monkeypatch.setattr(filestore, "_syncfs", syncfs)
    for _ in range(2):
        if fails:
            with pytest.raises(OSError) as raised:
                filestore.pay_all([third, first, second])
            assert raised.value.errno == errno.EIO
        else:
            filestore.pay_all([third, first, second])
        assert synced == [descriptors[0]]  # the second attempt syncs nothing
    assert all(batch._filesystem is None for batch in (first, second, third))
    assert all(batch.paid is not fails for batch in (first, second, third))


def test_batches_paid_together_without_syncfs(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Without syncfs, pay_all fsyncs every file of every batch.
    """
    monkeypatch.setattr(filestore, "_syncfs", None)
    store = FileStore(str(tmp_path))
    batches = [written_batch(store, CONTENT + bytes([n])) for n in range(2)]
    fsynced: list[int] = []
    monkeypatch.setattr(filestore.os, "fsync", lambda fd: fsynced.append(fd))
    filestore.pay_all(batches)
    assert len(fsynced) == 2
