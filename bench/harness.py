"""
What the benchmarks share: a deterministic corpus, servers started and
measured as processes (start-up time, RSS), wrk runs, a concurrent upload
client, and the peers (nginx, pypiserver, devpi-server) installed and run
the way their own documentation runs them.

Every server listens on 127.0.0.1 only.  Peers are installed into virtual
environments under the work directory (from PyPI, the first time).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MiB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PYTHONPATH"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


# The corpus


FIXED_TIME = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Dist:
    project: str
    version: str
    path: Path

    @property
    def filetype(self) -> str:
        return "bdist_wheel" if self.path.name.endswith(".whl") else "sdist"


def _metadata(name: str, version: str) -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: Benchmark project {name}\nRequires-Python: >=3.8\n\n{name}\n{'=' * len(name)}\n\n"
        "A project of the benchmark corpus.\n"
    ).encode()


def write_wheel(directory: Path, name: str, version: str, payload: int = 1024) -> Path:
    escaped = name.replace("-", "_")
    info = f"{escaped}-{version}.dist-info"
    members = {
        f"{escaped}/__init__.py": hashlib.sha256(f"{name}{version}".encode()).hexdigest().encode() * (payload // 64),
        f"{info}/METADATA": _metadata(name, version),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for member, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(data)}")
    members[f"{info}/RECORD"] = ("\n".join(record) + f"\n{info}/RECORD,,\n").encode()
    path = directory / f"{escaped}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(zipfile.ZipInfo(member, FIXED_TIME), data)
    return path


def write_sdist(directory: Path, name: str, version: str) -> Path:
    base = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{base}.tar.gz"
    with open(path, "wb") as raw:
        # A fixed gzip mtime keeps the bytes the same on every run.
        import gzip

        with (
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w") as archive,
        ):
            for member, data in (
                (f"{base}/PKG-INFO", _metadata(name, version)),
                (f"{base}/setup.py", b"from setuptools import setup\nsetup()\n"),
            ):
                info = tarfile.TarInfo(member)
                info.size, info.mtime = len(data), 1767225600
                archive.addfile(info, io.BytesIO(data))
    return path


def corpus(directory: Path, projects: int, versions: int = 5) -> list[Dist]:
    """
    C{projects} projects C{proj-0001}..., each with C{versions} releases of a
    wheel and an sdist: written once, reused while the same size is asked.
    """
    directory = directory / f"corpus-{projects}x{versions}"
    files = directory / "files"
    dists = [
        Dist(f"proj-{p:04d}", f"1.{v}", files / name)
        for p in range(1, projects + 1)
        for v in range(versions)
        for name in (f"proj_{p:04d}-1.{v}-py3-none-any.whl", f"proj_{p:04d}-1.{v}.tar.gz")
    ]
    if not (directory / "done").exists():
        log(f"writing the corpus: {len(dists)} files")
        files.mkdir(parents=True, exist_ok=True)
        for p in range(1, projects + 1):
            for v in range(versions):
                write_wheel(files, f"proj-{p:04d}", f"1.{v}")
                write_sdist(files, f"proj-{p:04d}", f"1.{v}")
        (directory / "done").write_text("")
    return dists


# Uploads


def multipart_body(fields: Iterable[tuple[str, str]], filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = "bench-" + hashlib.sha256(data).hexdigest()[:24]
    out = io.BytesIO()
    for name, value in fields:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    out.write(data + f"\r\n--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload_request(dist: Dist, data: bytes | None = None) -> tuple[str, bytes]:
    data = dist.path.read_bytes() if data is None else data
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", dist.project),
        ("version", dist.version),
        ("filetype", dist.filetype),
        ("pyversion", "py3" if dist.filetype == "bdist_wheel" else "source"),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("md5_digest", hashlib.md5(data).hexdigest()),
    ]
    return multipart_body(fields, dist.path.name, data)


def upload_all(url: str, dists: list[Dist], headers: dict[str, str], concurrency: int) -> float:
    """
    Upload every file with C{concurrency} clients at once; returns seconds.
    Each client keeps one connection, as twine keeps its session.
    """
    host, port, path = _split(url)
    queue = list(reversed(dists))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=300)
        while True:
            with lock:
                if not queue:
                    break
                dist = queue.pop()
            content_type, body = upload_request(dist)
            for _attempt in range(3):
                try:
                    connection.request("POST", path, body, {"Content-Type": content_type, **headers})
                    response = connection.getresponse()
                    response.read()
                    break
                except (ConnectionError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=300)
            if response.status != 200:
                failures.append(f"{dist.path.name}: {response.status} {response.reason}")
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} uploads failed, e.g. {failures[:3]}")
    return elapsed


def _split(url: str) -> tuple[str, int, str]:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port or 80), "/" + path


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, bytes]:
    host, port, path = _split(url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# Processes


def tree_rss_kib(pid: int) -> int:
    """
    The resident set of a process and its children, in KiB.
    """
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return total


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Every server started, so that none outlives the benchmark, even when it
# fails half-way.
_RUNNING: list[Server] = []


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


@dataclass
class Server:
    name: str
    argv: list[str]
    url: str
    probe: str
    env: dict[str, str] = field(default_factory=clean_env)
    cwd: str | None = None
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0
    log_path: Path | None = None

    def start(self, timeout: float = 120) -> Server:
        """
        Start the server; record the time until C{probe} first answers 200.
        """
        output = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        began = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        _RUNNING.append(self)
        while True:
            try:
                status, _ = get(self.probe, timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log_path}")
            if time.perf_counter() - began > timeout:
                raise RuntimeError(f"{self.name} did not answer within {timeout} s")
            time.sleep(0.01)
        self.started_in = time.perf_counter() - began
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mib(self) -> float:
        return tree_rss_kib(self.pid) / 1024

    def wait_idle(self, limit: float = 0.05, timeout: float = 60) -> None:
        """
        Wait until the server uses less than C{limit} of a core for a second.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = process_cpu_seconds(self.pid)
            time.sleep(1)
            if process_cpu_seconds(self.pid) - before < limit:
                return

    def stop(self) -> None:
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def twistedindex(data_dir: Path, port: int, *args: str, log_path: Path | None = None) -> Server:
    env = clean_env(PYTHONPATH=str(ROOT))
    return Server(
        "twistedindex",
        [
            str(BIN / "twistd"),
            "-n",
            "--pidfile=",
            "cheeseshop",
            "--data-dir",
            str(data_dir),
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            *args,
        ],
        f"http://127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}/simple/",
        env=env,
        log_path=log_path,
    )


