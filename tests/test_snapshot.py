"""
What a mirror reads from an upstream's pages (the JSON API, PEP 503/691
simple pages, a twistedindex's /+replica/), what it refuses to read, and how
a round reports its progress.

The pages here are written out in the shapes the upstreams serve; the
mirror tests (tests/test_mirror.py) read the same shapes from running
daemons.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from twistedindex.filestore import relative_path
from twistedindex.mirror.service import Progress
from twistedindex.mirror.snapshot import (
    BadSnapshot,
    from_json_api,
    from_replica,
    from_simple,
    listing_from_simple,
    replica_documents,
)
from twistedindex.mirror.upstream import is_simple_url

PAGE = "https://upstream.example/pypi/demo-pkg/json"
SIMPLE = "https://upstream.example/simple/demo-pkg/"
SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()
SHA_M = hashlib.sha256(b"metadata").hexdigest()
B2_A = hashlib.blake2b(b"a", digest_size=32).hexdigest()


def json_api_file(filename: str, sha256: str, **extra: Any) -> dict[str, Any]:
    return {
        "filename": filename,
        "digests": {"sha256": sha256, "md5": "0" * 32, "blake2b_256": "1" * 64},
        "size": 10,
        "url": f"../../packages/aa/bb/cc/{filename}#sha256={sha256}",
        "upload_time_iso_8601": "2026-01-02T03:04:05.000006Z",
        "yanked": False,
        "yanked_reason": None,
        **extra,
    }


def json_api_page(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "info": {
            "name": "Demo.Pkg",
            "version": "2.0",
            "summary": "A demo",
            "description": "Long text",
            "description_content_type": "text/x-rst",
            "requires_python": ">=3.8",
            "keywords": "demo,test",
            "yanked": False,
            "yanked_reason": None,
        },
        "last_serial": 42,
        "releases": {
            "1.0": [
                json_api_file("demo_pkg-1.0.tar.gz", SHA_A, yanked=True, yanked_reason="broken"),
            ],
            "2.0": [
                json_api_file("demo_pkg-2.0-py3-none-any.whl", SHA_B, **{"core-metadata": {"sha256": SHA_M}}),
                json_api_file("demo_pkg-2.0.tar.gz", SHA_A.replace("a", "b", 1)),
            ],
        },
        "ownership": {"roles": [{"role": "Owner", "user": "alice"}, {"role": "Maintainer", "user": "bob"}]},
    }
    document.update(changes)
    return json.dumps(document).encode()


def test_json_api_page() -> None:
    """
    The JSON API page gives every file with its digests and absolute URL,
    the latest release's description, the yanks, the roles, and the page's
    serial when no header gave one.
    """
    snapshot = from_json_api(json_api_page(), PAGE, None)
    assert (snapshot.name, snapshot.normalized_name, snapshot.serial) == ("Demo.Pkg", "demo-pkg", 42)
    assert sorted(snapshot.releases) == ["1.0", "2.0"]
    old, latest = snapshot.releases["1.0"], snapshot.releases["2.0"]
    assert (old.yanked, old.yanked_reason, old.metadata) == (True, "broken", None)
    assert latest.metadata is not None and not latest.yanked
    assert latest.metadata.values()["summary"] == "A demo"
    assert latest.metadata.values()["requires_python"] == ">=3.8"
    assert latest.metadata.record["keywords"] == "demo,test"
    wheel = next(f for f in snapshot.files if f.filename.endswith(".whl"))
    assert wheel.url == "https://upstream.example/packages/aa/bb/cc/demo_pkg-2.0-py3-none-any.whl"
    assert (wheel.sha256, wheel.md5, wheel.blake2b_256, wheel.size) == (SHA_B, "0" * 32, "1" * 64, 10)
    assert (wheel.packagetype, wheel.python_version, wheel.core_metadata) == ("bdist_wheel", "py3", SHA_M)
    assert wheel.upload_time == 1767323045000006
    sdist = next(f for f in snapshot.files if f.filename == "demo_pkg-1.0.tar.gz")
    assert (sdist.packagetype, sdist.python_version, sdist.yanked, sdist.yanked_reason) == (
        "sdist",
        "source",
        True,
        "broken",
    )
    assert snapshot.roles == (("Owner", "alice"), ("Maintainer", "bob"))
    # A serial from the X-PyPI-Last-Serial header wins over the page's own.
    assert from_json_api(json_api_page(), PAGE, 40).serial == 40


@pytest.mark.parametrize(
    "page, message",
    [
        (b"<html>", "not JSON"),
        (json_api_page(info=[]), "no info"),
        (json_api_page(releases=None), "no releases"),
        (json_api_page(releases={"1.0": [json_api_file("demo_pkg-1.0.tar.gz", "nope")]}), "no sha256"),
        (json_api_page(releases={"1.0": [json_api_file("../evil-1.0.tar.gz", SHA_A)]}), "is not a file name"),
        (json_api_page(releases={"1.0": [json_api_file(".hidden-1.0.tar.gz", SHA_A)]}), "is not a file name"),
        (json_api_page(releases={"1.0": [json_api_file("notes.txt", SHA_A)]}), "not a wheel or sdist"),
        (json_api_page(releases={"1.0": [json_api_file("demo_pkg-1.0.tar.gz", SHA_A, size=-1)]}), "no size"),
        (
            json_api_page(
                releases={
                    "1.0": [json_api_file("demo_pkg-1.0.tar.gz", SHA_A)],
                    "1.0.0": [json_api_file("demo_pkg-1.0.tar.gz", SHA_A)],
                }
            ),
            "listed twice",
        ),
    ],
)
def test_json_api_page_refused(page: bytes, message: str) -> None:
    """
    A page that does not say what a JSON API page must is refused, with the
    reason, before anything is fetched or stored.
    """
    with pytest.raises(BadSnapshot, match=message):
        from_json_api(page, PAGE, None)


SIMPLE_HTML = f"""<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1"></head><body>
<a href="../../packages/aa/bb/cc/demo_pkg-1.0.tar.gz#sha256={SHA_A}" data-yanked="broken">demo_pkg-1.0.tar.gz</a>
<a href="../../packages/aa/bb/cc/demo_pkg-2.0-py3-none-any.whl#sha256={SHA_B}"
   data-requires-python="&gt;=3.8" data-core-metadata="sha256={SHA_M}">demo_pkg-2.0-py3-none-any.whl</a>
