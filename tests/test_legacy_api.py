"""
The legacy API's other actions, and who owns a name.
"""

from __future__ import annotations

import json
import sqlite3
import xmlrpc.client
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


def test_a_new_display_name_is_journaled_and_shown(index: RunningIndex) -> None:
    """
    Registering a release again under another spelling of its project's
    name changes the display name, with legacy PyPI's "rename from ..."
    entry even though nothing else changed; pages and search follow.
    """
    fields = [
        (":action", "submit"),
        ("metadata_version", "1.0"),
        ("name", "re.named"),
        ("version", "1.0"),
        ("summary", "Renaming"),
    ]
    assert post(index, fields, basic("lee", PASSWORD)).status == 200
    assert json.loads(get(index.url + "pypi/re-named/json").body)["info"]["name"] == "re.named"
    fields[2] = ("name", "Re_Named")
    assert post(index, fields, basic("lee", PASSWORD)).status == 200
    database = sqlite3.connect(str(Path(index.data_dir) / "cheeseshop.sqlite"))
    entries = database.execute("SELECT name, action FROM journal WHERE normalized_name = 're-named' ORDER BY serial")
    assert list(entries)[-1] == ("Re_Named", "rename from re.named")
    assert json.loads(get(index.url + "pypi/re-named/json").body)["info"]["name"] == "Re_Named"
    assert ">Re_Named</a>" in get(index.simple_url).text
    hits = xmlrpc.client.ServerProxy(index.url + "pypi").search({"name": "re_named"})
    assert [hit["name"] for hit in hits] == ["Re_Named"]


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


def journal_length(index: RunningIndex) -> int:
    database = sqlite3.connect(str(Path(index.data_dir) / "cheeseshop.sqlite"))
    try:
        return int(database.execute("SELECT COUNT(*) FROM journal").fetchone()[0])
    finally:
        database.close()


def test_identical_reupload_changes_nothing(index: RunningIndex, tmp_path: Path) -> None:
    """
    Uploading the same file again answers 200 and writes nothing.
    """
    dist = wheel(tmp_path, "again-and-again", "1.0")
    assert upload(index, dist, "again-and-again", "1.0", "lee").status == 200
    before = (journal_length(index), get(index.simple_url + "again-and-again/").body)
    assert upload(index, dist, "again-and-again", "1.0", "lee").status == 200
    assert (journal_length(index), get(index.simple_url + "again-and-again/").body) == before


def test_bearer_token_upload(index: RunningIndex, tmp_path: Path) -> None:
    """
    An API token works in an Authorization: Bearer header too.
    """
    token = index.token("lee")
    dist = wheel(tmp_path, "bearer-borne", "1.0")
    content_type, body = multipart(
        upload_fields(dist, "bearer-borne", "1.0"), [("content", dist.name, dist.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, {"Authorization": f"Bearer {token}"})
    assert response.status == 200


def test_maintainers_may_upload(index: RunningIndex, tmp_path: Path) -> None:
    """
    A Maintainer of a project may upload to it, as its Owner may.
    """
    assert upload(index, wheel(tmp_path, "team-work", "1.0"), "team-work", "1.0", "lee").status == 200
    assert upload(index, wheel(tmp_path, "team-work", "1.1"), "team-work", "1.1", "max").status == 403
    database = sqlite3.connect(str(Path(index.data_dir) / "cheeseshop.sqlite"))
    with database:
        database.execute(
            "INSERT INTO roles (project_id, user_id, role) SELECT p.id, u.id, 'Maintainer' "
            "FROM projects p, users u WHERE p.normalized_name = 'team-work' AND u.name = 'max'"
        )
    database.close()
    assert upload(index, wheel(tmp_path, "team-work", "1.1"), "team-work", "1.1", "max").status == 200


def test_reason_phrase_is_latin1_and_one_line(index: RunningIndex, tmp_path: Path) -> None:
    """
    A message with characters Latin-1 cannot carry, or line breaks, goes in
    the reason phrase with those replaced, and whole in the UTF-8 body.
    """
    dist = wheel(tmp_path, "namen", "1.0")
    content_type, body = multipart(
        upload_fields(dist, "名前\r\nX", "1.0"), [("content", dist.name, dist.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, basic("lee", PASSWORD))
    assert response.status == 400
    assert response.reason.startswith("'??\\r\\nX' is an invalid value for Name. Error: Start and end")
    assert response.text.startswith("400 '名前\\r\\nX' is an invalid value for Name. Error: Start and end")


def test_reason_phrase_strips_line_breaks() -> None:
    """
    Line breaks never reach the reason phrase, where they would end the
    status line early.
    """
    from twistedindex.web.errors import reason_phrase

    assert reason_phrase("one\r\ntwo\nthree  four é 名") == "one two three four é ?".encode("latin-1")
