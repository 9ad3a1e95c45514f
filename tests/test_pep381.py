"""
PEP 381's master side: the server key, page signatures, last-modified,
the ring's mirrors and the download statistics.
"""

from __future__ import annotations

import bz2
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.dsa import DSAPublicKey

from twistedindex import pep381

from . import mirroring
from .daemon import Daemon, RunningIndex
from .distributions import wheel
from .http import get, request
from .mirroring import uploaded as upload


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RunningIndex]:
    running = mirroring.start_master(tmp_path / "data")
    yield running
    running.stop()


def test_signatures_verify_over_the_simple_page(index: RunningIndex, tmp_path: Path) -> None:
    """
    /serverkey is a DSA public key, kept in the data directory; each
    /serversig/<project> verifies against it over the exact bytes of
    /simple/<project>/, and a new upload gets a new signature.
    """
    upload(index, wheel(tmp_path, "Signed.Pkg", "1.0", dist_name="signed_pkg"), "Signed.Pkg", "1.0")
    key = get(index.url + "serverkey")
    assert key.status == 200 and key.body.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert isinstance(serialization.load_pem_public_key(key.body), DSAPublicKey)
    assert os.path.exists(os.path.join(index.data_dir, pep381.KEY_FILE))

    page = get(index.simple_url + "signed-pkg/")
    signature = get(index.url + "serversig/signed-pkg")
    assert signature.status == 200
    assert signature.headers["Content-Type"] == "application/octet-stream"
    assert signature.headers["X-PyPI-Last-Serial"] == page.headers["X-PyPI-Last-Serial"]
    assert pep381.verify(key.body, signature.body, page.body)
    assert not pep381.verify(key.body, signature.body, page.body + b" ")
    assert get(index.url + "serversig/signed-pkg/").body == signature.body  # pep381client's spelling

    moved = get(index.url + "serversig/Signed.Pkg")
    assert (moved.status, moved.headers["Location"]) == (301, "signed-pkg")
    assert get(index.url + "serversig/no-such-project").status == 404

    upload(index, wheel(tmp_path, "Signed.Pkg", "2.0", dist_name="signed_pkg"), "Signed.Pkg", "2.0")
    newer_page = get(index.simple_url + "signed-pkg/")
    newer = get(index.url + "serversig/signed-pkg")
    assert newer_page.body != page.body
    assert pep381.verify(key.body, newer.body, newer_page.body)

    index.stop()
    index.start()
    assert get(index.url + "serverkey").body == key.body


def test_last_modified_is_the_last_change(index: RunningIndex, tmp_path: Path) -> None:
    """
    /last-modified is PEP 381's UTC stamp, and moves with each change.
    """
    first = get(index.url + "last-modified")
    assert first.status == 200
    assert re.fullmatch(r"\d{8}T\d{2}:\d{2}:\d{2}\n", first.text)
    time.sleep(1.1)
    before = datetime.now(tz=UTC).replace(microsecond=0)
    upload(index, wheel(tmp_path, "stamped", "1.0"), "stamped", "1.0")
    after = datetime.now(tz=UTC)
    stamp = pep381.parse_last_modified(get(index.url + "last-modified").text)
    assert before <= stamp <= after


def test_download_statistics(index: RunningIndex, tmp_path: Path) -> None:
    """
    Whole downloads are counted by day, file and user agent, and served as
    PEP 381's bzip2'd CSV; HEAD, Range and metadata requests are not
    downloads.
    """
    dist = wheel(tmp_path, "counted", "1.0")
    upload(index, dist, "counted", "1.0")
    page = get(index.simple_url + "counted/").text
    href = re.search(r'href="\.\./\.\./(packages/[^"#]+)', page)
    assert href is not None
    url = index.url + href.group(1)
    for agent in ("pip/25.3 {json}", "pip/25.3 {json}", "uv/0.9"):
        assert get(url, {"User-Agent": agent}).body == dist.read_bytes()
    request("HEAD", url, headers={"User-Agent": "pip/25.3 {json}"})
    get(url, {"User-Agent": "pip/25.3 {json}", "Range": "bytes=0-9"})
    get(url + ".metadata", {"User-Agent": "pip/25.3 {json}"})

    day = time.strftime("%Y-%m-%d", time.gmtime())
    listing = get(index.url + "local-stats/days/")
    assert listing.status == 200 and f'href="{day}.bz2"' in listing.text
    stats = get(index.url + f"local-stats/days/{day}.bz2")
    assert stats.headers["Content-Type"] == "application/x-bzip2"
    assert bz2.decompress(stats.body).decode().splitlines() == [
        "# package,filename,useragent,count",
        f"counted,{dist.name},pip/25.3 {{json}},2",
        f"counted,{dist.name},uv/0.9,1",
    ]
    assert get(index.url + "local-stats/days/1999-01-01.bz2").status == 404
    assert get(index.url + "local-stats/").status == 200


def test_mirrors_lists_the_ring_with_ages(tmp_path: Path) -> None:
    """
    /mirrors lists each --ring-mirror with the age of its last-modified, and
    says which cannot be reached.
    """
    other_data = tmp_path / "other"
    other_data.mkdir()
    with Daemon(str(other_data)) as other:
        data = tmp_path / "data"
        data.mkdir()
        unreachable = "http://127.0.0.1:9"
        with Daemon(str(data), "--ring-mirror", other.url.rstrip("/"), "--ring-mirror", unreachable) as daemon:
            page = get(daemon.url + "mirrors")
            assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
            row = re.search(
                rf'<tr><td><a href="{re.escape(other.url)}">[^<]*</a></td><td>([^<]*)</td><td>([^<]*)</td>', page.text
            )
            assert row is not None, page.text
            assert row.group(1).endswith(" UTC") and re.fullmatch(r"\d+ s", row.group(2)), row.groups()
            assert f"{unreachable}/" in page.text and "unreachable" in page.text


def test_stats_file_format() -> None:
    """
    The statistics file is CSV under PEP 381's header, quoted where needed.
    """
    data = pep381.stats_file([("zc.buildout", "zc.buildout-1.6.0.tgz", "MyAgent", 142), ("a", "a.whl", 'x,"y"', 1)])
    assert bz2.decompress(data).decode() == (
        '# package,filename,useragent,count\nzc.buildout,zc.buildout-1.6.0.tgz,MyAgent,142\na,a.whl,"x,""y""",1\n'
    )
