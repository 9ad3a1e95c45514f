"""
Several daemons on one PostgreSQL database and one data directory: each
sees the others' changes, and all of them ride out lost database
connections.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import psycopg2
import pytest

from .daemon import RunningIndex
from .distributions import multipart, upload_fields, wheel
from .http import Response, basic, get, post_form

PASSWORD = "shared secret 1"


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def upload(index: RunningIndex, path: Path, project: str) -> Response:
    content_type, body = multipart(
        upload_fields(path, project, "1.0"), [("content", path.name, path.read_bytes(), None)]
    )
    return post_form(index.upload_url, content_type, body, basic("sharer", PASSWORD))


def status(url: str) -> int:
    try:
        return get(url).status
    except OSError:
        return 0


@pytest.fixture
def pair(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[RunningIndex, RunningIndex]]:
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    first = RunningIndex(data_dir, database=pg_dsn).start()
    second = RunningIndex(data_dir, database=pg_dsn).start()
    first.add_user("sharer", PASSWORD)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def test_daemons_sharing_a_database_see_each_others_uploads(pair: Any, tmp_path: Path) -> None:
    """
    A file uploaded to one daemon is listed and served by the other as soon
    as its change notice arrives.
    """
    first, second = pair
    assert get(second.simple_url + "shared/").status == 404
    dist = wheel(tmp_path, "shared", "1.0")
    assert upload(first, dist, "shared").status == 200
    eventually(lambda: status(second.simple_url + "shared/") == 200, timeout=5)
    page = get(second.simple_url + "shared/").text
    href = re.search(r'href="([^"#]+)', page)
    assert href is not None and href.group(1).endswith(dist.name)
    assert get(urljoin(second.simple_url + "shared/", href.group(1))).body == dist.read_bytes()


def test_daemons_recover_from_lost_database_connections(pair: Any, tmp_path: Path, pg_dsn: str) -> None:
    """
    After every connection the daemons hold is cut (as a database restart
    would), they connect again: a change committed meanwhile reaches both
    daemons' pages, uploads succeed, and the other daemon learns of them
    through its renewed change notices.
    """
    first, second = pair
    assert upload(first, wheel(tmp_path, "steady", "1.0"), "steady").status == 200
    for index in pair:
        assert "data-yanked" not in get(index.simple_url + "steady/").text
    with psycopg2.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.rowcount >= 2 * 5  # each daemon's pool and listener
    connection.close()
    first.admin("yank", "steady", "1.0", "--reason", "while they were away")
    for index in pair:
        eventually(lambda index=index: "data-yanked" in get(index.simple_url + "steady/").text)
    dist = wheel(tmp_path, "afterwards", "1.0")
    eventually(lambda: upload(first, dist, "afterwards").status == 200)
    eventually(lambda: status(second.simple_url + "afterwards/") == 200)
    assert "lost database connection" in second.daemon.log
