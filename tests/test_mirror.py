"""
Mirroring between real daemons on loopback: a master, its mirror, and a
mirror of that mirror.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from twistedindex import pep381
from twistedindex.mirror import upstream
from twistedindex.mirror.client import UpstreamClient

from .daemon import run, tool
from .distributions import sdist, wheel
from .http import get, request
from .mirroring import (
    eventually,
    json_api,
    listed_files,
    peer_server,
    pip_download,
    same_pages,
    serial,
    staged_files,
    start_master,
    start_mirror,
    stored_files,
    upload,
)
from .tools import tool_venv
from .upstream_proxy import Fault, upstream_proxy


def test_a_ring_of_three_follows_the_master(tmp_path: Path, pg_dsn: str) -> None:
    """
    A mirror (on PostgreSQL) and a mirror of it (on SQLite) serve what the
    master serves, byte for byte, and follow its uploads, yanks and
    removals; the master's signatures verify on the last node; pip installs
    from it.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    assert upload(master, wheel(dists, "Alpha.Pkg", "1.0", dist_name="alpha_pkg"), "Alpha.Pkg", "1.0").status == 200
    assert upload(master, sdist(dists, "Alpha.Pkg", "1.0"), "Alpha.Pkg", "1.0").status == 200
    assert upload(master, wheel(dists, "beta", "0.1"), "beta", "0.1").status == 200
    first = start_mirror(tmp_path / "first", master.url, "--database", pg_dsn)
    second = start_mirror(tmp_path / "second", first.url)
    projects = ["alpha-pkg", "beta"]
    eventually(lambda: same_pages(master, second, projects), what="the first sync to reach the ring's end")
    start = serial(master)

    assert upload(master, wheel(dists, "Alpha.Pkg", "2.0", dist_name="alpha_pkg"), "Alpha.Pkg", "2.0").status == 200
    master.admin("yank", "alpha-pkg", "1.0", "--reason", "broken")
    master.admin("remove", "alpha-pkg", "1.0", "alpha_pkg-1.0.tar.gz")
    master.admin("remove", "beta")
    for node in (first, second):
        eventually(lambda node=node: same_pages(master, node, projects), what=f"{node.url} to follow")

    # Everything the master serves, every node serves: pages, JSON API,
    # XML-RPC, files.
    for node in (first, second):
        assert get(node.simple_url + "beta/").status == 404
        assert 'data-yanked="broken"' in get(node.simple_url + "alpha-pkg/").text
        assert json_api(node, "alpha-pkg") == json_api(master, "alpha-pkg")
        for method, args in (
            ("changelog_since_serial", (start,)),
            ("list_packages_with_serial", ()),
            ("release_data", ("alpha-pkg", "2.0")),
            ("package_roles", ("alpha-pkg",)),
        ):
            here = getattr(xmlrpc.client.ServerProxy(node.url + "pypi"), method)(*args)
            there = getattr(xmlrpc.client.ServerProxy(master.url + "pypi"), method)(*args)
            if method == "release_data":  # absolute URLs name each node
                for data in (here, there):
                    data.pop("package_url"), data.pop("release_url")
            assert here == there, method
        for file in json_api(node, "alpha-pkg")["urls"]:
            body = get(node.url + file["url"].lstrip("/")).body
            assert hashlib.sha256(body).hexdigest() == file["digests"]["sha256"]
            if file["filename"].endswith(".whl"):
                # PEP 658: the same metadata file, whichever way it came.
                metadata = get(node.url + file["url"].lstrip("/") + ".metadata")
                assert metadata.status == 200
                assert metadata.body == get(master.url + file["url"].lstrip("/") + ".metadata").body
    assert not any("beta" in path for path in stored_files(second.data_dir))
    assert len(stored_files(second.data_dir)) == len(stored_files(master.data_dir))

    # PEP 381: the master's signature, copied down the ring, verifies on the
    # last node; /serverkey leads there too.
    key = get(master.url + "serverkey").body
    signature = eventually(
        lambda: get(second.url + "serversig/alpha-pkg").status == 200 and get(second.url + "serversig/alpha-pkg"),
        what="the signature to reach the ring's end",
    )
    assert pep381.verify(key, signature.body, get(second.simple_url + "alpha-pkg/").body)
    assert get(second.url + "serverkey").headers["Location"] == f"{first.url.rstrip('/')}/serverkey"
    assert get(first.url + "serverkey").headers["Location"] == f"{master.url.rstrip('/')}/serverkey"
    assert re.fullmatch(r"\d{8}T\d{2}:\d{2}:\d{2}\n", get(second.url + "last-modified").text)

    downloads = pip_download(second, "alpha-pkg==2.0", tmp_path / "downloads")
    assert (downloads / "alpha_pkg-2.0-py3-none-any.whl").read_bytes() == (
        dists / "alpha_pkg-2.0-py3-none-any.whl"
    ).read_bytes()
    for node in (second, first, master):
        node.stop()


