"""
Memory while receiving a large upload: the daemon's resident set before and
at its peak during a 1 GiB wheel upload.

    python bench/upload_memory.py [--size-mib 1024]

The client streams the file from disk (it holds no more of it than the
daemon should).  Target: peak RSS within 64 MiB of the idle RSS.

The upload is authenticated with an API token.  It is measured a second time
with a password, for comparison: checking a password costs argon2's 64 MiB
(argon2-cffi's default, RFC 9106's low-memory profile) for a moment, whatever
is being uploaded.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import shutil
import sys
import threading
import time
import zipfile
from pathlib import Path

from harness import _metadata, admin, free_port, log, peak_rss_kib, tree_rss_kib, twistedindex

PASSWORD = "bench-password"
CHUNK = 1 << 20


def big_wheel(directory: Path, size_mib: int) -> Path:
    """
    A valid wheel carrying C{size_mib} MiB of random bytes, stored (not
    compressed), written once.
    """
    path = directory / f"big_upload-{size_mib}.0-py3-none-any.whl"
    if path.exists():
        return path
    log(f"writing a {size_mib} MiB wheel")
    info = f"big_upload-{size_mib}.0.dist-info"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open(zipfile.ZipInfo("big_upload/blob.bin"), "w", force_zip64=True) as blob:
            for _ in range(size_mib):
                blob.write(os.urandom(CHUNK))
        archive.writestr(f"{info}/METADATA", _metadata("big-upload", f"{size_mib}.0"))
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


class Body:
    """
    The multipart body, read from disk a block at a time.
    """

    def __init__(self, head: bytes, path: Path, tail: bytes) -> None:
        self._parts = [head, path, tail]
        self._file = None
        self.length = len(head) + path.stat().st_size + len(tail)

    def read(self, size: int = CHUNK) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                self._parts.pop(0)
                return part
            if self._file is None:
                self._file = open(part, "rb")
            data = self._file.read(size)
            if data:
                return data
            self._file.close()
            self._parts.pop(0)
        return b""


def digest(path: Path) -> str:
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha256.update(block)
    return sha256.hexdigest()


def upload(wheel: Path, size_mib: int, work: Path, data: Path, authorization: str) -> dict[str, float]:
    """
    Start the daemon, upload the wheel once, and measure.
    """
    limit = (size_mib + 64) * 1024 * 1024
    server = twistedindex(data, free_port(), "--max-upload-size", str(limit), log_path=work / "upload-memory.log")
    server.start()
    server.wait_idle()
    idle = tree_rss_kib(server.pid) / 1024
    boundary = "bench-memory-boundary"
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": "big-upload",
        "version": f"{size_mib}.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": digest(wheel),
    }
    head = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{wheel.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    body = Body(head, wheel, f"\r\n--{boundary}--\r\n".encode())
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(tree_rss_kib(server.pid) / 1024)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=CHUNK)
    connection.request(
        "POST",
        "/legacy/",
        body=body,  # type: ignore[arg-type]
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(body.length),
            "Authorization": authorization,
        },
    )
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    done.set()
    peak = peak_rss_kib(server.pid) / 1024
    server.stop()
    if response.status != 200:
        raise RuntimeError(f"upload failed: {response.status} {response.reason}")
    return {"idle": idle, "peak": peak, "sampled": max(samples), "seconds": elapsed}


def fresh(data: Path) -> Path:
    if data.exists():
        shutil.rmtree(data)
    data.mkdir()
    admin(data, "adduser", "bench", "--password-stdin", password=PASSWORD)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--work", default="bench-work")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    wheel = big_wheel(work, args.size_mib)
    data = fresh(work / "upload-memory")
    token = admin(data, "token", "create", "bench").strip().splitlines()[-1]
    with_token = upload(wheel, args.size_mib, work, data, f"Bearer {token}")
    password = base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    with_password = upload(wheel, args.size_mib, work, fresh(work / "upload-memory"), f"Basic {password}")

    size = wheel.stat().st_size / 2**20
    print(f"\nUpload of a {size:.0f} MiB wheel to twistedindex (hashing and fsync included)")
    print(f"  {'':28}{'API token':>12}{'password':>12}")
    for label, key, unit in (
        ("time", "seconds", "s"),
        ("RSS idle", "idle", "MiB"),
        ("RSS peak (VmHWM)", "peak", "MiB"),
        ("RSS peak (sampled)", "sampled", "MiB"),
    ):
        print(f"  {label + ' (' + unit + ')':28}{with_token[key]:>12.1f}{with_password[key]:>12.1f}")
    print(f"  {'rate (MiB/s)':28}{size / with_token['seconds']:>12.0f}{size / with_password['seconds']:>12.0f}")
    growth = with_token["peak"] - with_token["idle"]
    print(f"\nTarget\n  {'PASS' if growth <= 64 else 'FAIL'}  peak within 64 MiB of idle: +{growth:.1f} MiB")
    print(
        f"  (with a password: +{with_password['peak'] - with_password['idle']:.1f} MiB, argon2's memory cost included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
