"""
A mirror's first full sync: twistedindex mirroring a twistedindex master,
beside bandersnatch mirroring the same master, in one run on this machine.

    python bench/mirror_bench.py [--projects 2000] [--workers 8]

The master holds the benchmark corpus (2,000 projects x 5 versions x (wheel
+ sdist) = 20,000 files by default), loaded once through its upload API.
Each mirror starts empty.  For each it prints the time of the first full
sync, the files and bytes it holds afterwards, and its peak RSS; then the
targets, from figures of this run:

 - twistedindex's sync in at most half of bandersnatch's time;
 - twistedindex's peak RSS under 150 MiB.

twistedindex's sync is timed from the daemon's start to its first complete
round (its /last-modified answers); bandersnatch's is its `mirror` command,
with the same number of workers (bandersnatch allows at most 10): for
bandersnatch, projects synced at once; for twistedindex, requests to the
master at once, each bringing up to 8 projects' /+replica/ documents.  Both
check every file's sha256; twistedindex also fsyncs each file and commits
each project to its database, and serves the result.

Both mirrors start from empty directories.  The last run's mirrors are
deleted before either is timed, followed by a wait of about a minute, since
ext4 makes new files slow for a minute after many are deleted (see
clear_last_run).

Needs network access to PyPI the first time (for bandersnatch).  State is
kept in the work directory between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    corpus,
    free_port,
    get,
    load_twistedindex,
    log,
    peak_rss_kib,
    report,
    twistedindex,
    venv,
    versions,
)

PASSWORD = "bench-password"


def tree_size(root: Path) -> tuple[int, int]:
    """
    How many distribution files are under C{root}, and their bytes.
    """
    count = size = 0
    for path in root.rglob("*"):
        if path.is_file() and path.name.endswith((".whl", ".tar.gz")):
            count += 1
            size += path.stat().st_size
    return count, size


# ext4's inode allocator steps over every inode freed in the last 60
# seconds (its "recently deleted" check, one buffer lookup each): a run
# started just after deleting the last run's tens of thousands of files
# pays for that deletion, by a time that depends on when it ran.
FREED_INODES_WINDOW = 61.0


def clear_last_run(work: Path) -> None:
    """
    Delete both mirrors left by the last run, write out what that left
    dirty, and wait until the freed inodes no longer slow the allocator,
    so that neither timed run pays for the set-up.  Nothing is deleted
    between the two timed runs.
    """
    deleted = False
    for name in ("mirror-twistedindex", "mirror-bandersnatch"):
        if (work / name).exists():
            shutil.rmtree(work / name)
            deleted = True
    os.sync()
    if deleted:
        log(f"deleted the last run's mirrors; waiting {FREED_INODES_WINDOW:.0f} s for the filesystem to settle")
        time.sleep(FREED_INODES_WINDOW)


def sync_twistedindex(work: Path, master_url: str, workers: int) -> dict[str, object]:
    data = work / "mirror-twistedindex"
    data.mkdir(parents=True)
    server = twistedindex(
        data,
        free_port(),
        "--mirror-of",
        master_url.rstrip("/"),
        "--mirror-interval",
        "3600",
        "--mirror-workers",
        str(workers),
        log_path=work / "mirror-twistedindex.log",
    )
    began = time.perf_counter()
    server.start()
    while get(server.url + "last-modified")[0] != 200:
        if server.process is None or server.process.poll() is not None:
            raise RuntimeError(f"the mirror exited; see {work / 'mirror-twistedindex.log'}")
        time.sleep(0.05)
    seconds = time.perf_counter() - began
    peak = peak_rss_kib(server.pid) / 1024
    identical = get(server.url + "simple/")[1] == get(master_url + "simple/")[1]
    server.stop()
    files, size = tree_size(data / "packages")
    return {"name": "twistedindex", "seconds": seconds, "files": files, "bytes": size, "peak": peak, "ok": identical}


def sync_bandersnatch(work: Path, master_url: str, workers: int) -> dict[str, object]:
    bin_dir = venv(work, "bandersnatch", "bandersnatch==6.8.0")
    directory = work / "mirror-bandersnatch"
    os.sync()  # what the first timed run left dirty
    config = work / "bandersnatch.conf"
    config.write_text(
        "[mirror]\n"
        f"directory = {directory}\n"
        f"master = {master_url.rstrip('/')}\n"
        "allow-non-https = true\n"
        "api-method = xmlrpc\n"
        f"workers = {min(workers, 10)}\n"
        "stop-on-error = true\n"
        "json = true\n"
        "release-files = true\n"
    )
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(bin_dir / "bandersnatch"), "-c", str(config), "mirror"],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "mirror-bandersnatch.log", "wb"),
    )
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, peak_rss_kib(process.pid))
        except OSError:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - began
    if process.returncode != 0:
        raise RuntimeError(f"bandersnatch failed; see {work / 'mirror-bandersnatch.log'}")
    files, size = tree_size(directory / "web" / "packages")
    return {
        "name": f"bandersnatch {versions(bin_dir, 'bandersnatch')}",
        "seconds": seconds,
        "files": files,
        "bytes": size,
        "peak": peak / 1024,
        "ok": files > 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--work", default="bench-work", help="directory for corpus, peers and data")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    dists = corpus(work, args.projects)
    data = load_twistedindex(work, dists, args.projects, PASSWORD)
    master = twistedindex(data, free_port(), log_path=work / "mirror-master.log").start()
    get(master.url + "simple/")
    venv(work, "bandersnatch", "bandersnatch==6.8.0")  # installed before any timing
    clear_last_run(work)
    log("master up; syncing twistedindex's mirror")
    ours = sync_twistedindex(work, master.url, args.workers)
    log(f"twistedindex: {ours['seconds']:.1f} s; syncing bandersnatch")
    theirs = sync_bandersnatch(work, master.url, args.workers)
    log(f"bandersnatch: {theirs['seconds']:.1f} s")
    master.stop()

    rows = [
        [
            str(r["name"]),
            f"{r['seconds']:.1f}",
            f"{r['files']:,}",
            f"{int(r['bytes']) / 2**20:.1f}",  # type: ignore[call-overload]
            f"{r['peak']:.0f}",
        ]
        for r in (ours, theirs)
    ]
    report(
        f"First full sync of {len(dists):,} files in {args.projects:,} projects, {args.workers} workers",
        rows,
        ["mirror", "seconds", "files", "MiB", "peak RSS MiB"],
    )
    ratio = float(ours["seconds"]) / float(theirs["seconds"])  # type: ignore[arg-type]
    print()
    print(f"time ratio twistedindex / bandersnatch: {ratio:.2f} (target <= 0.5): {'PASS' if ratio <= 0.5 else 'FAIL'}")
    peak = float(ours["peak"])  # type: ignore[arg-type]
    print(f"twistedindex peak RSS: {peak:.0f} MiB (target < 150): {'PASS' if peak < 150 else 'FAIL'}")
    print(f"twistedindex's /simple/ equals the master's: {ours['ok']}; files: {ours['files']} of {len(dists)}")
    return 0 if ratio <= 0.5 and peak < 150 and ours["ok"] and ours["files"] == len(dists) else 1


if __name__ == "__main__":
    sys.exit(main())
