"""
Nothing half-stored: a daemon killed at the worst moment, or a client gone
mid-body, leaves no file, no row and no journal entry.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from twistedindex.filestore import relative_path
from twistedindex.storage.transaction import WRITE_LOCK

from .daemon import RunningIndex
from .distributions import multipart, upload_fields, wheel
from .http import basic, get, post_form

PASSWORD = "crash-password"


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@contextmanager
def write_lock(backend: str, data_dir: str, dsn: str | None) -> Iterator[None]:
    """
    Hold the database's write lock, as a long transaction in another process
    would: the daemon's next write waits for it.
    """
    if backend == "sqlite":
        connection = sqlite3.connect(os.path.join(data_dir, "cheeseshop.sqlite"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
    else:
        import psycopg2

        connection = psycopg2.connect(dsn)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        try:
            yield
        finally:
            connection.close()


def rows(backend: str, data_dir: str, dsn: str | None) -> tuple[int, int]:
    """
    How many file rows and journal entries the database holds.
    """
    if backend == "sqlite":
        connection = sqlite3.connect(os.path.join(data_dir, "cheeseshop.sqlite"))
        try:
            return (
                connection.execute("SELECT COUNT(*) FROM files").fetchone()[0],
                connection.execute("SELECT COUNT(*) FROM journal").fetchone()[0],
            )
        finally:
            connection.close()
    import psycopg2

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM journal)")
        files, journal = cursor.fetchone()
        return files, journal


def staged_files(data_dir: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(os.path.join(data_dir, "tmp")):
        found += [os.path.join(directory, name) for name in names if name != ".lock"]
    return found


def recorded_and_placed(data_dir: str, dist: Path) -> bool:
    """
    Whether an upload's file and METADATA are prepared: recorded (the only
    staged files, named for the content) and put at their free path.
    """
    placed = stored_path(data_dir, dist)
    records = sorted(staged_files(data_dir))
    if len(records) != 2 or not os.path.exists(placed + ".metadata"):
        return False
    blake2b_256 = "".join(placed.split(os.sep)[-4:-1])
    return all(os.path.basename(r).startswith(f"place-{blake2b_256}-") for r in records) and (
        os.path.samefile(records[0], placed) and os.path.samefile(records[1], placed + ".metadata")
    )


def start_index(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[RunningIndex, str, str | None]:
    """
    A daemon on C{backend} with a fresh data directory and the user "crash".
    """
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    index = RunningIndex(data_dir, database=dsn).start()
    index.add_user("crash", PASSWORD)
    return index, data_dir, dsn


def sha(dist: Path) -> str:
    return hashlib.blake2b(dist.read_bytes(), digest_size=32).hexdigest()


def stored_path(data_dir: str, dist: Path) -> str:
    return os.path.join(data_dir, "packages", *relative_path(sha(dist), dist.name).split("/"))


def send_upload(index: RunningIndex, path: Path, project: str) -> Any:
    content_type, body = multipart(
        upload_fields(path, project, "1.0"), [("content", path.name, path.read_bytes(), None)]
    )
    return post_form(index.upload_url, content_type, body, basic("crash", PASSWORD))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_while_waiting_to_commit(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """
    A daemon killed after the upload is received and prepared, while its
    transaction waits for the write lock, leaves (after a restart) neither
    the file nor a row nor a record; the same upload then succeeds.
    """
    index, data_dir, dsn = start_index(backend, tmp_path, request)
    dist = wheel(tmp_path, "crashing", "1.0")
    placed = stored_path(data_dir, dist)
    before = rows(backend, data_dir, dsn)
    with write_lock(backend, data_dir, dsn):
        thread = threading.Thread(target=lambda: _ignore_errors(send_upload, index, dist, "crashing"), daemon=True)
        thread.start()
        # The file and its METADATA are recorded (and put at their free
        # path, which serves nothing without a row); the transaction that
        # would commit them waits for the lock.  Die now.
        wait_for(lambda: recorded_and_placed(data_dir, dist))
        assert rows(backend, data_dir, dsn) == before
        file_url = index.url + "packages/" + relative_path(sha(dist), dist.name)
        assert get(file_url).status == 404
        assert get(file_url + ".metadata").status == 404
        index.daemon.kill()
    thread.join(30)
    index.start()
    assert staged_files(data_dir) == []
    assert not os.path.exists(placed)
    assert rows(backend, data_dir, dsn) == before
    assert get(index.simple_url + "crashing/").status == 404
    assert send_upload(index, dist, "crashing").status == 200
    assert os.path.exists(placed)
    assert get(index.simple_url + "crashing/").status == 200
    index.stop()


def test_a_leftover_file_at_the_path_is_replaced(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """
    A file at an upload's path that no row holds (left by a crash, or by a
    failed upload whose settling failed too) does not block the upload: it
    is replaced, and the stored bytes are the upload's.
    """
    index, data_dir, _ = start_index("sqlite", tmp_path, request)
    dist = wheel(tmp_path, "leftover", "1.0")
    placed = stored_path(data_dir, dist)
    os.makedirs(os.path.dirname(placed))
    Path(placed).write_bytes(b"half a file")
    Path(placed + ".metadata").write_bytes(b"stale")
    response = send_upload(index, dist, "leftover")
    assert response.status == 200, response.body
    assert Path(placed).read_bytes() == dist.read_bytes()
    assert Path(placed + ".metadata").read_bytes().startswith(b"Metadata-Version")
    assert get(index.url + "packages/" + relative_path(sha(dist), dist.name)).body == dist.read_bytes()
    assert staged_files(data_dir) == []
    index.stop()


def _ignore_errors(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except OSError:
        pass


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RunningIndex]:
    data = tmp_path / "data"
    data.mkdir()
    running = RunningIndex(str(data)).start()
    running.add_user("crash", PASSWORD)
    yield running
    running.stop()


def partial_upload(index: RunningIndex, path: Path, fraction: float) -> socket.socket:
    """
    Send the headers and part of an upload's body, and keep the socket.
    """
    content_type, body = multipart(
        upload_fields(path, "partial", "1.0"), [("content", path.name, path.read_bytes(), None)]
    )
    host, port = index.url.split("//")[1].rstrip("/").split(":")
    connection = socket.create_connection((host, int(port)))
    head = (
        f"POST /legacy/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in basic("crash", PASSWORD).items())
        + "\r\n"
    )
    connection.sendall(head.encode() + body[: int(len(body) * fraction)])
    return connection


def test_client_gone_mid_body(index: RunningIndex, tmp_path: Path) -> None:
    """
    A client that disconnects halfway through its upload leaves no staged
    file, no stored file and no row.
    """
    dist = wheel(tmp_path, "partial", payload=os.urandom(512 * 1024))
    connection = partial_upload(index, dist, 0.6)
    wait_for(lambda: staged_files(index.data_dir) != [])
    connection.close()
    wait_for(lambda: staged_files(index.data_dir) == [])
    assert rows("sqlite", index.data_dir, None) == (0, 0)
    assert not os.path.exists(os.path.join(index.data_dir, "packages")) or not any(
        names for _, _, names in os.walk(os.path.join(index.data_dir, "packages"))
    )
    again = tmp_path / "again"
    again.mkdir()
    assert send_upload(index, wheel(again, "partial"), "partial").status == 200


def test_kill_mid_body(index: RunningIndex, tmp_path: Path) -> None:
    """
    A daemon killed while receiving an upload leaves a partial staged file,
    which the next start removes.
    """
    dist = wheel(tmp_path, "partial", payload=os.urandom(512 * 1024))
    connection = partial_upload(index, dist, 0.6)
    wait_for(lambda: staged_files(index.data_dir) != [])
    index.daemon.kill()
    connection.close()
    assert len(staged_files(index.data_dir)) == 1
    index.start()
    assert staged_files(index.data_dir) == []
    assert rows("sqlite", index.data_dir, None) == (0, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_identical_uploads(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """
    The same file uploaded by eight clients at once: every one is told it
    succeeded, one row and one file are stored, and nothing is left staged.
    """
    index, data_dir, dsn = start_index(backend, tmp_path, request)
    dist = wheel(tmp_path, "together", "1.0")
    before = rows(backend, data_dir, dsn)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def client() -> None:
        barrier.wait()
        statuses.append(send_upload(index, dist, "together").status)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 8
    files, journal = rows(backend, data_dir, dsn)
    assert files == before[0] + 1
    assert journal == before[1] + 4  # create, add Owner, new release, add file
    stored = [os.path.join(d, n) for d, _, names in os.walk(os.path.join(data_dir, "packages")) for n in names]
    assert sorted(os.path.basename(p) for p in stored) == [dist.name, dist.name + ".metadata"]
    assert Path(stored_path(data_dir, dist)).read_bytes() == dist.read_bytes()
    assert staged_files(data_dir) == []
    index.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_client_gone_while_the_upload_waits_to_commit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """
    A client that hangs up after sending its whole upload, while the upload
    waits for the write lock, does not cut the upload off half-way: it is
    stored once the lock comes free, with nothing left staged and nothing
    logged as an error.
    """
    index, data_dir, dsn = start_index(backend, tmp_path, request)
    dist = wheel(tmp_path, "partial", "1.0")
    before = rows(backend, data_dir, dsn)
    with write_lock(backend, data_dir, dsn):
        connection = partial_upload(index, dist, 1.0)
        wait_for(lambda: recorded_and_placed(data_dir, dist))
        connection.close()
        time.sleep(0.2)  # the daemon sees the connection go
    wait_for(lambda: rows(backend, data_dir, dsn)[0] == before[0] + 1)
    wait_for(lambda: staged_files(data_dir) == [])
    assert Path(stored_path(data_dir, dist)).read_bytes() == dist.read_bytes()
    assert get(index.simple_url + "partial/").status == 200
    index.stop()
    assert "Traceback" not in index.daemon.log and "Unhandled" not in index.daemon.log, index.daemon.log
