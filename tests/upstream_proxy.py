"""
An HTTP proxy in front of a real upstream daemon, which injects the faults
a mirror must survive: error answers, cut-off and corrupted bodies, stale
serials, slowness, and an upstream that does not speak XML-RPC.

A test adds L{Fault} rules; each applies to the requests whose path matches
it, as many times as it says (or until removed).
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from attrs import define


@define
class Fault:
    """
    :ivar kind: C{"500"}, C{"404"}, C{"truncate"} (half the body, then the
        connection closes), C{"corrupt"} (one byte changed), C{"stale"}
        (C{X-PyPI-Last-Serial} lowered by one, and in a twistedindex's
        C{/+replica/} answer, the serial of C{project}), C{"delay"} (C{seconds}
        before answering), C{"gzip"} (the body gzipped, as PyPI sends its
        pages; a request that does not accept gzip is refused with 406).
    :ivar times: how many requests it applies to; C{None} for all.
    """

    pattern: str
    kind: str
    times: int | None = None
    seconds: float = 0.0
    method: str | None = None
    project: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return re.search(self.pattern, path) is not None


class UpstreamProxy:
    """
    Forwards to C{target} (a base URL), applying the faults.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy.forward(self)

            do_POST = do_GET
            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> UpstreamProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        fault = self._fault_for(handler.command, handler.path)
        if fault is not None and fault.kind in ("500", "404"):
            message = b"injected fault\n"
            handler.send_response(int(fault.kind))
            handler.send_header("Content-Type", "text/plain")
            handler.send_header("Content-Length", str(len(message)))
            handler.end_headers()
            handler.wfile.write(message)
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "gzip" and "gzip" not in handler.headers.get("Accept-Encoding", ""):
            handler.send_response(406)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        connection = http.client.HTTPConnection(self.target_host, self.target_port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(handler.command, handler.path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        connection.close()
        handler.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            lowered = name.lower()
            if lowered in ("connection", "transfer-encoding", "content-length", "server", "date"):
                continue
            if lowered == "x-pypi-last-serial" and fault is not None and fault.kind == "stale":
                value = str(int(value) - 1)
            handler.send_header(name, value)
        if fault is not None and fault.kind == "stale" and fault.project is not None:
            content = _lower_serial(content, fault.project)
        if fault is not None and fault.kind == "gzip":
            content = gzip.compress(content)
            handler.send_header("Content-Encoding", "gzip")
        if fault is not None and fault.kind == "corrupt" and content:
            middle = len(content) // 2
            content = content[:middle] + bytes([content[middle] ^ 0xFF]) + content[middle + 1 :]
        handler.send_header("Content-Length", str(len(content)))
        if fault is not None and fault.kind == "truncate":
            handler.send_header("Connection", "close")
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(content[: len(content) // 2])
            handler.close_connection = True
            return
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)


def _lower_serial(content: bytes, project: str) -> bytes:
    """
    A /+replica/ answer with C{project}'s serial lowered by one.
    """
    answer = json.loads(content)
    document = answer["projects"].get(project)
    if document is not None:
        document["serial"] -= 1
    return json.dumps(answer).encode()


@contextmanager
def upstream_proxy(target: str) -> Iterator[UpstreamProxy]:
    proxy = UpstreamProxy(target).start()
    try:
        yield proxy
    finally:
        proxy.stop()
