"""
Uploads per second: concurrent uploads of small wheels to twistedindex,
pypiserver and devpi-server, in one run.

    python bench/upload_throughput.py [--files 500] [--concurrency 1,8]

Each server starts empty; the same wheels (about 2 KB each) go to it through
its upload API with the same client (one HTTP connection per client, as
twine keeps its session).  Authentication is what each server's own client
uses: a password with every request for twistedindex and pypiserver (as
twine sends it), devpi's login token for devpi-server (as devpi-client
does; a password would cost devpi an argon2 check per file).
"""

from __future__ import annotations

import argparse
import base64
import shutil
import sys
from pathlib import Path

from harness import (
    Devpi,
    admin,
    corpus,
    free_port,
    htpasswd,
    log,
    pypiserver,
    report,
    twistedindex,
    upload_all,
    versions,
)

PASSWORD = "bench-password"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--work", default="bench-work")
    parser.add_argument("--peers", default="pypiserver,devpi")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    peers = set(args.peers.split(",")) if args.peers else set()
    wheels = [d for d in corpus(work, max(args.files // 5, 1)) if d.filetype == "bdist_wheel"][: args.files]
    levels = [int(n) for n in args.concurrency.split(",")]
    rows = []

    for clients in levels:
        data = work / "upload-twistedindex"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        admin(data, "adduser", "bench", "--password-stdin", password=PASSWORD)
        server = twistedindex(data, free_port(), log_path=work / "upload-twistedindex.log").start()
        seconds = upload_all(server.url + "legacy/", wheels, basic("bench", PASSWORD), clients)
        server.stop()
        rows.append(["twistedindex", str(clients), f"{len(wheels) / seconds:,.0f}", f"{seconds:.1f}"])
        log(f"twistedindex, {clients} clients: {len(wheels) / seconds:.0f} files/s")

        if "pypiserver" in peers:
            packages = work / "upload-pypiserver"
            shutil.rmtree(packages, ignore_errors=True)
            packages.mkdir()
            password_file = htpasswd(work / "venvs" / "htpasswd", "bench", PASSWORD)
            pypi = pypiserver(work, packages, free_port(), htpasswd=password_file).start()
            seconds = upload_all(pypi.url, wheels, basic("bench", PASSWORD), clients)
            pypi.stop()
            stored = len(list(packages.iterdir()))
            rows.append(["pypiserver", str(clients), f"{len(wheels) / seconds:,.0f}", f"{seconds:.1f}"])
            log(f"pypiserver, {clients} clients: {len(wheels) / seconds:.0f} files/s ({stored} stored)")
            pypi_versions = versions(Path(pypi.argv[0]).parent, "pypiserver", "waitress")

        if "devpi" in peers:
            devpi = Devpi(work, work / "upload-devpi", free_port())
            devpi.init()
            devpi.server.probe = devpi.url + "+api"
            devpi.server.start(timeout=300)
            devpi.setup_index(PASSWORD)
            seconds = upload_all(devpi.index_url, wheels, devpi.auth_headers, clients)
            devpi.server.stop()
            rows.append(["devpi-server", str(clients), f"{len(wheels) / seconds:,.0f}", f"{seconds:.1f}"])
            log(f"devpi, {clients} clients: {len(wheels) / seconds:.0f} files/s")
            devpi_versions = versions(devpi.bin, "devpi-server")

    report(
        f"Uploads of {len(wheels)} small wheels (about 2 KB), one HTTP connection per client",
        rows,
        ["server", "clients", "files/s", "seconds"],
    )
    if "pypiserver" in peers:
        print(f"pypiserver: {pypi_versions}")
    if "devpi" in peers:
        print(f"devpi: {devpi_versions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