def admin(data_dir: Path, *args: str, password: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "cheeseshop-admin"), "--data-dir", str(data_dir), *args],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
        check=True,
    )
    return result.stdout


def load_twistedindex(work: Path, dists: list[Dist], projects: int, password: str) -> Path:
    """
    A twistedindex data directory holding the corpus, loaded through its own
    upload API once and kept.
    """
    data = work / f"twistedindex-{projects}"
    if (data / ".loaded").exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    admin(data, "adduser", "bench", "--password-stdin", password=password)
    server = twistedindex(data, free_port(), log_path=work / "twistedindex-load.log").start()
    auth = {"Authorization": "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()}
    seconds = upload_all(server.url + "legacy/", dists, auth, concurrency=4)
    rate = len(dists) / seconds
    log(f"twistedindex: loaded {len(dists)} files through its upload API in {seconds:.0f} s ({rate:.0f}/s)")
    server.stop()
    (data / ".loaded").write_text("")
    return data


# wrk

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int


def wrk(url: str, duration: int, connections: int, random_projects: int = 0, prefix: str = "/simple/") -> WrkResult:
    """
    One wrk run: a fixed URL, or random project pages C{prefix}proj-NNNN/.
    """
    env = dict(os.environ, BENCH_PROJECTS=str(random_projects), BENCH_PREFIX=prefix)
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(WRK_SCRIPT), url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(text for text in result.stdout.splitlines() if text.startswith("BENCH_JSON "))
    data = json.loads(line[len("BENCH_JSON ") :])
    return WrkResult(data["rps"], data["p50_us"] / 1000, data["p99_us"] / 1000, data["errors"], data["non2xx"])


# Peers


def venv(work: Path, name: str, *requirements: str) -> Path:
    """
    A virtual environment under the work directory with C{requirements}.
    """
    path = work / "venvs" / name
    marker = path / ".installed"
    wanted = "\n".join(requirements)
    if not marker.exists() or marker.read_text() != wanted:
        log(f"installing {' '.join(requirements)} into {path}")
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", *requirements], check=True, env=clean_env())
        marker.write_text(wanted)
    return path / "bin"


def versions(bin_dir: Path, *packages: str) -> str:
    result = subprocess.run(
        [str(bin_dir / "pip"), "list", "--format=json"], capture_output=True, text=True, env=clean_env()
    )
    installed = {p["name"].lower(): p["version"] for p in json.loads(result.stdout)}
    return ", ".join(f"{p} {installed.get(p.lower(), '?')}" for p in packages)


def nginx(static_root: Path, work: Path, port: int) -> Server:
    conf = work / "nginx"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "logs").mkdir(exist_ok=True)
    (conf / "nginx.conf").write_text(
        f"""
worker_processes auto;
error_log {conf}/logs/error.log warn;
pid {conf}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type text/html;
    client_body_temp_path {conf}/body;
    proxy_temp_path {conf}/proxy;
    fastcgi_temp_path {conf}/fastcgi;
    uwsgi_temp_path {conf}/uwsgi;
    scgi_temp_path {conf}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {static_root};
        index index.html;
    }}
}}
"""
    )
    return Server(
        "nginx",
        [shutil.which("nginx") or "nginx", "-p", str(conf), "-c", str(conf / "nginx.conf"), "-g", "daemon off;"],
        f"http://127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}/simple/",
    )