def test_replica_answers_carry_small_files_inline(tmp_path: Path) -> None:
    """
    C{/+replica/?project=...&inline=N} describes each project asked for
    (null for one the index lacks) and carries the bytes of each file of at
    most N bytes, up to 1 MiB a project, with a wheel's metadata file beside
    them, whether the answer's files are few bytes in all (read on the
    reactor thread) or many (read on a worker thread); larger files are
    left to their URLs, and so is a metadata file larger than 256 KiB (a
    small wheel with a long description), which a mirror then reads from
    the wheel.  It says how many projects a request may name.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    expected: dict[str, dict[str, bytes]] = {"tiny": {}, "bulky": {}}
    for project, payload, versions in (("tiny", 10, 3), ("bulky", 220_000, 5)):
        for version in (f"{n}.0" for n in range(1, versions + 1)):
            path = wheel(dists, project, version, payload=os.urandom(payload))
            assert upload(master, path, project, version).status == 200
            expected[project][path.name] = path.read_bytes()
    verbose = wheel(
        dists, "verbose", "1.0", description="words\n" * 60_000, description_content_type="text/plain", deflated=True
    )
    assert verbose.stat().st_size < 65536
    assert upload(master, verbose, "verbose", "1.0").status == 200
    (document,) = json.loads(get(f"{master.url}+replica/?project=verbose&inline=65536").body)["projects"].values()
    (carried,) = document["files"]
    assert base64.b64decode(carried["content"]) == verbose.read_bytes()
    assert "metadata_content" not in carried
    assert json.loads(get(master.url + "+replica/").body) == {"version": 2, "projects": 16}
    for asked, inline, inlined in (
        (["tiny"], 65536, {"tiny": 3}),
        (["tiny", "bulky", "absent"], 262144, {"tiny": 3, "bulky": 4}),  # 1 MiB a project
        (["bulky", "tiny"], 65536, {"tiny": 3, "bulky": 0}),
    ):
        query = "&".join(f"project={name}" for name in asked)
        response = get(f"{master.url}+replica/?{query}&inline={inline}")
        assert response.status == 200
        documents = json.loads(response.body)["projects"]
        assert list(documents) == asked
        for project, count in inlined.items():
            files = {f["filename"]: f for f in documents[project]["files"]}
            assert sorted(files) == sorted(expected[project])
            carried = {name: f for name, f in files.items() if "content" in f}
            assert len(carried) == count
            for name, file in carried.items():
                assert base64.b64decode(file["content"]) == expected[project][name]
                metadata = base64.b64decode(file["metadata_content"])
                assert hashlib.sha256(metadata).hexdigest() == file["metadata_sha256"]
                assert b"Name: " + project.encode() in metadata
        if "absent" in asked:
            assert documents["absent"] is None
    too_many = "&".join(f"project=p{n}" for n in range(17))
    refused = get(f"{master.url}+replica/?{too_many}")
    assert (refused.status, refused.reason) == (400, "at most 16 projects a request")
    refused = get(f"{master.url}+replica/?project=not%20a%20name")
    assert (refused.status, refused.reason) == (400, "'not a name' is not a project name")
    assert get(f"{master.url}+replica/tiny").status == 404
    mirror = start_mirror(tmp_path / "mirror", master.url)
    names = ["tiny", "bulky", "verbose"]
    eventually(lambda: same_pages(master, mirror, names), what="the mirror to copy every project")
    assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
    mirror.stop()
    master.stop()


def test_a_mirror_is_read_only(tmp_path: Path) -> None:
    """
    Uploads, registrations and the administrator's changes on a mirror are
    refused with 403 and the reason, whoever asks.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    assert upload(master, wheel(dists, "kept", "1.0"), "kept", "1.0").status == 200
    mirror = start_mirror(tmp_path / "mirror", master.url)
    eventually(lambda: get(mirror.simple_url + "kept/").status == 200)
    reason = f"This index is a read-only mirror of {master.url.rstrip('/')}"
    refused = upload(mirror, wheel(dists, "kept", "2.0"), "kept", "2.0", user="nobody")
    assert (refused.status, refused.reason) == (403, reason)
    for args in (("yank", "kept", "1.0"), ("remove", "kept"), ("adduser", "someone", "--password-stdin")):
        result = mirror.admin(*args, check=False, password="a long password")
        assert result.returncode != 0 and reason in result.stderr, result
    assert get(mirror.simple_url + "kept/").status == 200
    mirror.stop()
    master.stop()


