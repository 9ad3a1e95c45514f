"""
The journal, as every change writes it: uploads through the web, and yanks
and removals through the administrator's tool, on both backends.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .daemon import RunningIndex
from .distributions import multipart, sdist, upload_fields, wheel
from .http import basic, get, post_form

PASSWORD = "journal-password"


def journal(backend: str, data_dir: str, dsn: str | None) -> list[tuple[Any, ...]]:
    query = "SELECT serial, name, version, action, submitted_by FROM journal ORDER BY serial"
    if backend == "sqlite":
        connection = sqlite3.connect(os.path.join(data_dir, "cheeseshop.sqlite"))
        try:
            return [tuple(row) for row in connection.execute(query)]
        finally:
            connection.close()
    import psycopg2

    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]


def upload(index: RunningIndex, path: Path, project: str, version: str) -> None:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, basic("jo", PASSWORD))
    assert response.status == 200, response


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_changes_write_pypi_journal_entries(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """
    Uploads, a yank, an unyank and removals (the last through the admin tool)
    each append PyPI's journal entry, with strictly increasing serials; the
    simple page shows each change at once.
    """
    dsn = request.getfixturevalue("pg_dsn") if backend == "postgres" else None
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    index = RunningIndex(str(data_dir), database=dsn).start()
    try:
        index.add_user("jo", PASSWORD)
        upload(index, sdist(tmp_path, "Jour.Nal", "1.0"), "Jour.Nal", "1.0")
        upload(index, wheel(tmp_path, "Jour.Nal", "1.0"), "Jour.Nal", "1.0")
        upload(index, wheel(tmp_path, "Jour.Nal", "2.0"), "Jour.Nal", "2.0")
        page = get(index.simple_url + "jour-nal/")
        serial = int(page.headers["X-PyPI-Last-Serial"])

        assert index.admin("yank", "jour.nal", "1.0", "--reason", "broken build").stdout == "yanked jour.nal 1.0\n"
        page = get(index.simple_url + "jour-nal/")
        assert int(page.headers["X-PyPI-Last-Serial"]) == serial + 1
        assert page.text.count('data-yanked="broken build"') == 2

        assert index.admin("unyank", "Jour.Nal", "1.0").stdout == "unyanked Jour.Nal 1.0\n"
        assert "data-yanked" not in get(index.simple_url + "jour-nal/").text

        removed = index.admin("remove", "jour-nal", "1.0", "jour_nal-1.0-py3-none-any.whl").stdout
        assert removed == "removed jour_nal-1.0-py3-none-any.whl of Jour.Nal: 0 release(s), 1 file(s)\n"
        assert "jour_nal-1.0-py3-none-any.whl" not in get(index.simple_url + "jour-nal/").text
        index.admin("remove", "jour-nal", "2.0")
        assert "2.0" not in get(index.simple_url + "jour-nal/").text
        index.admin("remove", "jour-nal")
        assert get(index.simple_url + "jour-nal/").status == 404

        entries = journal(backend, str(data_dir), dsn)
        assert [entry[0] for entry in entries] == list(range(1, len(entries) + 1))
        assert [entry[1:] for entry in entries] == [
            ("Jour.Nal", None, "create", "jo"),
            ("Jour.Nal", None, "add Owner jo", "jo"),
            ("Jour.Nal", "1.0", "new release", "jo"),
            ("Jour.Nal", "1.0", "add source file jour_nal-1.0.tar.gz", "jo"),
            ("Jour.Nal", "1.0", "add py3 file jour_nal-1.0-py3-none-any.whl", "jo"),
            ("Jour.Nal", "2.0", "new release", "jo"),
            ("Jour.Nal", "2.0", "add py3 file jour_nal-2.0-py3-none-any.whl", "jo"),
            ("Jour.Nal", "1.0", "yank release", None),
            ("Jour.Nal", "1.0", "unyank release", None),
            ("Jour.Nal", "1.0", "remove file jour_nal-1.0-py3-none-any.whl", None),
            ("Jour.Nal", "2.0", "remove release", None),
            ("Jour.Nal", None, "remove project", None),
        ]
        # Removed files are gone from the disk too.
        assert not any(names for _, _, names in os.walk(data_dir / "packages"))
    finally:
        index.stop()


def test_admin_refusals_leave_the_journal_alone(tmp_path: Path) -> None:
    """
    Yanking twice, or unyanking what is not yanked, is refused in one line
    and writes nothing.
    """
    index = RunningIndex(str(tmp_path)).start()
    try:
        index.add_user("jo", PASSWORD)
        upload(index, wheel(tmp_path, "steady", "1.0"), "steady", "1.0")
        before = journal("sqlite", str(tmp_path), None)
        index.admin("yank", "steady", "1.0")
        again = index.admin("yank", "steady", "1.0", check=False)
        assert (again.returncode, again.stderr) == (1, "cheeseshop-admin: error: steady 1.0 is already yanked.\n")
        index.admin("unyank", "steady", "1.0")
        twice = index.admin("unyank", "steady", "1.0", check=False)
        assert (twice.returncode, twice.stderr) == (1, "cheeseshop-admin: error: steady 1.0 is not yanked.\n")
        missing = index.admin("remove", "steady", "9.9", check=False)
        assert missing.stderr == "cheeseshop-admin: error: No release 9.9 of steady.\n"
        assert [e[3] for e in journal("sqlite", str(tmp_path), None)[len(before) :]] == [
            "yank release",
            "unyank release",
        ]
    finally:
        index.stop()
