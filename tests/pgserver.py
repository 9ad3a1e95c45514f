"""
A throwaway PostgreSQL server for the tests.

Either C{TWISTEDINDEX_TEST_PG_DSN} names a server the tests may create and
drop databases on (the DSN's user needs CREATEDB), or this module starts a
private cluster with the PostgreSQL binaries on the machine (initdb and
postgres), on a free loopback port, with trust authentication.  PostgreSQL
refuses to run as root, so when the tests run as root the cluster runs as the
C{postgres} user (or C{nobody}).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import psycopg2
from psycopg2.extensions import ISOLATION_LEVEL_AUTOCOMMIT, make_dsn, parse_dsn

DSN_VARIABLE = "TWISTEDINDEX_TEST_PG_DSN"


class Unavailable(Exception):
    """
    No PostgreSQL server can be had; the message says why.
    """


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """
    A server on which each test gets its own database.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: str | None = None
        self._counter = 0
        self.admin_dsn: str = ""

    def start(self) -> None:
        given = os.environ.get(DSN_VARIABLE)
        if given:
            self.admin_dsn = given
            self._check_connect(timeout=10)
            return
        initdb, postgres = find_binary("initdb"), find_binary("postgres")
        if not initdb or not postgres:
            raise Unavailable(f"no PostgreSQL binaries (initdb, postgres) on this machine and no {DSN_VARIABLE} set")
        run_as: dict[str, Any] = {}
        self._directory = tempfile.mkdtemp(prefix="twistedindex-pg-")
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    account = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise Unavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
            os.chown(self._directory, account.pw_uid, account.pw_gid)
            run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        data = os.path.join(self._directory, "data")
        subprocess.run(
            [initdb, "-D", data, "-U", "cheeseshop", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self._directory,
            **run_as,
        )
        port = free_port()
        self._process = subprocess.Popen(
            [
                postgres,
                "-D",
                data,
                "-p",
                str(port),
                "-k",
                self._directory,
                "-c",
                "listen_addresses=127.0.0.1",
                # A throwaway server: durability buys nothing here.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self._directory, "server.log"), "wb"),
            cwd=self._directory,
            **run_as,
        )
        self.admin_dsn = f"postgresql://cheeseshop@127.0.0.1:{port}/postgres"
        self._check_connect(timeout=30)

    def _check_connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.admin_dsn).close()
                return
            except psycopg2.OperationalError as e:
                if self._process is not None and self._process.poll() is not None:
                    raise Unavailable(f"the PostgreSQL server exited: {self.log_tail()}") from None
                if time.monotonic() > deadline:
                    raise Unavailable(f"cannot connect to PostgreSQL at {self.admin_dsn}: {e}") from None
                time.sleep(0.1)

    def log_tail(self) -> str:
        if self._directory is None:
            return ""
        try:
            with open(os.path.join(self._directory, "server.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _admin(self) -> Any:
        connection = psycopg2.connect(self.admin_dsn)
        connection.set_isolation_level(ISOLATION_LEVEL_AUTOCOMMIT)
        return connection

    def create_database(self) -> str:
        """
        A new, empty database; returns its DSN.
        """
        self._counter += 1
        name = f"cheeseshop_test_{os.getpid()}_{self._counter}"
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        return make_dsn(self.admin_dsn, dbname=name)

    def drop_database(self, dsn: str) -> None:
        name = parse_dsn(dsn)["dbname"]
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            connection.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
