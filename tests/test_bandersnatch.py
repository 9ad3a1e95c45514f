"""
The daemon as a bandersnatch master: bandersnatch 6.8 (Python 3.11) lists it
by XML-RPC, bandersnatch 8 (Python 3.12) by the PEP 691 listing; both mirror
every file, sha256 checked, and an incremental run picks up a new upload.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from packaging.utils import canonicalize_name

from . import mirroring
from .daemon import RunningIndex
from .distributions import sdist, wheel
from .http import get
from .mirroring import uploaded as upload
from .tools import find_python, tool_venv

FLAVOURS = {
    # name: (python, requirement, extra [mirror] settings)
    "6.8-xmlrpc": ("3.11", "bandersnatch==6.8.0", "api-method = xmlrpc\n"),
    "8-simple": ("3.12", "bandersnatch>=8,<9", ""),
}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[RunningIndex]:
    index = mirroring.start_master(tmp_path / "master")
    dists = tmp_path / "dists"
    dists.mkdir()
    upload(index, wheel(dists, "alpha", "1.0"), "alpha", "1.0")
    upload(index, sdist(dists, "alpha", "1.0"), "alpha", "1.0")
    upload(index, wheel(dists, "alpha", "2.0"), "alpha", "2.0")
    upload(index, wheel(dists, "Beta.Pkg", "0.1", dist_name="beta_pkg"), "Beta.Pkg", "0.1")
    index.admin("yank", "alpha", "1.0", "--reason", "superseded")
    yield index
    index.stop()


def bandersnatch(flavour: str) -> Path:
    python_version, requirement, _ = FLAVOURS[flavour]
    python = sys.executable if python_version == "3.11" else find_python(python_version)
    if python is None:
        pytest.skip(f"bandersnatch {requirement} needs Python {python_version}, which this machine does not have")
    return tool_venv(f"bandersnatch-{flavour}", python, requirement) / "bin" / "bandersnatch"


def run(program: Path, config: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(program), "-c", str(config), "mirror"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    return result


def every_file(index: RunningIndex) -> dict[str, dict[str, Any]]:
    """
    Every file the index lists in its JSON API, by URL path.
    """
    files = {}
    for name in xmlrpc.client.ServerProxy(index.url + "pypi").list_packages():
        document = json.loads(get(index.url + f"pypi/{canonicalize_name(name)}/json").body)
        for release in document["releases"].values():
            for file in release:
                files[urlsplit(file["url"]).path] = file
    return files


def check_mirror(index: RunningIndex, web: Path, with_metadata: bool) -> None:
    files = every_file(index)
    assert files
    for path, file in files.items():
        local = web / path.lstrip("/")
        assert local.is_file(), f"{path} was not mirrored"
        assert hashlib.sha256(local.read_bytes()).hexdigest() == file["digests"]["sha256"]
        if with_metadata and file["core-metadata"]:
            metadata = (web / (path.lstrip("/") + ".metadata")).read_bytes()
            assert hashlib.sha256(metadata).hexdigest() == file["core-metadata"]["sha256"]
    mirrored = {p for p in (web / "packages").rglob("*") if p.is_file() and not p.name.endswith(".metadata")}
    assert len(mirrored) == len(files)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_bandersnatch_mirrors_the_index_and_follows_it(flavour: str, master: RunningIndex, tmp_path: Path) -> None:
    """
    A full run mirrors every file with its sha256 checked and reaches the
    index's serial; after a new upload, an incremental run fetches it.
    """
    program = bandersnatch(flavour)
    directory = tmp_path / "mirror"
    config = tmp_path / "bandersnatch.conf"
    config.write_text(
        "[mirror]\n"
        f"directory = {directory}\n"
        f"master = {master.url.rstrip('/')}\n"
        "allow-non-https = true\n"
        f"{FLAVOURS[flavour][2]}"
        "workers = 3\n"
        "stop-on-error = true\n"
        "json = true\n"
        "release-files = true\n"
    )
    serials = xmlrpc.client.ServerProxy(master.url + "pypi")
    run(program, config)
    assert int((directory / "status").read_text()) == serials.changelog_last_serial()
    check_mirror(master, directory / "web", with_metadata=flavour.startswith("8"))
    simple = (directory / "web" / "simple" / "alpha" / "index.html").read_text()
    assert 'data-yanked="superseded"' in simple

    dists = tmp_path / "later"
    dists.mkdir()
    late = wheel(dists, "late-comer", "0.1")
    upload(master, late, "late-comer", "0.1")
    result = run(program, config)
    assert int((directory / "status").read_text()) == serials.changelog_last_serial()
    check_mirror(master, directory / "web", with_metadata=flavour.startswith("8"))
    downloads = [line for line in result.stderr.splitlines() if "Downloading: " in line]
    assert downloads and all("late_comer-0.1" in line for line in downloads), downloads