def test_a_mirror_killed_mid_sync_converges(tmp_path: Path) -> None:
    """
    A mirror killed (kill -9) in the middle of its first sync, and started
    again, reaches the master's state with no partial and no duplicate
    files.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    names = [f"many-{i:02d}" for i in range(24)]
    for name in names:
        for version in ("1.0", "1.1"):
            path = wheel(dists, name, version, payload=os.urandom(64 * 1024))
            assert upload(master, path, name, version).status == 200
    with upstream_proxy(master.url) as proxy:
        # Slow files, so that the kill lands part-way through.
        proxy.add(Fault(r"^/packages/", "delay", seconds=0.05))
        mirror = start_mirror(tmp_path / "mirror", proxy.url, "--mirror-workers", "2")
        eventually(lambda: len(stored_files(mirror.data_dir)) >= 8, what="some files to arrive")
        mirror.daemon.kill()
        assert len(stored_files(mirror.data_dir)) < 2 * 2 * len(names)
        proxy.clear()
        mirror.start()
        eventually(lambda: same_pages(master, mirror, names), timeout=60, what="the mirror to converge")
        assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
        assert staged_files(mirror.data_dir) == []
        mirror.stop()
    master.stop()


def test_a_mirror_stopped_mid_sync_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    """
    A mirror stopped as an operator stops it (SIGTERM) in the middle of its
    first sync finishes the projects in hand, exits promptly with nothing
    half-stored, and its next start goes on to the master's state.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    # More projects than the mirror has in hand at once (2 workers, each
    # request bringing up to 8).
    names = [f"stop-{i:02d}" for i in range(40)]
    for name in names:
        path = wheel(dists, name, "1.0", payload=os.urandom(64 * 1024))
        assert upload(master, path, name, "1.0").status == 200
    with upstream_proxy(master.url) as proxy:
        proxy.add(Fault(r"^/packages/", "delay", seconds=0.1))
        mirror = start_mirror(tmp_path / "mirror", proxy.url, "--mirror-workers", "2")
        eventually(lambda: len(stored_files(mirror.data_dir)) >= 4, what="some files to arrive")
        began = time.monotonic()
        # twistd shuts down, then exits by the signal that stopped it.
        assert mirror.daemon.stop() == -signal.SIGTERM
        assert time.monotonic() - began < 10
        assert "mirror: stopped between projects" in mirror.daemon.log
        assert "Main loop terminated." in mirror.daemon.log
        # The projects not begun are left for the next start, not failed.
        assert not re.search(r"mirror: stop-\d+ failed", mirror.daemon.log)
        held = stored_files(mirror.data_dir)
        assert len(held) < 2 * len(names)  # stopped part-way
        assert staged_files(mirror.data_dir) == []
        # What it holds is whole: every file it kept is the master's.
        assert set(held) <= set(stored_files(master.data_dir))
        proxy.clear()
        mirror.start()
        eventually(lambda: same_pages(master, mirror, names), timeout=60, what="the mirror to converge")
        assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
        mirror.stop()
    master.stop()


