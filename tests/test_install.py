"""
Installing from the index with the installers people use, against a running
daemon: pip and uv, isolated from the machine's configuration, taking
everything from this index alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon import RunningIndex, environment, run, tool
from .distributions import multipart, sdist, upload_fields, wheel
from .http import basic, get, post_form
from .recorder import Recorder

PASSWORD = "installer-password"


def upload(index: RunningIndex, path: Path, project: str, version: str) -> None:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    response = post_form(index.upload_url, content_type, body, basic("ivy", PASSWORD))
    assert response.status == 200, response


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("install"))).start()
    running.add_user("ivy", PASSWORD)
    dists = tmp_path_factory.mktemp("dists")
    upload(running, wheel(dists, "dep-lib", "1.0"), "dep-lib", "1.0")
    upload(running, wheel(dists, "dep-lib", "1.1"), "dep-lib", "1.1")
    upload(running, sdist(dists, "dep-lib", "1.1"), "dep-lib", "1.1")
    upload(running, wheel(dists, "needs-dep", "1.0", requires_dist=["dep-lib>=1.0"]), "needs-dep", "1.0")
    upload(running, wheel(dists, "yanky", "1.0"), "yanky", "1.0")
    upload(running, wheel(dists, "yanky", "2.0"), "yanky", "2.0")
    running.admin("yank", "yanky", "2.0", "--reason", "broken build")
    upload(running, wheel(dists, "pyreq", "1.0", requires_python=">=3.8"), "pyreq", "1.0")
    upload(running, wheel(dists, "pyreq", "2.0", requires_python=">=4"), "pyreq", "2.0")
    yield running
    running.stop()


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            *args[:1],
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
            *args[1:],
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def versions_in(target: Path) -> dict[str, str]:
    """
    The distributions installed in a --target directory, by name.
    """
    found = {}
    for entry in target.iterdir():
        if entry.name.endswith(".dist-info"):
            name, version = entry.name[: -len(".dist-info")].split("-")
            found[name] = version
    return found


def test_pip_install_resolves_dependencies_from_the_index(index: RunningIndex, tmp_path: Path) -> None:
    """
    pip installs a project and its dependency (the newest version), with
    --index-url naming this index and nothing else.
    """
    pip("install", "--index-url", index.simple_url, "--target", str(tmp_path), "needs-dep")
    assert versions_in(tmp_path) == {"needs_dep": "1.0", "dep_lib": "1.1"}


def test_pip_download(index: RunningIndex, tmp_path: Path) -> None:
    """
    pip download fetches the files with the hashes the index published.
    """
    pip("download", "--index-url", index.simple_url, "--dest", str(tmp_path), "--only-binary", ":all:", "needs-dep")
    published = {}
    for project in ("needs-dep", "dep-lib"):
        for file in json.loads(get(index.url + f"pypi/{project}/json").body)["urls"]:
            published[file["filename"]] = file["digests"]["sha256"]
    downloaded = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
    assert set(downloaded) == {"needs_dep-1.0-py3-none-any.whl", "dep_lib-1.1-py3-none-any.whl"}
    assert all(published[name] == digest for name, digest in downloaded.items())


def uv(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    result = run([tool("uv"), *args], env=environment(UV_CACHE_DIR=str(cache)), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_uv_pip_install_reads_json_pages_and_metadata(index: RunningIndex, tmp_path: Path) -> None:
    """
    uv pip install asks for the PEP 691 JSON pages and gets them, reads the
    PEP 658 metadata files, and installs.
    """
    recorder = Recorder(index.url)
    try:
        uv("venv", "-q", str(tmp_path / "venv"), cache=tmp_path / "cache")
        uv(
            "pip",
            "install",
            "--python",
            str(tmp_path / "venv" / "bin" / "python"),
            "--index-url",
            recorder.url + "simple/",
            "needs-dep",
            cache=tmp_path / "cache",
        )
    finally:
        recorder.close()
    page = next(r for r in recorder.requests if r.path == "/simple/needs-dep/")
    assert "application/vnd.pypi.simple.v1+json" in page.accept
    assert page.content_type == "application/vnd.pypi.simple.v1+json"
    assert any(path.endswith("needs_dep-1.0-py3-none-any.whl.metadata") for path in recorder.paths())
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    assert {p.name for p in site.glob("*.dist-info")} == {"needs_dep-1.0.dist-info", "dep_lib-1.1.dist-info"}


def test_uv_resolution_does_not_download_wheels(index: RunningIndex, tmp_path: Path) -> None:
    """
    Resolving (uv pip compile) needs only the pages and the .metadata files:
    not one wheel is downloaded.
    """
    (tmp_path / "requirements.in").write_text("needs-dep\n")
    recorder = Recorder(index.url)
    try:
        result = uv(
            "pip",
            "compile",
            "--index-url",
            recorder.url + "simple/",
            "--python-version",
            "3.11",
            str(tmp_path / "requirements.in"),
            cache=tmp_path / "cache",
        )
    finally:
        recorder.close()
    assert "needs-dep==1.0" in result.stdout and "dep-lib==1.1" in result.stdout
    files = [path for path in recorder.paths() if path.startswith("/packages/")]
    assert sorted(os.path.basename(path) for path in files) == [
        "dep_lib-1.1-py3-none-any.whl.metadata",
        "needs_dep-1.0-py3-none-any.whl.metadata",
    ]


def test_yanked_release_is_skipped_unless_pinned(index: RunningIndex, tmp_path: Path) -> None:
    """
    pip and uv skip a yanked release, unless it is pinned with ==.
    """
    pip("install", "--index-url", index.simple_url, "--target", str(tmp_path / "any"), "yanky")
    assert versions_in(tmp_path / "any") == {"yanky": "1.0"}
    pinned = pip("install", "--index-url", index.simple_url, "--target", str(tmp_path / "pinned"), "yanky==2.0")
    assert versions_in(tmp_path / "pinned") == {"yanky": "2.0"}
    assert "broken build" in pinned.stdout + pinned.stderr
    (tmp_path / "requirements.in").write_text("yanky\n")
    result = uv(
        "pip",
        "compile",
        "--index-url",
        index.simple_url,
        "--python-version",
        "3.11",
        str(tmp_path / "requirements.in"),
        cache=tmp_path / "cache",
    )
    assert "yanky==1.0" in result.stdout


def test_requires_python_is_respected(index: RunningIndex, tmp_path: Path) -> None:
    """
    A release whose Requires-Python excludes the running Python is passed
    over for an older one that fits.
    """
    pip("install", "--index-url", index.simple_url, "--target", str(tmp_path), "pyreq")
    assert versions_in(tmp_path) == {"pyreq": "1.0"}
