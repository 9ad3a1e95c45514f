"""
The simple API under load: twistedindex beside nginx serving the same pages
as static files, pypiserver and devpi-server holding the same corpus, all
measured in one run on this machine.

    python bench/simple_bench.py [--projects 2000] [--duration 15]

The corpus is 2,000 projects x 5 versions x (wheel + sdist), loaded into
twistedindex through its own upload API, into devpi-server through its own,
and given to pypiserver as a directory.  For each server it prints start-up
time to the first answer, idle and loaded RSS, and for random project pages
and for /simple/ (wrk, 2 threads, 50 connections) requests/s and p99
latency.  Then the targets, from figures of this run:

 - project pages: at least a third of nginx's requests/s;
 - at least 20 times devpi-server's requests/s;
 - p99 under 20 ms at 50 connections;
 - under 1 s from start to the first answer with the corpus loaded.

Needs wrk and nginx (Debian packages) and network access to PyPI the first
time (for the peers).  State is kept in the work directory between runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from harness import (
    Devpi,
    Server,
    WrkResult,
    corpus,
    free_port,
    get,
    load_twistedindex,
    log,
    nginx,
    pypiserver,
    report,
    twistedindex,
    upload_all,
    versions,
    wrk,
)

PASSWORD = "bench-password"


def measure(
    server: Server, prefix: str, projects: int, duration: int, connections: int, repeats: int
) -> dict[str, object]:
    """
    Start-up, idle RSS, then wrk on random project pages and on the index.
    """
    server.start()
    started_in = server.started_in
    server.wait_idle()
    idle = server.rss_mib()
    base = server.url.rstrip("/")
    log(f"{server.name}: up in {started_in:.2f} s, {idle:.0f} MiB idle; warming up")
    wrk(base + prefix, 5, connections, random_projects=projects, prefix=prefix)
    pages: list[WrkResult] = []
    index: list[WrkResult] = []
    for _ in range(repeats):
        server.wait_idle()
        pages.append(wrk(base + prefix, duration, connections, random_projects=projects, prefix=prefix))
        server.wait_idle()
        index.append(wrk(base + prefix, duration, connections))
    loaded = server.rss_mib()
    server.stop()
    best_pages = max(pages, key=lambda r: r.requests_per_second)
    best_index = max(index, key=lambda r: r.requests_per_second)
    for result in pages + index:
        if result.errors or result.non_2xx:
            log(f"{server.name}: {result.errors} errors, {result.non_2xx} non-2xx answers in a run")
    return {
        "name": server.name,
        "startup": started_in,
        "idle": idle,
        "loaded": loaded,
        "pages": best_pages,
        "index": best_index,
        "page_runs": [round(r.requests_per_second) for r in pages],
    }


def load_devpi(work: Path, dists: list, projects: int) -> Devpi:
    devpi = Devpi(work, work / f"devpi-{projects}", free_port())
    if (devpi.serverdir / ".loaded").exists():
        return devpi
    devpi.init()
    # The index does not exist yet: wait for devpi's API instead.
    devpi.server.probe = devpi.url + "+api"
    devpi.server.start(timeout=300)
    devpi.setup_index(PASSWORD)
    seconds = upload_all(devpi.index_url, dists, devpi.auth_headers, concurrency=4)
    log(f"devpi: loaded {len(dists)} files through its upload API in {seconds:.0f} s ({len(dists) / seconds:.0f}/s)")
    devpi.server.stop()
    devpi.server.probe = devpi.index_url + "+simple/"
    (devpi.serverdir / ".loaded").write_text("")
    return devpi


def static_tree(work: Path, data: Path, projects: int) -> Path:
    """
    The twistedindex pages, saved as files for nginx.
    """
    root = work / f"static-{projects}"
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    server = twistedindex(data, free_port()).start()
    status, body = get(server.url + "simple/")
    (root / "simple").mkdir(parents=True)
    (root / "simple" / "index.html").write_bytes(body)
    for number in range(1, projects + 1):
        name = f"proj-{number:04d}"
        status, body = get(server.url + f"simple/{name}/")
        assert status == 200, name
        (root / "simple" / name).mkdir()
        (root / "simple" / name / "index.html").write_bytes(body)
    server.stop()
    (root / ".done").write_text("")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default="bench-work", help="directory for corpus, peers and data")
    parser.add_argument("--peers", default="nginx,pypiserver,devpi")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed: apt-get install wrk nginx", file=sys.stderr)
            return 2
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    peers = set(args.peers.split(",")) if args.peers else set()
    dists = corpus(work, args.projects)
    data = load_twistedindex(work, dists, args.projects, PASSWORD)
    devpi = load_devpi(work, dists, args.projects) if "devpi" in peers else None

    results = []
    run = (args.projects, args.duration, args.connections, args.repeats)
    results.append(measure(twistedindex(data, free_port(), log_path=work / "twistedindex.log"), "/simple/", *run))
    if "nginx" in peers:
        results.append(measure(nginx(static_tree(work, data, args.projects), work, free_port()), "/simple/", *run))
    if "pypiserver" in peers:
        server = pypiserver(work, dists[0].path.parent, free_port())
        results.append(measure(server, "/simple/", *run))
        pypi_versions = versions(Path(server.argv[0]).parent, "pypiserver", "waitress", "watchdog")
    if devpi is not None:
        results.append(measure(devpi.server, "/bench/dev/+simple/", *run))
        devpi_versions = versions(devpi.bin, "devpi-server")

    rows = []
    for r in results:
        pages, index = r["pages"], r["index"]
        rows.append(
            [
                r["name"],
                f"{r['startup']:.2f}",
                f"{r['idle']:.0f}",
                f"{r['loaded']:.0f}",
                f"{pages.requests_per_second:,.0f}",
                f"{pages.p99_ms:.1f}",
                f"{index.requests_per_second:,.0f}",
                f"{index.p99_ms:.1f}",
            ]
        )
    report(
        f"Simple API, {args.projects} projects x 5 versions x 2 files; "
        f"wrk -t2 -c{args.connections} -d{args.duration}s, best of {args.repeats}",
        rows,
        ["server", "start-up s", "idle MiB", "loaded MiB", "project req/s", "p99 ms", "/simple/ req/s", "p99 ms"],
    )
    if "pypiserver" in peers:
        print(f"pypiserver: {pypi_versions}")
    if devpi is not None:
        print(f"devpi: {devpi_versions}")

    ours = results[0]
    by_name = {r["name"]: r for r in results}
    print("\nTargets")
    checks = []
    if "nginx" in by_name:
        ratio = ours["pages"].requests_per_second / by_name["nginx"]["pages"].requests_per_second
        checks.append((f"project pages at least 1/3 of nginx's req/s: {ratio:.2f} of nginx", ratio >= 1 / 3))
    if "devpi" in by_name:
        ratio = ours["pages"].requests_per_second / by_name["devpi"]["pages"].requests_per_second
        checks.append((f"at least 20x devpi-server's req/s: {ratio:.1f}x", ratio >= 20))
    worst_p99 = max(ours["pages"].p99_ms, ours["index"].p99_ms)
    checks.append((f"p99 under 20 ms at {args.connections} connections: {worst_p99:.1f} ms", worst_p99 < 20))
    checks.append((f"start-up to first answer under 1 s: {ours['startup']:.2f} s", ours["startup"] < 1))
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
