"""
The simple API, the files and the JSON API over HTTP, against a running
daemon: formats, attributes, headers, redirects, validators and freshness.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from twisted.web.test.requesthelper import DummyRequest

from twistedindex.config import Settings
from twistedindex.web.cache import PageCache, Route
from twistedindex.web.jsonapi import JsonApiResource
from twistedindex.web.simple import choose_content_type

from .daemon import RunningIndex
from .distributions import multipart, sdist, upload_fields, wheel
from .http import basic, get, post_form, request

PASSWORD = "simple-password"
JSON = "application/vnd.pypi.simple.v1+json"


def upload(index: RunningIndex, path: Path, project: str, version: str) -> None:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, basic("sam", PASSWORD))
    assert response.status == 200, response


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dists")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, dists: Path) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("simple"))).start()
    running.add_user("sam", PASSWORD)
    upload(running, wheel(dists, "Fancy.Name", "1.0", requires_python=">=3.8,<4"), "Fancy.Name", "1.0")
    upload(running, sdist(dists, "Fancy.Name", "1.0", requires_python=">=3.8,<4"), "Fancy.Name", "1.0")
    upload(running, wheel(dists, "Fancy.Name", "0.9"), "Fancy.Name", "0.9")
    running.admin("yank", "fancy-name", "0.9", "--reason", 'bad "quotes" & <tags>')
    yield running
    running.stop()


@pytest.mark.parametrize(
    "accept, format_param, expected",
    [
        (None, None, "text/html"),
        ("*/*", None, "text/html"),
        ("text/plain", None, "text/html"),
        (JSON, None, JSON),
        ("application/vnd.pypi.simple.latest+json", None, JSON),
        ("application/vnd.pypi.simple.v1+html", None, "application/vnd.pypi.simple.v1+html"),
        ("text/html;q=0.01, application/vnd.pypi.simple.v1+html;q=0.2, " + JSON, None, JSON),
        (JSON + ";q=0.5, text/html", None, "text/html"),
        (JSON + ";q=0, */*", None, "text/html"),
        ("application/*", None, "application/vnd.pypi.simple.v1+html"),
        (None, JSON, JSON),
        ("text/html", JSON, JSON),
        (JSON, "text/html", "text/html"),
    ],
)
def test_content_negotiation(accept: str | None, format_param: str | None, expected: str) -> None:
    """
    PEP 691: ?format= first, then Accept with q-values, HTML when in doubt.
    """
    assert choose_content_type(accept, format_param) == expected


def test_project_page_html(index: RunningIndex) -> None:
    """
    The HTML page: PEP 503 links with sha256 fragments, relative URLs,
    escaped requires-python, yanks with their reasons, core metadata under
    both names, the API version and the serial.
    """
    response = get(index.simple_url + "fancy-name/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Vary"] == "Accept, Accept-Encoding"
    serial = int(response.headers["X-PyPI-Last-Serial"])
    page = response.text
    assert '<meta name="pypi:repository-version" content="1.1">' in page
    assert page.rstrip().endswith(f"<!--SERIAL {serial}-->")
    links = re.findall(r"<a ([^>]*)>([^<]*)</a>", page)
    assert [text for _, text in links] == [
        "fancy_name-0.9-py3-none-any.whl",
        "fancy_name-1.0-py3-none-any.whl",
        "fancy_name-1.0.tar.gz",
    ]
    yanked, wheel_link, sdist_link = (attributes for attributes, _ in links)
    assert 'data-yanked="bad &quot;quotes&quot; &amp; &lt;tags&gt;"' in yanked
    assert 'data-requires-python="&lt;4,&gt;=3.8"' in wheel_link and "data-yanked" not in wheel_link
    metadata = re.search(r'data-core-metadata="sha256=([0-9a-f]{64})"', wheel_link)
    assert metadata and f'data-dist-info-metadata="sha256={metadata.group(1)}"' in wheel_link
    assert "data-core-metadata" not in sdist_link
    href = re.search(r'href="([^"]+)"', wheel_link).group(1)  # type: ignore[union-attr]
    assert href.startswith("../../packages/") and "#sha256=" in href
    url, digest = urljoin(index.simple_url + "fancy-name/", href).split("#sha256=")
    data = get(url).body
    assert hashlib.sha256(data).hexdigest() == digest
    served_metadata = get(url + ".metadata").body
    assert hashlib.sha256(served_metadata).hexdigest() == metadata.group(1)
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        assert archive.read("fancy_name-1.0.dist-info/METADATA") == served_metadata


def test_project_page_json(index: RunningIndex) -> None:
    """
    The PEP 691 JSON page with PEP 700's versions, sizes and times, PEP 714's
    core-metadata key (and not the old one), yanks and the serial.
    """
    response = get(index.simple_url + "fancy-name/", {"Accept": JSON})
    assert response.headers["Content-Type"] == JSON
    page = json.loads(response.body)
    assert page["meta"] == {"api-version": "1.1", "_last-serial": int(response.headers["X-PyPI-Last-Serial"])}
    assert page["name"] == "fancy-name"
    assert page["versions"] == ["0.9", "1.0"]
    files = {f["filename"]: f for f in page["files"]}
    assert files["fancy_name-0.9-py3-none-any.whl"]["yanked"] == 'bad "quotes" & <tags>'
    whl = files["fancy_name-1.0-py3-none-any.whl"]
    assert whl["yanked"] is False and whl["requires-python"] == "<4,>=3.8"
    assert set(whl["core-metadata"]) == {"sha256"} and "dist-info-metadata" not in whl
    assert files["fancy_name-1.0.tar.gz"]["core-metadata"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", whl["upload-time"])
    assert whl["size"] == len(get(urljoin(index.simple_url + "fancy-name/", whl["url"])).body)
    assert get(index.simple_url + "fancy-name/?format=" + JSON).body == response.body


def test_index_page(index: RunningIndex) -> None:
    """
    /simple/ lists every project with its serial, in HTML and JSON, and
    sends the newest serial.
    """
    html = get(index.simple_url)
    assert '<a href="fancy-name/">Fancy.Name</a>' in html.text
    serial = int(html.headers["X-PyPI-Last-Serial"])
    listing = json.loads(get(index.simple_url, {"Accept": JSON}).body)
    assert listing["meta"]["_last-serial"] == serial
    assert {"name": "Fancy.Name", "_last-serial": serial} in listing["projects"]


@pytest.mark.parametrize(
    "path, location",
    [
        ("simple", "simple/"),
        ("simple/Fancy.Name/", "../fancy-name/"),
        ("simple/fancy_name/", "../fancy-name/"),
        ("simple/fancy-name", "fancy-name/"),
        ("pypi/Fancy.Name/json", "/pypi/fancy-name/json"),
        ("pypi/FANCY-NAME/1.0/json", "/pypi/fancy-name/1.0/json"),
    ],
)
def test_redirects(index: RunningIndex, path: str, location: str) -> None:
    """
    Names that are not normalized, and a missing slash, redirect with 301.
    """
    response = get(index.url + path)
    assert (response.status, response.headers["Location"]) == (301, location)


@pytest.mark.parametrize(
    "path",
    [
        "simple/no-such-project/",
        "pypi/no-such-project/json",
        "pypi/fancy-name/7.0/json",
        # Not project names at all: no redirect, which could leave the site.
        "simple/%2F%2Fexample.com",
        "simple/%2F%2Fexample.com/",
        "simple/-leading/",
        "pypi/%2F%2Fexample.com/json",
        "pypi/..%2F..%2Fexample.com/json",
    ],
)
def test_unknown_is_404(index: RunningIndex, path: str) -> None:
    """
    An unknown project or version answers 404, and so does a name that no
    project could have.
    """
    response = get(index.url + path)
    assert response.status == 404
    assert "Location" not in response.headers


def test_validators_and_gzip(index: RunningIndex) -> None:
    """
    Pages carry a strong ETag; If-None-Match answers 304; gzip is sent when
    accepted, with its own ETag.
    """
    url = index.simple_url + "fancy-name/"
    plain = get(url)
    etag = plain.headers["ETag"]
    not_modified = get(url, {"If-None-Match": etag})
    assert not_modified.status == 304 and not_modified.headers["ETag"] == etag
    # RFC 9110, 8.6: a 304's Content-Length, if any, is the 200's.
    assert int(not_modified.headers["Content-Length"]) == len(plain.body)
    assert get(url, {"If-None-Match": '"other"'}).status == 200
    zipped = get(url, {"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["ETag"] != etag
    assert gzip.decompress(zipped.body) == plain.body
    assert get(url, {"Accept-Encoding": "gzip;q=0"}).headers.get("Content-Encoding") is None
    head = request("HEAD", url)
    assert head.status == 200 and head.body == b"" and int(head.headers["Content-Length"]) == len(plain.body)


def test_files(index: RunningIndex) -> None:
    """
    Files come with their length, a strong ETag, an immutable cache
    lifetime, and answer HEAD and Range requests; .tar.gz is not sent as
    gzip-encoded.
    """
    files = json.loads(get(index.url + "pypi/fancy-name/1.0/json").body)["urls"]
    for file in files:
        url = index.url + file["url"].lstrip("/")
        response = get(url)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers.get("Content-Encoding") is None
        assert int(response.headers["Content-Length"]) == file["size"] == len(response.body)
        assert hashlib.sha256(response.body).hexdigest() == file["digests"]["sha256"]
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        not_modified = get(url, {"If-None-Match": response.headers["ETag"]})
        assert not_modified.status == 304 and int(not_modified.headers["Content-Length"]) == file["size"]
        ranged = get(url, {"Range": "bytes=10-19"})
        assert ranged.status == 206 and ranged.body == response.body[10:20]
        assert request("HEAD", url).body == b""


def test_unknown_files_are_404(index: RunningIndex) -> None:
    """
    A path that names no committed file answers 404, whatever its shape.
    """
    for path in ["packages/", "packages/ab/cd/" + "e" * 60 + "/x.whl", "packages/zz/cd/ef/x.whl", "packages/a/b/c/d/e"]:
        assert get(index.url + path).status == 404


def test_json_api(index: RunningIndex) -> None:
    """
    The JSON API in PyPI's shape: info of the latest (non-yanked) release,
    every release's files, the files' digests and URLs, the serial.
    """
    response = get(index.url + "pypi/fancy-name/json")
    assert response.headers["Content-Type"] == "application/json"
    document = json.loads(response.body)
    assert document["last_serial"] == int(response.headers["X-PyPI-Last-Serial"])
    assert document["info"]["name"] == "Fancy.Name" and document["info"]["version"] == "1.0"
    assert document["info"]["requires_python"] == "<4,>=3.8"
    assert document["vulnerabilities"] == []
    assert document["ownership"] == {"organization": None, "roles": [{"role": "Owner", "user": "sam"}]}
    assert set(document["releases"]) == {"0.9", "1.0"}
    yanked = document["releases"]["0.9"][0]
    assert yanked["yanked"] is True and yanked["yanked_reason"] == 'bad "quotes" & <tags>'
    assert {f["filename"] for f in document["urls"]} == {"fancy_name-1.0-py3-none-any.whl", "fancy_name-1.0.tar.gz"}
    for file in document["urls"]:
        assert set(file["digests"]) == {"md5", "sha256", "blake2b_256"}
        assert file["url"].startswith("/packages/")
    version = json.loads(get(index.url + "pypi/fancy-name/0.9/json").body)
    assert "releases" not in version and version["info"]["yanked"] is True
    # Other spellings of a version find it.
    for spelling in ("0.9.0", "v0.9", "0.9.0.0"):
        assert json.loads(get(index.url + f"pypi/fancy-name/{spelling}/json").body) == version


def test_json_api_caches_one_page_per_version() -> None:
    """
    The spellings of a version share one cache entry: endless spellings of
    it cannot fill the cache.
    """
    resource = JsonApiResource(None, PageCache(), Settings(data_dir="unused"))  # type: ignore[arg-type]

    def key(path: str) -> object:
        route = resource.route(DummyRequest(path.encode().split(b"/")))
        assert isinstance(route, Route)
        return route.key

    assert key("fancy-name/0.9/json") == key("fancy-name/0.9.0/json") == key("fancy-name/v0.9.0.0.0/json")
    assert key("fancy-name/0.9/json") != key("fancy-name/0.9.1/json") != key("fancy-name/json")


def test_pages_change_at_once(index: RunningIndex, dists: Path) -> None:
    """
    After an upload returns, the simple pages, the index and the JSON API
    show it; the serial moves.
    """
    before = get(index.simple_url + "fancy-name/")
    cached = get(index.simple_url + "fancy-name/", {"Accept": JSON})
    listing = get(index.simple_url)
    upload(index, wheel(dists, "Fancy.Name", "1.1"), "Fancy.Name", "1.1")
    after = get(index.simple_url + "fancy-name/")
    assert "fancy_name-1.1-py3-none-any.whl" in after.text
    assert int(after.headers["X-PyPI-Last-Serial"]) > int(before.headers["X-PyPI-Last-Serial"])
    assert get(index.simple_url + "fancy-name/", {"If-None-Match": before.headers["ETag"]}).status == 200
    assert "1.1" in json.loads(get(index.simple_url + "fancy-name/", {"Accept": JSON}).body)["versions"]
    assert cached.headers["ETag"] != get(index.simple_url + "fancy-name/", {"Accept": JSON}).headers["ETag"]
    assert int(get(index.simple_url).headers["X-PyPI-Last-Serial"]) > int(listing.headers["X-PyPI-Last-Serial"])
    assert json.loads(get(index.url + "pypi/fancy-name/json").body)["info"]["version"] == "1.1"


def test_post_to_simple_is_refused(index: RunningIndex) -> None:
    """
    An upload sent to the simple API by mistake is refused, not accepted.
    """
    assert request("POST", index.simple_url, b"x", {"Content-Type": "text/plain"}).status == 405


def test_fast_and_ordinary_paths_answer_alike(index: RunningIndex) -> None:
    """
    A cached page answered on the fast path carries the same status, headers
    and body as on the ordinary path (taken here by a non-matching
    If-None-Match), plain and gzipped, GET and HEAD.
    """
    url = index.simple_url + "fancy-name/"
    get(url)  # cache it
    for headers in ({}, {"Accept-Encoding": "gzip"}, {"Accept": JSON}):
        fast = get(url, headers)
        ordinary = get(url, {**headers, "If-None-Match": '"something-else"'})
        assert (fast.status, fast.body) == (ordinary.status, ordinary.body)
        assert {k.lower(): v for k, v in fast.headers.items() if k != "Date"} == {
            k.lower(): v for k, v in ordinary.headers.items() if k != "Date"
        }
        head = request("HEAD", url, headers=headers)
        assert head.body == b"" and head.headers["Content-Length"] == fast.headers["Content-Length"]


def raw_exchange(index: RunningIndex, data: bytes) -> bytes:
    import socket

    host, port = index.url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(data)
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_pipelined_and_http10_requests(index: RunningIndex) -> None:
    """
    Two requests sent at once on one connection get their two answers in
    order; an HTTP/1.0 request is answered, then the connection closed.
    """
    get(index.simple_url + "fancy-name/")
    pipelined = (
        b"GET /simple/fancy-name/ HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = raw_exchange(index, pipelined)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.index(b"Links for fancy-name") < answer.index(b"Simple index")
    # raw_exchange reads until the server closes the connection.
    old = raw_exchange(index, b"GET /simple/fancy-name/ HTTP/1.0\r\n\r\n")
    head, _, body = old.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert body.endswith(b"-->\n") and b"Links for fancy-name" in body
