"""
Real daemons and tools in subprocesses, for tests that drive the real thing.

A L{Daemon} runs C{twistd -n cheeseshop} on C{127.0.0.1} port 0 and learns
its port from the log.  The working tree is put on C{PYTHONPATH}, so the
daemon runs this checkout's code and Twisted finds this checkout's plugin.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
_SERVING = re.compile(r"serving HTTP on (http://\S+/)")

# Every daemon process started by the tests, so that none outlives the
# session, whatever failed (see stop_leftover_daemons in conftest).
STARTED: list[subprocess.Popen[str]] = []


def tool(name: str) -> str:
    """
    A console script installed beside the test's Python (twine, uv, ...).
    """
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
    return path


def environment(**extra: str) -> dict[str, str]:
    """
    The environment for a subprocess: this checkout first on the path, and
    nothing from the machine's pip or uv configuration.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "TWINE_")) and key != "PYTHONPATH"
    }
    env.update(
        PYTHONPATH=ROOT,
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
    )
    env.update(extra)
    return env


def run(argv: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """
    Run a command with L{environment} and capture its output as text.
    """
    kwargs.setdefault("env", environment())
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def twistd_argv(*args: str) -> list[str]:
    return [tool("twistd"), "-n", "--pidfile=", "cheeseshop", *args]


class Daemon:
    """
    C{twistd -n cheeseshop} in a subprocess.
    """

    def __init__(
        self, data_dir: str, *args: str, env: dict[str, str] | None = None, own_settings: bool = False
    ) -> None:
        """
        :param data_dir: the data directory, also the working directory.
        :param args: more options for C{cheeseshop}.
        :param own_settings: leave C{--data-dir} and C{--listen} to C{args}
            (or a config file); by default the daemon gets C{data_dir} and
            port 0 on 127.0.0.1.
        """
        self.data_dir = data_dir
        self.args = args
        self.own_settings = own_settings
        self.env = env or environment()
        self.url = ""
        self.lines: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._serving = threading.Event()

    def start(self, timeout: float = 30) -> Daemon:
        standard = () if self.own_settings else ("--data-dir", self.data_dir, "--listen", "tcp:0:interface=127.0.0.1")
        argv = twistd_argv(*standard, *self.args)
        self.lines = []
        self._serving.clear()
        self._process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=self.data_dir
        )
        STARTED.append(self._process)
        threading.Thread(target=self._read, args=(self._process,), daemon=True).start()
        if not self._serving.wait(timeout):
            self.kill()
            raise RuntimeError("the daemon did not start:\n" + self.log)
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            match = _SERVING.search(line)
            if match and not self._serving.is_set():
                self.url = match.group(1)
                self._serving.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """
        Stop the daemon as an operator would (SIGTERM) and return its status.
        """
        if self._process is None:
            return 0
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout)
        finally:
            self._process = None

    def kill(self) -> None:
        """
        C{kill -9}: no clean-up of any kind.
        """
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared in the log:\n{self.log}")
            time.sleep(0.05)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()


def stop_leftovers() -> None:
    """
    Kill any daemon a test started and did not stop.
    """
    for process in STARTED:
        if process.poll() is None:
            process.kill()
            process.wait()
    STARTED.clear()


class RunningIndex:
    """
    A daemon plus the administrator's tool on the same data, for tests that
    need users and tokens.
    """

    def __init__(self, data_dir: str, *args: str, database: str | None = None) -> None:
        self.data_dir = data_dir
        self.storage = ["--data-dir", data_dir] + (["--database", database] if database else [])
        extra = ("--database", database) if database else ()
        self.daemon = Daemon(data_dir, *extra, *args)

    def start(self) -> RunningIndex:
        self.daemon.start()
        return self

    def stop(self) -> None:
        if self.daemon.running:
            self.daemon.stop()

    @property
    def url(self) -> str:
        return self.daemon.url

    @property
    def upload_url(self) -> str:
        return self.daemon.url + "legacy/"

    @property
    def simple_url(self) -> str:
        return self.daemon.url + "simple/"

    def admin(self, *args: str, password: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = run(
            [tool("cheeseshop-admin"), *self.storage, *args],
            input=None if password is None else password + "\n",
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cheeseshop-admin {' '.join(args)} failed: {result.stderr}")
        return result

    def add_user(self, name: str, password: str) -> None:
        self.admin("adduser", name, "--password-stdin", password=password)

    def token(self, user: str, project: str | None = None) -> str:
        args = ["token", "create", user] + (["--project", project] if project else [])
        return self.admin(*args).stdout.strip().splitlines()[-1]


def copy_of_tree(destination: Path) -> Path:
    """
    The files a fresh clone of this tree would have (tracked, and new ones
    not ignored), copied to C{destination}: builds from it see no leftovers
    such as setuptools' build/ directory.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in listed.stdout.splitlines():
        source = os.path.join(ROOT, name)
        if os.path.exists(source):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination
