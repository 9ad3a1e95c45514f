"""
Plain HTTP for the tests, keeping what upload clients show: the status, the
reason phrase and the body.
"""

from __future__ import annotations

import base64
import http.client
from typing import NamedTuple
from urllib.parse import urlsplit


class Response(NamedTuple):
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.reason, response.headers, response.read())
    finally:
        connection.close()


def get(url: str, headers: dict[str, str] | None = None) -> Response:
    return request("GET", url, headers=headers)


def post_form(url: str, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return request("POST", url, body, {"Content-Type": content_type, **(headers or {})})
