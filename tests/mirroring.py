"""
What the mirroring tests share: a master with an owner, mirror daemons, and
comparisons of what two indexes serve.
"""

from __future__ import annotations

import json
import os
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .daemon import Daemon, RunningIndex
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