def test_mirroring_an_upstream_by_its_pages(tmp_path: Path) -> None:
    """
    An upstream that does not answer XML-RPC is followed by its simple
    pages: the mirror numbers its own journal, and gets the same files,
    yanks and removals.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    assert upload(master, wheel(dists, "paged", "1.0"), "paged", "1.0").status == 200
    assert upload(master, sdist(dists, "paged", "1.0"), "paged", "1.0").status == 200
    assert upload(master, wheel(dists, "other", "0.1"), "other", "0.1").status == 200
    with upstream_proxy(master.url) as proxy:
        proxy.add(Fault(r"^/pypi", "404", method="POST"))
        mirror = start_mirror(tmp_path / "mirror", proxy.url)

        def files(index: object, project: str) -> set[tuple[str, str, object]]:
            document = json_api(index, project)  # type: ignore[arg-type]
            return {
                (f["filename"], f["digests"]["sha256"], f["yanked_reason"] if f["yanked"] else False)
                for release in document["releases"].values()
                for f in release
            }

        eventually(lambda: files(mirror, "paged") == files(master, "paged") and files(mirror, "other"))
        master.admin("yank", "paged", "1.0", "--reason", "old")
        assert upload(master, wheel(dists, "paged", "2.0"), "paged", "2.0").status == 200
        master.admin("remove", "other")
        eventually(lambda: files(mirror, "paged") == files(master, "paged"), what="the yank and the upload")
        eventually(lambda: get(mirror.simple_url + "other/").status == 404, what="the removal")
        assert "following " in mirror.daemon.log and "by its simple pages" in mirror.daemon.log
        assert json_api(mirror, "paged")["info"]["summary"] == json_api(master, "paged")["info"]["summary"]
        assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
        mirror.stop()
    master.stop()


def test_a_mirror_of_some_projects(tmp_path: Path) -> None:
    """
    --mirror-project limits the mirror to those projects.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    for name in ("wanted", "unwanted"):
        assert upload(master, wheel(dists, name, "1.0"), name, "1.0").status == 200
    mirror = start_mirror(tmp_path / "mirror", master.url, "--mirror-project", "Wanted")
    eventually(lambda: get(mirror.simple_url + "wanted/").status == 200)
    assert upload(master, wheel(dists, "wanted", "2.0"), "wanted", "2.0").status == 200
    assert upload(master, wheel(dists, "unwanted", "2.0"), "unwanted", "2.0").status == 200
    eventually(lambda: "wanted-2.0" in get(mirror.simple_url + "wanted/").text)
    assert get(mirror.simple_url + "unwanted/").status == 404
    assert serial(mirror) == serial(master)
    mirror.stop()
    master.stop()


# The project's JSON API page, or a /+replica/ request that names it (with
# others, or alone).
PROJECT_PAGE = r"^/(pypi/broken/json|\+replica/\?(.*&)?project=broken(&|$))"


@pytest.mark.parametrize(
    "fault, warehouse",
    [
        (Fault(PROJECT_PAGE, "500"), False),
        (Fault(PROJECT_PAGE, "500"), True),
        (Fault(PROJECT_PAGE, "stale", project="broken"), False),
        (Fault(PROJECT_PAGE, "stale"), True),
        (Fault(PROJECT_PAGE, "truncate"), False),
        (Fault(r"^/packages/.*/broken-2\.0", "truncate"), False),
        (Fault(r"^/packages/.*/broken-2\.0", "corrupt"), True),
        (Fault(r"^/packages/.*/broken-2\.0", "500"), False),
    ],
    ids=[
        "page-500",
        "json-api-500",
        "stale-page",
        "stale-json-api",
        "truncated-page",
        "truncated-file",
        "wrong-hash",
        "file-500",
    ],
)
def test_upstream_faults_are_never_served(tmp_path: Path, fault: Fault, warehouse: bool) -> None:
    """
    While the upstream fails one project (an error, a stale page, a cut-off
    or corrupted file), the mirror keeps serving that project's last good
    state, brings the others forward, and holds its serial; once the fault
    clears, it converges.  With C{warehouse}, the upstream hides its
    /+replica/ pages and the mirror reads the JSON API, as from Warehouse.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    assert upload(master, wheel(dists, "broken", "1.0"), "broken", "1.0").status == 200
    with upstream_proxy(master.url) as proxy:
        if warehouse:
            proxy.add(Fault(r"^/\+replica/", "404"))
        mirror = start_mirror(tmp_path / "mirror", proxy.url)
        eventually(lambda: same_pages(master, mirror, ["broken"]), what="the first sync")
        held = serial(mirror)
        before = get(mirror.simple_url + "broken/").body
        proxy.add(fault)
        # Too big to come inside a /+replica/ page: fetched by its URL.
        big = wheel(dists, "broken", "2.0", payload=os.urandom(100 * 1024))
        assert upload(master, big, "broken", "2.0").status == 200
        assert upload(master, wheel(dists, "healthy", "1.0"), "healthy", "1.0").status == 200
        eventually(lambda: get(mirror.simple_url + "healthy/").status == 200, what="the healthy project")
        # Refused in two rounds (a request shared with another project is
        # asked again for it alone in the same round).
        eventually(
            lambda: mirror.daemon.log.count("mirror: broken failed") >= 2, what="the project to fail in two rounds"
        )
        assert get(mirror.simple_url + "broken/").body == before
        assert serial(mirror) == held
        assert not any("broken-2.0" in path for path in stored_files(mirror.data_dir))
        proxy.faults.remove(fault)
        eventually(lambda: same_pages(master, mirror, ["broken", "healthy"]), what="convergence after the fault")
        assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
        assert staged_files(mirror.data_dir) == []
        mirror.stop()
    master.stop()


def test_a_project_that_fails_a_shared_request_fails_alone(tmp_path: Path) -> None:
    """
    Projects are asked of a twistedindex upstream several to a request.  A
    request that fails is asked again project by project, so the projects
    that share it with a failing one arrive, and only that one waits for
    a later round.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    for name in ("alpha", "broken", "gamma"):
        assert upload(master, wheel(dists, name, "1.0"), name, "1.0").status == 200
    with upstream_proxy(master.url) as proxy:
        fault = proxy.add(Fault(PROJECT_PAGE, "500"))
        mirror = start_mirror(tmp_path / "mirror", proxy.url)
        eventually(
            lambda: all(get(mirror.simple_url + f"{name}/").status == 200 for name in ("alpha", "gamma")),
            what="the projects beside the failing one",
        )
        assert get(mirror.simple_url + "broken/").status == 404
        assert "mirror: broken failed" in mirror.daemon.log
        asked = [path for _, path in proxy.requests if path.startswith("/+replica/?")]
        assert asked[0] == "/+replica/?inline=65536&project=alpha&project=broken&project=gamma"
        assert {"/+replica/?inline=65536&project=alpha", "/+replica/?inline=65536&project=gamma"} <= set(asked)
        proxy.faults.remove(fault)
        eventually(lambda: same_pages(master, mirror, ["alpha", "broken", "gamma"]), what="convergence")
        mirror.stop()
    master.stop()


