# -*- test-case-name: tests.test_upload -*-
"""
Domain errors as HTTP responses, decided in one place.

The legacy upload API's clients print the HTTP reason phrase (distutils:
C{Upload failed (400): <reason>}; twine: C{400 Bad Request ... <reason>}), so
the message goes there, made safe (no CR or LF, Latin-1 only), and into the
body: plain text, or JSON for clients that ask for it (uv shows the body).
"""

from __future__ import annotations

import json

from twisted.web.server import Request

from ..errors import CheeseshopError, Forbidden, Gone, NotFound, Unauthenticated

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone"}


def status_of(error: CheeseshopError) -> int:
    if isinstance(error, Unauthenticated):
        return 401 if error.challenge else 403
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Gone):
        return 410
    return 400


def reason_phrase(message: str) -> bytes:
    """
    C{message} as a reason phrase: one line, Latin-1.
    """
    line = " ".join(message.replace("\r", " ").replace("\n", " ").split())
    return line.encode("iso-8859-1", "replace")


def error_response(request: Request, error: CheeseshopError) -> bytes:
    """
    Answer C{request} with C{error}; returns the body.
    """
    code = status_of(error)
    request.setResponseCode(code, reason_phrase(error.message))
    if isinstance(error, Unauthenticated) and error.challenge:
        # distutils register sends its login only when challenged, for the
        # realm named in .pypirc (default "pypi").
        request.setHeader(b"www-authenticate", b'Basic realm="pypi"')
    accept = request.getHeader(b"accept") or b""
    if b"application/json" in accept:
        request.setHeader(b"content-type", b"application/json")
        body = json.dumps(
            {"message": error.message, "code": f"{code} {error.message}", "title": _TITLES.get(code, "Error")}
        ).encode("utf-8")
    else:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        body = f"{code} {error.message}\n".encode()
    return b"" if request.method == b"HEAD" else body
