"""
What the mirroring tests share: a master with an owner, mirror daemons, and
comparisons of what two indexes serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .daemon import Daemon, RunningIndex, environment
from .distributions import multipart, upload_fields
from .http import Response, basic, get, post_form

PASSWORD = "ring password"

# Short rounds, so that tests see changes arrive in well under a second.
INTERVAL = "0.3"


def upload(index: RunningIndex, path: Path, project: str, version: str, user: str = "owner") -> Response:
    content_type, body = multipart(
        upload_fields(path, project, version), [("content", path.name, path.read_bytes(), None)]
    )
    return post_form(index.upload_url, content_type, body, basic(user, PASSWORD))


def uploaded(index: RunningIndex, path: Path, project: str, version: str) -> None:
    """
    Upload, and check that it worked.
    """
    response = upload(index, path, project, version)
    assert response.status == 200, response


def start_master(directory: Path, *args: str) -> RunningIndex:
    directory.mkdir(parents=True, exist_ok=True)
    master = RunningIndex(str(directory), *args).start()
    master.add_user("owner", PASSWORD)
    return master


def start_mirror(directory: Path, upstream: str, *args: str) -> RunningIndex:
    directory.mkdir(parents=True, exist_ok=True)
    return RunningIndex(
        str(directory), "--mirror-of", upstream.rstrip("/"), "--mirror-interval", INTERVAL, *args
    ).start()


def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (OSError, AssertionError, ValueError, xmlrpc.client.Error):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def serial(index: RunningIndex | Daemon) -> int:
    return int(xmlrpc.client.ServerProxy(index.url + "pypi").changelog_last_serial())


def pages(index: RunningIndex | Daemon, projects: Iterable[str]) -> dict[str, tuple[int, bytes]]:
    """
    The simple pages (HTML and JSON) and JSON API pages of C{projects} and
    of the index, by path: what must be the same on every node of a ring.
    """
    paths = ["simple/"]
    for project in projects:
        paths += [f"simple/{project}/", f"simple/{project}/?format=application/vnd.pypi.simple.v1+json"]
        paths += [f"pypi/{project}/json"]
    answers = {}
    for path in paths + ["simple/?format=application/vnd.pypi.simple.v1+json"]:
        response = get(index.url + path)
        answers[path] = (response.status, response.body)
    return answers


def same_pages(a: RunningIndex | Daemon, b: RunningIndex | Daemon, projects: Iterable[str]) -> bool:
    projects = list(projects)
    return serial(a) == serial(b) and pages(a, projects) == pages(b, projects)


def json_api(index: RunningIndex | Daemon, project: str) -> dict[str, Any]:
    return json.loads(get(index.url + f"pypi/{project}/json").body)  # type: ignore[no-any-return]


def staged_files(data_dir: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(os.path.join(data_dir, "tmp")):
        found += [os.path.join(directory, name) for name in names if name != ".lock"]
    return found


def stored_files(data_dir: str) -> list[str]:
    root = os.path.join(data_dir, "packages")
    return sorted(
        os.path.relpath(os.path.join(directory, name), root) for directory, _, names in os.walk(root) for name in names
    )


def listed_files(index: RunningIndex, project: str) -> dict[str, str]:
    """
    C{{filename: sha256}} of a project's simple page (PEP 691), or C{{}}.
    """
    page = get(index.simple_url + f"{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    if page.status != 200:
        return {}
    return {f["filename"]: f["hashes"]["sha256"] for f in json.loads(page.body)["files"]}


def pip_download(index: RunningIndex, requirement: str, directory: Path) -> Path:
    """
    C{pip download} of C{requirement} from C{index} alone, into C{directory}.
    """
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--index-url", index.simple_url]
        + ["-d", str(directory), requirement],
        capture_output=True,
        text=True,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    return directory


@contextmanager
def peer_server(argv: list[str], log_path: Path, probe: str, timeout: float = 60.0) -> Iterator[None]:
    """
    Another index's server (pypiserver, devpi) run for a test, answering
    C{probe} before the block and stopped after it.
    """
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            eventually(lambda: get(probe).status == 200, timeout=timeout, what=f"{argv[0]} to start")
            yield
        finally:
            process.terminate()
            process.wait(30)
