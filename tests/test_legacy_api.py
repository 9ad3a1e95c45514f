"""
The legacy API's other actions, and who owns a name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from trove_classifiers import sorted_classifiers

from twistedindex import accounts

from .daemon import RunningIndex
from .distributions import multipart, upload_fields, wheel
from .http import Response, basic, get, post_form

PASSWORD = "legacy-password"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("legacy")), "--registration", "open").start()
    running.add_user("lee", PASSWORD)
    running.add_user("max", PASSWORD)
    yield running
    running.stop()


def post(
    index: RunningIndex, fields: list[tuple[str, str]], auth: dict[str, str] | None = None, path: str = "legacy/"
) -> Response:
    content_type, body = multipart(fields)
    return post_form(index.url + path, content_type, body, auth or {})


def upload(index: RunningIndex, path: Path, project: str, version: str, user: str) -> Response:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    return post_form(index.upload_url, content_type, body, basic(user, PASSWORD))


def test_list_classifiers(index: RunningIndex) -> None:
    """
    GET ?:action=list_classifiers lists trove-classifiers, one per line, at
    each legacy URL.
    """
    for path in ("", "pypi", "legacy/"):
        response = get(index.url + path + "?:action=list_classifiers")
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text.splitlines() == list(sorted_classifiers)


def test_verify(index: RunningIndex) -> None:
    """
    :action=verify checks metadata without storing anything.
    """
    good = [
        (":action", "verify"),
        ("metadata_version", "1.0"),
        ("name", "checked"),
        ("version", "1.0"),
        ("classifiers", "Programming Language :: Python :: 3"),
    ]
    assert post(index, good).status == 200
    bad = [(":action", "verify"), ("metadata_version", "1.0"), ("name", "checked"), ("version", "not a version")]
    response = post(index, bad)
    assert response.status == 400
    assert response.reason == (
        "'not a version' is invalid for 'version'. See https://packaging.python.org/specifications/core-metadata for more information."
    )
    assert get(index.simple_url + "checked/").status == 404


def test_open_registration_creates_an_account(index: RunningIndex) -> None:
    """
    With --registration open, :action=user creates an account that can then
    log in; a second account of the same name is refused.
    """
    fields = [
        (":action", "user"),
        ("name", "newcomer"),
        ("password", "newcomer-pass"),
        ("confirm", "newcomer-pass"),
        ("email", "n@example.org"),
    ]
    assert post(index, fields).status == 200
    database = sqlite3.connect(str(Path(index.data_dir) / "cheeseshop.sqlite"))
    stored = database.execute("SELECT password_hash FROM users WHERE name = 'newcomer'").fetchone()[0]
    assert accounts.verify_password(stored, "newcomer-pass")
    again = post(index, fields)
    assert (again.status, again.reason) == (400, "User 'newcomer' already exists.")
    mismatch = [
        (":action", "user"),
        ("name", "other"),
        ("password", "one-password"),
        ("confirm", "two-password"),
        ("email", "o@example.org"),
    ]
    assert post(index, mismatch).reason == "The passwords do not match."


def test_register_updates_metadata_and_journals_it(index: RunningIndex) -> None:
    """
    A second register of a release with changed metadata updates it, with
    legacy PyPI's "update ..." journal entry.
    """
    fields = [
        (":action", "submit"),
        ("metadata_version", "1.0"),
        ("name", "regged"),
        ("version", "1.0"),
        ("summary", "First"),
    ]
    assert post(index, fields, basic("lee", PASSWORD)).status == 200
    fields[-1] = ("summary", "Second")
    assert post(index, fields, basic("lee", PASSWORD)).status == 200
    database = sqlite3.connect(str(Path(index.data_dir) / "cheeseshop.sqlite"))
    actions = [
        row[0]
        for row in database.execute("SELECT action FROM journal WHERE normalized_name = 'regged' ORDER BY serial")
    ]
    assert actions == ["create", "add Owner lee", "new release", "update summary"]
    other = post(index, fields, basic("max", PASSWORD))
    assert other.status == 403


def test_a_normalized_name_belongs_to_its_project(index: RunningIndex, tmp_path: Path) -> None:
    """
    The first uploader owns the name; another spelling of it is the same
    project, closed to others and open to its owner, who may respell it.
    """
    assert upload(index, wheel(tmp_path, "first-come", "1.0"), "first-come", "1.0", "lee").status == 200
    refused = upload(index, wheel(tmp_path, "First_Come", "2.0", dist_name="first_come"), "First_Come", "2.0", "max")
    assert refused.status == 403
    assert refused.reason == (
        "The user 'max' isn't allowed to upload to project 'first-come'. See https://pypi.org/help/#project-name for more information."
    )
    assert (
        upload(index, wheel(tmp_path, "First_Come", "2.0", dist_name="first_come"), "First_Come", "2.0", "lee").status
        == 200
    )
    assert '<a href="first-come/">First_Come</a>' in get(index.simple_url).text
