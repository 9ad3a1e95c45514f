"""
The daemon as an operator runs it: C{twistd -n cheeseshop} in a subprocess.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import urllib.error
import urllib.request
from typing import Any

import pytest

from twistedindex.storage.migrate import SCHEMA_VERSION

from .daemon import Daemon, run, tool, twistd_argv


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_serves_http_on_the_embedded_default(tmp_path: Any) -> None:
    """
    With only a data directory, the daemon creates it, keeps an SQLite
    database there, and answers HTTP.
    """
    data_dir = str(tmp_path / "new-data")
    os.makedirs(data_dir)
    with Daemon(data_dir) as daemon:
        assert daemon.url.startswith("http://127.0.0.1:")
        assert status_of(daemon.url + "simple/") == 200
    assert os.path.exists(os.path.join(data_dir, "cheeseshop.sqlite"))
    connection = sqlite3.connect(os.path.join(data_dir, "cheeseshop.sqlite"))
    assert connection.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    connection.close()


def test_serves_http_on_postgresql(tmp_path: Any, pg_dsn: str) -> None:
    """
    With --database naming a PostgreSQL database, the daemon migrates it and
    serves requests from it.
    """
    import psycopg2

    with Daemon(str(tmp_path), "--database", pg_dsn) as daemon:
        assert status_of(daemon.url + "simple/") == 200
    with psycopg2.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT version FROM schema_version")
        assert cursor.fetchone() == (SCHEMA_VERSION,)
    assert not os.path.exists(os.path.join(str(tmp_path), "cheeseshop.sqlite"))


def test_stops_cleanly_on_sigterm(tmp_path: Any) -> None:
    """
    SIGTERM stops the daemon with status 0 and leaves no staging directory.
    """
    daemon = Daemon(str(tmp_path)).start()
    # twistd re-raises the signal it stopped on, as daemons conventionally do.
    assert daemon.stop() in (0, -signal.SIGTERM)
    assert os.listdir(os.path.join(str(tmp_path), "tmp")) == []
    assert "Server Shut Down" in daemon.log


def refusal(tmp_path: Any, *args: str) -> str:
    """
    Run the daemon expecting it to refuse to start; return its stderr.
    """
    result = run(twistd_argv(*args), timeout=60, cwd=str(tmp_path))
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_option_is_one_line(tmp_path: Any) -> None:
    """
    An unknown option is refused with one line on stderr.
    """
    assert refusal(tmp_path, "--data-dir", str(tmp_path), "--no-such-option") == (
        "cheeseshop: error: option --no-such-option not recognized"
    )


def test_unreachable_database_is_one_line(tmp_path: Any) -> None:
    """
    A PostgreSQL database that cannot be reached is refused with one line.
    """
    line = refusal(tmp_path, "--data-dir", str(tmp_path), "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert line.startswith("cheeseshop: error: cannot connect to the PostgreSQL database: ")
    assert "Connection refused" in line


def test_unwritable_data_dir_is_one_line(tmp_path: Any) -> None:
    """
    A data directory that cannot be created is refused with one line.
    """
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = refusal(tmp_path, "--data-dir", str(blocker / "data"))
    assert line == f"cheeseshop: error: cannot use data directory {blocker / 'data'}: Not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_read_only_data_dir_is_one_line(tmp_path: Any) -> None:
    """
    A data directory the daemon may not write to is refused with one line.
    """
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    line = refusal(tmp_path, "--data-dir", str(locked))
    assert line == f"cheeseshop: error: cannot use data directory {locked}: Permission denied"


def test_database_newer_than_the_code_is_refused(tmp_path: Any) -> None:
    """
    A database from a newer twistedindex is refused with one line, and left
    as it was.
    """
    Daemon(str(tmp_path)).start().stop()
    path = os.path.join(str(tmp_path), "cheeseshop.sqlite")
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE schema_version SET version = 99")
    line = refusal(tmp_path, "--data-dir", str(tmp_path), "--listen", "tcp:0:interface=127.0.0.1")
    assert line == (
        f"cheeseshop: error: the database has schema version 99, newer than the {SCHEMA_VERSION} this twistedindex knows; "
        "run a newer twistedindex or restore a backup"
    )
    assert connection.execute("SELECT version FROM schema_version").fetchone() == (99,)
    connection.close()


def test_port_in_use_is_one_line(tmp_path: Any) -> None:
    """
    A listen address that is taken is refused with one line, by twistd and
    by twist alike.
    """
    with Daemon(str(tmp_path)) as daemon:
        port = daemon.url.rsplit(":", 1)[1].strip("/")
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        expected = f"cheeseshop: error: cannot listen on {endpoint}: Address already in use"
        other = tmp_path / "other"
        other.mkdir()
        assert refusal(other, "--data-dir", str(other), "--listen", endpoint) == expected
        result = run([tool("twist"), "cheeseshop", "--data-dir", str(other), "--listen", endpoint], timeout=60)
        assert result.returncode != 0
        assert result.stderr.strip() == expected


def test_config_file_settings_are_used_and_the_command_line_wins(tmp_path: Any) -> None:
    """
    The daemon takes its data directory and listen address from --config,
    and a --data-dir on the command line wins over the file.
    """
    from_ini, from_cli = tmp_path / "from-ini", tmp_path / "from-cli"
    ini = tmp_path / "cheeseshop.ini"
    ini.write_text(f"[storage]\ndata_dir = {from_ini}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n")
    with Daemon(str(tmp_path), "--config", str(ini), own_settings=True) as daemon:
        assert daemon.url.startswith("http://127.0.0.1:")
    assert (from_ini / "cheeseshop.sqlite").exists()
    with Daemon(str(tmp_path), "--config", str(ini), "--data-dir", str(from_cli), own_settings=True):
        pass
    assert (from_cli / "cheeseshop.sqlite").exists()


def test_twist_serves_too(tmp_path: Any) -> None:
    """
    `twist cheeseshop` (the foreground runner) serves like `twistd -n`.
    """
    import subprocess
    import threading

    from .daemon import environment

    process = subprocess.Popen(
        # twist logs JSON unless its output is a terminal; ask for text.
        [
            tool("twist"),
            "--log-format=text",
            "cheeseshop",
            "--data-dir",
            str(tmp_path),
            "--listen",
            "tcp:0:interface=127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(),
    )
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "serving HTTP on" in line and not found:
                found.append(line.split("serving HTTP on ")[1].strip())
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(30)
        assert status_of(found[0] + "simple/") == 200
    finally:
        process.terminate()
        process.wait(30)
