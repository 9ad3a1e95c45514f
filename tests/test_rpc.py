"""
The XML-RPC API, called with the stdlib's xmlrpc.client against running
daemons (SQLite and PostgreSQL) after real uploads.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .daemon import RunningIndex, run
from .distributions import multipart, sdist, upload_fields, wheel
from .http import basic, get, post_form

PASSWORD = "rpc-password"


def upload(index: RunningIndex, path: Path, project: str, version: str, user: str = "rita") -> None:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, basic(user, PASSWORD))
    assert response.status == 200, response


class Served:
    """
    A daemon loaded with a few projects, and a way to read its journal.
    """

    def __init__(self, index: RunningIndex, dsn: str | None) -> None:
        self.index = index
        self.dsn = dsn
        self.proxy = xmlrpc.client.ServerProxy(index.url + "pypi", allow_none=True)

    def journal(self) -> list[tuple[Any, ...]]:
        query = "SELECT name, version, timestamp, action, serial FROM journal ORDER BY serial"
        if self.dsn is None:
            connection = sqlite3.connect(os.path.join(self.index.data_dir, "cheeseshop.sqlite"))
            try:
                return [tuple(r) for r in connection.execute(query)]
            finally:
                connection.close()
        import psycopg2

        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute(query)
            return [tuple(r) for r in cursor.fetchall()]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    dsn = None
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        dsn = server.create_database()
    index = RunningIndex(str(tmp_path_factory.mktemp(f"rpc-{request.param}")), database=dsn).start()
    index.add_user("rita", PASSWORD)
    index.add_user("otto", PASSWORD)
    dists = tmp_path_factory.mktemp("dists")
    twisted_like = ["Framework :: Twisted", "Programming Language :: Python :: 3"]
    upload(
        index,
        wheel(
            dists, "spam-eggs", "1.0", summary="Spam and eggs", extra_headers=[f"Classifier: {c}" for c in twisted_like]
        ),
        "spam-eggs",
        "1.0",
    )
    upload(index, wheel(dists, "spam-eggs", "2.0b1", summary="Spam and eggs, beta"), "spam-eggs", "2.0b1")
    upload(
        index,
        sdist(dists, "spam-eggs", "1.1", summary="Spam and eggs", extra_headers=["Keywords: breakfast,spam"]),
        "spam-eggs",
        "1.1",
    )
    upload(index, wheel(dists, "spamalot", "0.1", summary="A musical about knights"), "spamalot", "0.1", user="otto")
    upload(
        index,
        wheel(
            dists,
            "knights",
            "3.0",
            summary="Ni!",
            description="We are the knights who say spam.\n",
            extra_headers=["Author: Arthur"],
        ),
        "knights",
        "3.0",
        user="otto",
    )
    upload(
        index, wheel(dists, "controls", "1.0", summary="Bell", description="Ring\x0bthe\x07bell.\n"), "controls", "1.0"
    )
    index.admin("yank", "spam-eggs", "1.1", "--reason", "oops")
    yield Served(index, dsn)
    index.stop()
    if dsn is not None:
        request.getfixturevalue("pg_server").drop_database(dsn)


def test_listing_matches_the_journal(served: Served) -> None:
    """
    list_packages(_with_serial) names every project with its last serial,
    which is its newest journal entry's and its pages' serial.
    """
    proxy = served.proxy
    assert sorted(proxy.list_packages()) == ["controls", "knights", "spam-eggs", "spamalot"]
    serials = proxy.list_packages_with_serial()
    for name, serial in serials.items():
        assert serial == max(e[4] for e in served.journal() if e[0] == name)
        assert int(get(served.index.simple_url + name + "/").headers["X-PyPI-Last-Serial"]) == serial
    assert proxy.changelog_last_serial() == served.journal()[-1][4]
    assert int(get(served.index.simple_url).headers["X-PyPI-Last-Serial"]) == proxy.changelog_last_serial()


def test_changelog_since_serial_is_the_journal(served: Served) -> None:
    """
    changelog_since_serial returns the journal's rows after a serial, with
    timestamps in whole seconds.
    """
    journal = [[n, v, t // 1_000_000, a, s] for n, v, t, a, s in served.journal()]
    assert served.proxy.changelog_since_serial(0) == journal
    assert served.proxy.changelog_since_serial(journal[3][4]) == journal[4:]
    assert served.proxy.changelog_since_serial(journal[-1][4]) == []
    assert [row[3] for row in journal[:4]] == [
        "create",
        "add Owner rita",
        "new release",
        "add py3 file spam_eggs-1.0-py3-none-any.whl",
    ]
    assert journal[-1][3] == "yank release"


def test_changelog_by_time(served: Served) -> None:
    """
    changelog, updated_releases and changed_packages read the journal by
    time.
    """
    journal = served.journal()
    proxy = served.proxy
    assert proxy.changelog(0) == [[n, v, t // 1_000_000, a] for n, v, t, a, _ in journal]
    assert proxy.changelog(0, True)[0][4] == journal[0][4]
    assert proxy.changelog(2**31 - 1) == []
    updated = proxy.updated_releases(0)
    assert updated[0] == ["controls", "1.0"] and ["spam-eggs", "2.0b1"] in updated and len(updated) == 6
    assert proxy.changed_packages(0) == ["spam-eggs", "spamalot", "knights", "controls"]


def test_releases_roles_and_users(served: Served) -> None:
    """
    package_releases gives the latest release (all with show_hidden),
    package_roles and user_packages the roles.
    """
    proxy = served.proxy
    assert proxy.package_releases("spam-eggs") == ["1.0"]  # 1.1 is yanked, 2.0b1 a pre-release
    assert proxy.package_releases("Spam_Eggs", True) == ["2.0b1", "1.1", "1.0"]
    assert proxy.package_releases("no-such") == []
    assert proxy.package_roles("spamalot") == [["Owner", "otto"]]
    assert proxy.user_packages("rita") == [["Owner", "controls"], ["Owner", "spam-eggs"]]
    assert proxy.user_packages("nobody") == []


def test_release_urls_and_data(served: Served) -> None:
    """
    release_urls and release_data have PyPI's shapes; an unknown release
    gives an empty answer.
    """
    proxy = served.proxy
    (url,) = proxy.release_urls("spam-eggs", "1.0")
    assert url["filename"] == "spam_eggs-1.0-py3-none-any.whl" and url["packagetype"] == "bdist_wheel"
    assert url["digests"] == {"md5": url["md5_digest"], "sha256": url["sha256_digest"]}
    assert url["url"].startswith(served.index.url + "packages/") and url["url"].endswith("/" + url["filename"])
    assert isinstance(url["upload_time"], xmlrpc.client.DateTime) and url["has_sig"] is False
    assert get(url["url"]).status == 200
    data = proxy.release_data("spam-eggs", "1.0")
    assert data["name"] == "spam-eggs" and data["version"] == "1.0" and data["summary"] == "Spam and eggs"
    assert data["classifiers"] == ["Framework :: Twisted", "Programming Language :: Python :: 3"]
    assert data["downloads"] == {"last_day": -1, "last_week": -1, "last_month": -1}
    assert data["_pypi_ordering"] == 0
    assert proxy.release_data("spam-eggs", "1.1")["yanked_reason"] == "oops"
    assert proxy.release_data("spam-eggs", "9.9") == {} and proxy.release_urls("nope", "1") == []
    assert proxy.package_data("spam-eggs", "1.0") == data


def test_text_xml_cannot_carry_is_removed(served: Served) -> None:
    """
    Control characters in a description are left out of the answer, which
    stays valid XML.
    """
    assert served.proxy.release_data("controls", "1.0")["description"] == "Ringthebell.\n"


def test_search_ranks_matches(served: Served) -> None:
    """
    search finds words as prefixes in names, summaries, keywords and
    descriptions, ranks an exact name first and names above descriptions,
    and honours "and", "or" and single fields.
    """
    proxy = served.proxy
    hits = proxy.search({"name": "spam"}, "or")
    assert [h["name"] for h in hits] == ["spam-eggs", "spamalot"]
    assert hits[0] == {"name": "spam-eggs", "summary": "Spam and eggs", "version": "1.0", "_pypi_ordering": 0}
    assert [h["name"] for h in proxy.search({"name": "spamalot"})] == ["spamalot"]
    everywhere = [
        h["name"] for h in proxy.search({"name": ["spam"], "summary": ["spam"], "description": ["spam"]}, "or")
    ]
    assert everywhere[-1] == "knights" and set(everywhere) == {"spam-eggs", "spamalot", "knights"}
    assert [h["name"] for h in proxy.search({"name": "spam", "summary": "musical"}, "and")] == ["spamalot"]
    assert [h["name"] for h in proxy.search({"author": "arth"})] == ["knights"]
    assert proxy.search({"name": "nothing-like-this"}) == []
    exact = proxy.search({"name": ["spamalot"], "summary": ["spam"]}, "or")
    assert exact[0]["name"] == "spamalot"


def test_browse(served: Served) -> None:
    """
    browse lists the releases carrying every classifier given.
    """
    proxy = served.proxy
    assert proxy.browse(["Framework :: Twisted"]) == [["spam-eggs", "1.0"]]
    assert proxy.browse(["Framework :: Twisted", "Programming Language :: Python :: 3"]) == [["spam-eggs", "1.0"]]
    assert proxy.browse(["Framework :: Twisted", "Framework :: Django"]) == []


@pytest.mark.parametrize(
    "call, code, message",
    [
        (lambda p: p.no_such_method(), -32601, "server error; requested method not found"),
        (lambda p: p.package_releases(), -32602, "client error; package_name: Field required"),
        (lambda p: p.package_releases(7), -32602, "client error; package_name: Input should be a valid string"),
        (
            lambda p: p.package_releases("x", "yes"),
            -32602,
            "client error; show_hidden: Input should be a valid boolean",
        ),
        (
            lambda p: p.changelog_since_serial("1"),
            -32602,
            "client error; since_serial: Input should be a valid integer",
        ),
        (lambda p: p.changelog_last_serial(1), -32602, "client error; takes at most 0 arguments, got 1"),
        (
            lambda p: p.search({"name": "x"}, "xor"),
            -32500,
            "ValueError: Invalid operator, must be one of 'and' or 'or'.",
        ),
        (lambda p: p.search({"colour": "x"}), -32602, "client error; spec: unknown field 'colour'"),
        (lambda p: p.search("x"), -32602, "client error; spec: Input should be a valid struct"),
        (
            lambda p: p.browse("Framework :: Twisted"),
            -32602,
            "client error; classifiers: Input should be a valid array",
        ),
        (
            lambda p: p.browse(["Not :: A :: Classifier"]),
            -32500,
            'ValueError: Unknown category "Not :: A :: Classifier"',
        ),
    ],
)
def test_faults(served: Served, call: Any, code: int, message: str) -> None:
    """
    Bad calls are answered with a Fault saying what is wrong, and nothing
    internal.
    """
    with pytest.raises(xmlrpc.client.Fault) as raised:
        call(served.proxy)
    assert (raised.value.faultCode, raised.value.faultString) == (code, message)


def test_rpc2_and_uploads_to_pypi_still_work(served: Served, tmp_path: Path) -> None:
    """
    /RPC2 answers XML-RPC too, and /pypi still takes uploads (only text/xml
    goes to XML-RPC).
    """
    assert xmlrpc.client.ServerProxy(served.index.url + "RPC2").changelog_last_serial() > 0
    dist = wheel(tmp_path, "via-pypi", "1.0")
    content_type, body = multipart(
        upload_fields(dist, "via-pypi", "1.0"), [("content", dist.name, dist.read_bytes(), None)]
    )
    assert post_form(served.index.url + "pypi", content_type, body, basic("rita", PASSWORD)).status == 200


def test_pip_search(served: Served) -> None:
    """
    pip search, pointed at /pypi, finds projects through XML-RPC search.
    """
    result = run([sys.executable, "-m", "pip", "search", "--isolated", "--index", served.index.url + "pypi", "spam"])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("spam-eggs (1.0)") and "Spam and eggs" in lines[0]
    assert any(line.startswith("spamalot (0.1)") for line in lines)


def test_changelog_is_capped_at_50000_rows(tmp_path: Path) -> None:
    """
    changelog_since_serial returns at most 50,000 rows; the next call, from
    the last serial seen, returns the rest.
    """
    index = RunningIndex(str(tmp_path)).start()
    try:
        database = sqlite3.connect(os.path.join(str(tmp_path), "cheeseshop.sqlite"))
        with database:
            database.executemany(
                "INSERT INTO journal (serial, name, normalized_name, version, timestamp, action) VALUES (?, ?, ?, ?, ?, ?)",
                ((n, f"p{n % 97}", f"p{n % 97}", "1.0", n * 1_000_000, "new release") for n in range(1, 50_011)),
            )
        database.close()
        proxy = xmlrpc.client.ServerProxy(index.url + "pypi")
        first = proxy.changelog_since_serial(0)
        assert len(first) == 50_000 and first[-1][4] == 50_000
        assert [row[4] for row in proxy.changelog_since_serial(first[-1][4])] == list(range(50_001, 50_011))
    finally:
        index.stop()