def pypiserver(work: Path, packages: Path, port: int, htpasswd: Path | None = None) -> Server:
    # waitress, and watchdog 2.2.1: with a newer watchdog pypiserver 2.4's
    # cache is dropped on every file read (pypiserver issue #502), so this is
    # pypiserver at its best.
    bin_dir = venv(work, "pypiserver", "pypiserver[passlib]==2.4.2", "waitress", "watchdog==2.2.1")
    auth = ["-P", str(htpasswd), "-a", "update"] if htpasswd else ["-P", ".", "-a", "."]
    return Server(
        "pypiserver",
        [
            str(bin_dir / "pypi-server"),
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "--server",
            "auto",
            "--backend",
            "cached-dir",
            *auth,
            str(packages),
        ],
        f"http://127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}/simple/",
        log_path=work / "pypiserver.log",
    )


def htpasswd(path: Path, user: str, password: str) -> Path:
    bin_dir = venv(path.parent.parent, "pypiserver", "pypiserver[passlib]==2.4.2", "waitress", "watchdog==2.2.1")
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import sys; from passlib.apache import HtpasswdFile as H; h = H(sys.argv[1], new=True); "
            "h.set_password(sys.argv[2], sys.argv[3]); h.save()",
            str(path),
            user,
            password,
        ],
        check=True,
    )
    return path


class Devpi:
    """
    devpi-server on a server directory, with user C{bench} and a
    non-mirroring index C{bench/dev}, as devpi's quickstart sets it up.
    """

    def __init__(self, work: Path, serverdir: Path, port: int) -> None:
        self.bin = venv(work, "devpi", "devpi-server", "devpi-client")
        self.serverdir = serverdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.index_url = self.url + "bench/dev/"
        self.token: str | None = None
        self.server = Server(
            "devpi",
            [str(self.bin / "devpi-server"), "--serverdir", str(serverdir), "--host", "127.0.0.1", "--port", str(port)],
            self.url,
            self.index_url + "+simple/",
            log_path=work / f"devpi-{serverdir.name}.log",
        )

    def init(self) -> None:
        shutil.rmtree(self.serverdir, ignore_errors=True)
        subprocess.run(
            [str(self.bin / "devpi-init"), "--serverdir", str(self.serverdir), "--no-root-pypi"],
            check=True,
            capture_output=True,
            env=clean_env(),
        )

    def _json(self, method: str, path: str, body: dict[str, object], auth: bool = False) -> dict[str, object]:
        host, port, _ = _split(self.url)
        connection = http.client.HTTPConnection(host, port, timeout=120)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth and self.token:
            headers["X-Devpi-Auth"] = self.token
        connection.request(method, path, json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"devpi {method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data) if data else {}

    def setup_index(self, password: str) -> None:
        self._json("PUT", "/bench", {"password": password, "email": "bench@example.org"})
        self.login(password)
        self._json("PUT", "/bench/dev", {"bases": [], "volatile": True}, auth=True)

    def login(self, password: str) -> None:
        result = self._json("POST", "/+login", {"user": "bench", "password": password})
        token = result["result"]["password"]  # type: ignore[index]
        self.token = base64.b64encode(f"bench:{token}".encode()).decode()

    @property
    def auth_headers(self) -> dict[str, str]:
        assert self.token is not None
        return {"X-Devpi-Auth": self.token}


def report(title: str, rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
