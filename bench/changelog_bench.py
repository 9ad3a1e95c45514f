"""
XML-RPC changelog_since_serial(0) over a 100,000-row journal: its time and
the daemon's peak memory.

    python bench/changelog_bench.py [--rows 100000]

The journal is written straight into a new SQLite database (as 5,000
projects' worth of uploads would write it), then a daemon serves it.  The
call returns 50,000 rows (PyPI's cap); the next call, from the last serial,
returns the rest.  Both are timed from the client, and the daemon's peak RSS
(VmHWM) is compared with its idle RSS.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import time
import xmlrpc.client
from pathlib import Path

from harness import free_port, peak_rss_kib, tree_rss_kib, twistedindex


def journal_rows(count: int):  # type: ignore[no-untyped-def]
    actions = ["create", "add Owner bench", "new release", "add py3 file {name}-1.0-py3-none-any.whl"]
    for serial in range(1, count + 1):
        project = f"proj-{serial // 20:05d}"
        action = actions[min(serial % 20, 3)].format(name=project.replace("-", "_"))
        yield (
            serial,
            project,
            project,
            None if serial % 20 < 2 else "1.0",
            1_700_000_000_000_000 + serial * 1000,
            action,
            "bench",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--work", default="bench-work")
    args = parser.parse_args()
    data = Path(args.work).resolve() / "changelog"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)

    # The daemon creates the schema; the journal is then filled in bulk.
    server = twistedindex(data, free_port()).start()
    server.stop()
    connection = sqlite3.connect(data / "cheeseshop.sqlite")
    with connection:
        connection.executemany(
            "INSERT INTO journal (serial, name, normalized_name, version, timestamp, action, submitted_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            journal_rows(args.rows),
        )
    connection.close()

    server = twistedindex(data, free_port(), log_path=data / "daemon.log").start()
    server.wait_idle()
    idle = tree_rss_kib(server.pid) / 1024
    proxy = xmlrpc.client.ServerProxy(server.url + "pypi")
    started = time.perf_counter()
    first = proxy.changelog_since_serial(0)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rest = proxy.changelog_since_serial(first[-1][4])
    rest_seconds = time.perf_counter() - started
    peak = peak_rss_kib(server.pid) / 1024
    server.stop()
    assert len(first) + len(rest) == args.rows, (len(first), len(rest))

    print(f"\nchangelog_since_serial over a {args.rows:,}-row journal (SQLite), timed at the client")
    print(f"  since 0:           {len(first):,} rows in {first_seconds:.2f} s")
    print(f"  since {first[-1][4]:,}:      {len(rest):,} rows in {rest_seconds:.2f} s")
    print(f"  RSS idle {idle:.1f} MiB, peak {peak:.1f} MiB (+{peak - idle:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