@pytest_twisted.ensureDeferred
async def test_no_replica_request_while_the_answers_in_hand_are_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    While the /+replica/ answers of the projects a round has in hand come
    to more than the limit, no further request is sent; one is once the
    round is done with them.
    """
    from twisted.internet import reactor

    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    for name in ("first", "second"):
        assert upload(master, wheel(dists, name, "1.0"), name, "1.0").status == 200
    monkeypatch.setattr(upstream, "HELD_LIMIT", 1)  # any answer passes it
    with upstream_proxy(master.url) as proxy:
        client = UpstreamClient(proxy.url, reactor)
        following = upstream.SerialUpstream(client, replica_batch=8)

        def asked() -> list[str]:
            return [path for _, path in proxy.requests if path.startswith("/+replica/")]

        first = await following.project(upstream.Wanted("first", None))
        assert first is not None and first.name == "first"
        second = Deferred.fromCoroutine(following.project(upstream.Wanted("second", None)))
        await deferLater(reactor, 0.5, lambda: None)
        assert not second.called
        assert asked() == ["/+replica/?inline=65536&project=first"]
        following.done_with(upstream.Wanted("first", None))
        snapshot = await second
        assert snapshot is not None and snapshot.name == "second"
        assert asked()[-1] == "/+replica/?inline=65536&project=second"
        await client.close()
    master.stop()


def test_gzipped_pages_are_read(tmp_path: Path) -> None:
    """
    An upstream that sends its pages gzipped, as PyPI does (its JSON pages
    shrink several times over), is followed: the mirror asks for gzip and
    reads what comes.
    """
    master = start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    assert upload(master, wheel(dists, "squeezed", "1.0"), "squeezed", "1.0").status == 200
    with upstream_proxy(master.url) as proxy:
        proxy.add(Fault(r"^/\+replica/", "404"))  # read the JSON API, as from Warehouse
        pages = proxy.add(Fault(r"^/pypi/squeezed/", "gzip"))
        mirror = start_mirror(tmp_path / "mirror", proxy.url)
        eventually(lambda: same_pages(master, mirror, ["squeezed"]), what="the first sync")
        assert pages.hits >= 1
        assert stored_files(mirror.data_dir) == stored_files(master.data_dir)
        mirror.stop()
    master.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """
    A real pypiserver (PEP 503 pages only, no serials, no XML-RPC) serving
    a directory of files: C{(url, directory)}.
    """
    venv = tool_venv("pypiserver", sys.executable, "pypiserver==2.4.2", "waitress")
    packages = tmp_path / "pypiserver-packages"
    packages.mkdir()
    port = free_port()
    argv = [str(venv / "bin" / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port)]
    argv += ["-P", ".", "-a", ".", "--backend", "simple-dir", str(packages)]
    url = f"http://127.0.0.1:{port}"
    with peer_server(argv, tmp_path / "pypiserver.log", url + "/simple/"):
        yield url, packages


def test_mirroring_pypiserver(tmp_path: Path, pypiserver: tuple[str, Path]) -> None:
    """
    A real pypiserver is followed by its simple pages: the mirror holds the
    same files (sha256 checked), pip installs them from the mirror alone,
    and files added and removed upstream are added and removed here.
    """
    url, packages = pypiserver
    wheel(packages, "alpha-pkg", "1.0")
    sdist(packages, "alpha-pkg", "1.0")
    wheel(packages, "beta-pkg", "2.0")
    mirror = start_mirror(tmp_path / "mirror", url)

    def listed(project: str) -> dict[str, str]:
        return listed_files(mirror, project)

    def upstream_files() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in packages.iterdir()}

    expected = upstream_files()
    eventually(
        lambda: {**listed("alpha-pkg"), **listed("beta-pkg")} == expected, what="the mirror to hold pypiserver's files"
    )
    assert "by its simple pages" in mirror.daemon.log

    downloads = pip_download(mirror, "beta-pkg==2.0", tmp_path / "downloads")
    assert (downloads / "beta_pkg-2.0-py3-none-any.whl").read_bytes() == (
        packages / "beta_pkg-2.0-py3-none-any.whl"
    ).read_bytes()

    wheel(packages, "alpha-pkg", "1.1")
    (packages / "beta_pkg-2.0-py3-none-any.whl").unlink()
    expected = upstream_files()
    eventually(lambda: listed("alpha-pkg") == expected, what="the new upload to arrive")
    eventually(lambda: get(mirror.simple_url + "beta-pkg/").status == 404, what="the removal to arrive")
    assert len(stored_files(mirror.data_dir)) == len(expected)
    mirror.stop()


def devpi_call(url: str, method: str, path: str, body: dict[str, object], auth: str | None = None) -> object:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth:
        headers["X-Devpi-Auth"] = auth
    response = request(method, url + path, json.dumps(body).encode(), headers)
    assert response.status < 300, (method, path, response)
    return json.loads(response.body) if response.body else None


@pytest.fixture
def devpi(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """
    A real devpi-server with a user C{alice} and her index C{alice/dev}:
    C{(server URL, X-Devpi-Auth value)}.
    """
    venv = tool_venv("devpi", sys.executable, "devpi-server==6.20.3")
    serverdir = tmp_path / "devpi"
    subprocess.run(
        [str(venv / "bin" / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    argv = [str(venv / "bin" / "devpi-server"), "--serverdir", str(serverdir), "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with peer_server(argv, tmp_path / "devpi.log", url + "/+api", timeout=120):
        devpi_call(url, "PUT", "/alice", {"password": "devpi-password", "email": "alice@example.org"})
        login = devpi_call(url, "POST", "/+login", {"user": "alice", "password": "devpi-password"})
        token = login["result"]["password"]  # type: ignore[index]
        auth = base64.b64encode(f"alice:{token}".encode()).decode()
        devpi_call(url, "PUT", "/alice/dev", {"bases": [], "volatile": True}, auth)
        yield url, auth


def test_mirroring_devpi(tmp_path: Path, devpi: tuple[str, str]) -> None:
    """
    A real devpi index, named by its simple URL (/<user>/<index>/+simple),
    is followed by its pages: the mirror holds the files twine put there,
    pip installs them from the mirror alone, and a release deleted on devpi
    goes from the mirror.
    """
    url, auth = devpi
    dists = tmp_path / "dists"
    dists.mkdir()
    files = [wheel(dists, "gamma-pkg", "1.0"), sdist(dists, "gamma-pkg", "1.0"), wheel(dists, "gamma-pkg", "2.0")]
    uploaded = run(
        [tool("twine"), "upload", "--non-interactive", "--disable-progress-bar"]
        + ["--repository-url", f"{url}/alice/dev/", "-u", "alice", "-p", "devpi-password", *map(str, files)]
    )
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    mirror = start_mirror(tmp_path / "mirror", f"{url}/alice/dev/+simple/")

    def listed() -> dict[str, str]:
        return listed_files(mirror, "gamma-pkg")

    expected = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    eventually(lambda: listed() == expected, what="the mirror to hold devpi's files")
    assert "by its simple pages" in mirror.daemon.log

    downloads = pip_download(mirror, "gamma-pkg", tmp_path / "downloads")
    assert (downloads / "gamma_pkg-2.0-py3-none-any.whl").read_bytes() == files[2].read_bytes()

    devpi_call(url, "DELETE", "/alice/dev/gamma-pkg/2.0", {}, auth)
    del expected[files[2].name]
    eventually(lambda: listed() == expected, what="the deletion to arrive")
    mirror.stop()