<a href="../../packages/aa/bb/cc/demo_pkg-2.0.tar.gz#sha256={SHA_A}" data-yanked="">demo_pkg-2.0.tar.gz</a>
</body></html>""".encode()


def test_simple_html_page() -> None:
    """
    A PEP 503 page gives files with their sha256, requires-python (unescaped),
    yank reasons and PEP 714 metadata hashes; a release is yanked only when
    all its files are.
    """
    snapshot = from_simple(SIMPLE_HTML, SIMPLE, "text/html", "demo-pkg")
    files = {f.filename: f for f in snapshot.files}
    assert files["demo_pkg-1.0.tar.gz"].url == "https://upstream.example/packages/aa/bb/cc/demo_pkg-1.0.tar.gz"
    assert (files["demo_pkg-1.0.tar.gz"].yanked, files["demo_pkg-1.0.tar.gz"].yanked_reason) == (True, "broken")
    wheel = files["demo_pkg-2.0-py3-none-any.whl"]
    assert (wheel.requires_python, wheel.core_metadata, wheel.yanked, wheel.size) == (">=3.8", SHA_M, False, None)
    # No data-core-metadata: the upstream serves no metadata file.
    assert files["demo_pkg-2.0.tar.gz"].core_metadata is False
    assert (files["demo_pkg-2.0.tar.gz"].yanked, files["demo_pkg-2.0.tar.gz"].yanked_reason) == (True, None)
    assert snapshot.releases["1.0"].yanked and snapshot.releases["1.0"].yanked_reason == "broken"
    assert not snapshot.releases["2.0"].yanked
    assert snapshot.serial is None and snapshot.roles is None


def test_simple_html_page_without_digest_is_refused() -> None:
    """
    A file linked without a sha256 fragment cannot be checked: the page is
    refused.
    """
    page = b'<a href="../../packages/demo_pkg-1.0.tar.gz#md5=00">demo_pkg-1.0.tar.gz</a>'
    with pytest.raises(BadSnapshot, match="no sha256"):
        from_simple(page, SIMPLE, "text/html", "demo-pkg")


def test_simple_json_page() -> None:
    """
    A PEP 691 page gives sizes and upload times (PEP 700), yank reasons, and
    releases listed in C{versions} that have no files.
    """
    page = {
        "meta": {"api-version": "1.1", "_last-serial": 7},
        "name": "demo-pkg",
        "versions": ["1.0", "3.0"],
        "files": [
            {
                "filename": "demo_pkg-1.0-py3-none-any.whl",
                "url": "https://files.example/demo_pkg-1.0-py3-none-any.whl",
                "hashes": {"sha256": SHA_A},
                "size": 5,
                "upload-time": "2026-01-02T03:04:05Z",
                "yanked": "bad build",
                "core-metadata": True,
            }
        ],
    }
    snapshot = from_simple(json.dumps(page).encode(), SIMPLE, "application/vnd.pypi.simple.v1+json", "demo-pkg")
    (file,) = snapshot.files
    assert (file.url, file.size, file.upload_time) == (
        "https://files.example/demo_pkg-1.0-py3-none-any.whl",
        5,
        1767323045000000,
    )
    assert (file.yanked, file.yanked_reason) == (True, "bad build")
    assert file.core_metadata is None  # served, digest not given: the wheel's own METADATA is used
    assert sorted(snapshot.releases) == ["1.0", "3.0"]
    assert snapshot.releases["1.0"].yanked and not snapshot.releases["3.0"].yanked


def test_simple_listings() -> None:
    """
    The root simple page lists projects, with PEP 691's C{_last-serial} when
    the upstream gives it.
    """
    listing = {"meta": {"api-version": "1.1"}, "projects": [{"name": "a", "_last-serial": 3}, {"name": "B_c"}]}
    assert listing_from_simple(json.dumps(listing).encode(), SIMPLE, "application/vnd.pypi.simple.v1+json") == {
        "a": 3,
        "B_c": None,
    }
    html_listing = b'<a href="/simple/a/">a</a>\n<a href="/simple/b-c/">B_c</a><a href="x">not a name!</a>'
    assert listing_from_simple(html_listing, SIMPLE, "text/html") == {"a": None, "B_c": None}
    with pytest.raises(BadSnapshot, match="no projects"):
        listing_from_simple(b"{}", SIMPLE, "application/vnd.pypi.simple.v1+json")


def replica_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "demo-pkg",
        "serial": 9,
        "releases": {
            "1.0": {
                "created": 1767323045000000,
                "yanked": True,
                "yanked_reason": "old",
                "summary": "A demo",
                "description": "text",
                "description_content_type": "text/plain",
                "requires_python": None,
                "metadata": {"keywords": "demo"},
            }
        },
        "files": [
            {
                "filename": "demo_pkg-1.0-py3-none-any.whl",
                "version": "1.0",
                "sha256": hashlib.sha256(b"a").hexdigest(),
                "blake2b_256": B2_A,
                "md5": hashlib.md5(b"a").hexdigest(),
                "size": 1,
                "packagetype": "bdist_wheel",
                "python_version": "py3",
                "upload_time": 1767323045000001,
                "uploaded_by": "alice",
                "metadata_sha256": SHA_M,
                "content": base64.b64encode(b"a").decode(),
                "metadata_content": base64.b64encode(b"metadata").decode(),
            }
        ],
        "roles": [["Owner", "alice"]],
        "serversig": base64.b64encode(b"signature").decode(),
    }
    document.update(changes)
    return document


REPLICA_URL = "http://up/+replica/?project=demo-pkg"


def test_replica_document() -> None:
    """
    A twistedindex's /+replica/ document describes every release and file
    whole: creation times, uploader, all digests, inline content, the roles,
    the serial and the PEP 381 signature.  File URLs are the upstream's
    content-addressed paths.
    """
    snapshot = from_replica(replica_document(), REPLICA_URL, "http://up")
    assert (snapshot.name, snapshot.serial, snapshot.signature) == ("demo-pkg", 9, b"signature")
    release = snapshot.releases["1.0"]
    assert (release.created, release.yanked, release.yanked_reason) == (1767323045000000, True, "old")
    assert release.metadata is not None and release.metadata.record == {"keywords": "demo"}
    (file,) = snapshot.files
    assert file.url == "http://up/packages/" + relative_path(B2_A, "demo_pkg-1.0-py3-none-any.whl")
    assert (file.content, file.metadata_content, file.uploaded_by, file.core_metadata, file.upload_time) == (
        b"a",
        b"metadata",
        "alice",
        SHA_M,
        1767323045000001,
    )
    assert snapshot.roles == (("Owner", "alice"),)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "not a name!"}, "not a project name"),
        ({"releases": {"1.0": {"yanked": False}}}, "malformed"),
        ({"serversig": "%%%"}, "not base64"),
        ({"serial": None}, "no serial"),
    ],
)
def test_replica_document_refused(changes: dict[str, Any], message: str) -> None:
    """
    A /+replica/ document that is malformed is refused with the reason.
    """
    with pytest.raises(BadSnapshot, match=message):
        from_replica(replica_document(**changes), REPLICA_URL, "http://up")


def test_replica_document_refuses_bad_files() -> None:
    """
    A file of no listed release, or whose inline content is not base64, is
    refused.
    """
    document = replica_document()
    document["files"][0]["version"] = "2.0"
    with pytest.raises(BadSnapshot, match="belongs to no release"):
        from_replica(document, REPLICA_URL, "http://up")
    document = replica_document()
    document["files"][0]["content"] = "not base64!"
    with pytest.raises(BadSnapshot, match="not base64"):
        from_replica(document, REPLICA_URL, "http://up")


def test_replica_answer() -> None:
    """
    A /+replica/ answer holds a document (or null) for each project asked
    for; one without its projects is refused.
    """
    body = json.dumps({"projects": {"demo-pkg": replica_document(), "gone": None}}).encode()
    documents = replica_documents(body, REPLICA_URL)
    assert documents == {"demo-pkg": replica_document(), "gone": None}
    for refused in (b"[]", b'{"version": 2}', b'{"projects": []}'):
        with pytest.raises(BadSnapshot, match="no projects"):
            replica_documents(refused, REPLICA_URL)


def test_progress_reports_counts_rate_and_time_left() -> None:
    """
    A round's progress line gives projects done of those to do, failures,
    files, bytes, the rate, and the time left at that rate; the last line
    gives the round's duration.
    """
    clock = Clock()
    clock.advance(1000)
    progress = Progress(100, clock.seconds)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        clock.advance(10)
        progress.done, progress.failed, progress.files, progress.bytes = 18, 2, 40, 20 * 2**20
        progress.report()
        clock.advance(30)
        progress.done = 98
        progress.report(final=True)
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [formatEvent(e) for e in events if "projects" in formatEvent(e)]
    assert lines[0] == (
        "mirror: 20/100 projects (2 failed), 40 files, 20.0 MiB (2.0 MiB/s, 2.0 projects/s), "
        "0 files removed, about 40 s left"
    )
    assert lines[1].startswith("mirror: 100/100 projects (2 failed)") and lines[1].endswith("done in 40.0 s")


def test_an_upstream_named_by_its_simple_index() -> None:
    """
    An upstream URL ending in /simple or /+simple (devpi's indexes) names
    the simple index itself; any other names the root above /simple/.
    """
    assert is_simple_url("http://devpi.example/alice/dev/+simple/")
    assert is_simple_url("https://index.example/simple")
    assert not is_simple_url("https://index.example")
    assert not is_simple_url("https://index.example/simple-things/")
