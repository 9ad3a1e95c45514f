"""
The README's quick-start command, run as written on a copy of this tree.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .daemon import ROOT, copy_of_tree, environment

QUICK_START = re.compile(r"## Quick start\n.*?```sh\n(?P<command>.+?)\n```", re.DOTALL)


def quick_start_command() -> str:
    readme = (Path(ROOT) / "README.md").read_text()
    match = QUICK_START.search(readme)
    assert match, "README.md has no Quick start command"
    return match.group("command").strip()


def port_8080_is_free() -> bool:
    with socket.socket() as s:
        # As Twisted binds: closed connections in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 8080))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not port_8080_is_free(), reason="something else listens on 127.0.0.1:8080")
def test_quick_start_answers_on_8080(tmp_path: Path) -> None:
    """
    The quick-start command installs the project into a new virtual
    environment and starts the daemon, which answers HTTP on
    127.0.0.1:8080 with its data in ./cheeseshop-data.
    """
    clone = copy_of_tree(tmp_path / "clone")
    env = environment()
    del env["PYTHONPATH"]  # the installed package, not this tree
    process = subprocess.Popen(
        ["bash", "-c", quick_start_command()],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8080/simple/", timeout=5) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200, process.stdout.read().decode() if process.poll() is not None and process.stdout else ""
        assert (clone / "cheeseshop-data" / "cheeseshop.sqlite").exists()
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it ended on its own (a failed start)
        process.wait(60)
        # The daemon outlives bash for a moment: wait until it let go of
        # the port, so that the next run finds it free.
        deadline = time.monotonic() + 30
        while not port_8080_is_free() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not port_8080_is_free():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
