"""
An HTTP forwarder that records what a client asked for: put it between an
installer and the daemon to see which pages, in which format, and which
files the installer fetched.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import urlsplit


class Recorded(NamedTuple):
    method: str
    path: str
    accept: str
    status: int
    content_type: str


class Recorder:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname, parts.port
        self.requests: list[Recorded] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                recorder._forward(self)

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(handler.command, handler.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        self.requests.append(
            Recorded(
                handler.command,
                handler.path,
                handler.headers.get("Accept", ""),
                response.status,
                response.headers.get("Content-Type", ""),
            )
        )
        handler.send_response(response.status, response.reason)
        for name, value in response.headers.items():
            if name.lower() not in ("connection", "transfer-encoding", "server", "date"):
                handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)
        connection.close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
