# -*- test-case-name: tests.test_simple -*-
"""
C{/packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>}: the package files, and
each wheel's C{<filename>.metadata} (PEP 658).

A file is served only once a committed row names it, never just because it
is on disk (see L{twistedindex.filestore}).  Files never change, so they go
out with a strong ETag and a year-long, immutable cache lifetime; Range and
HEAD come from twisted.web's static file resource.
"""

from __future__ import annotations

import os
import re

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.static import File as StaticFile

from ..filestore import METADATA_SUFFIX
from ..index import PackageIndex
from ..pep381 import DownloadCounter, today
from .cache import etag_matches, not_found, not_modified

log = Logger()

_HEX = re.compile(r"\A[0-9a-f]+\Z")
_IMMUTABLE = b"public, max-age=31536000, immutable"

# Files up to this size are answered in one write (see _answer_small).
SMALL_FILE = 256 * 1024

# The most files remembered as committed (a few MiB of names).
_COMMITTED_LIMIT = 50_000


class FilesResource(Resource):
    """
    The package files.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, downloads: DownloadCounter) -> None:
        super().__init__()
        self._index = index
        self._downloads = downloads
        # The projects of files known to be committed, by (filename,
        # blake2b_256).  Any change may be a removal, so each one empties
        # it: a removed file is not served in the moment between its row's
        # deletion and its unlinking.
        self._committed: dict[tuple[str, str], str] = {}
        index.observe_changes(lambda project, serial: self._committed.clear())

    def render_GET(self, request: Request) -> bytes | int:
        segments = request.postpath
        if len(segments) != 4:
            return not_found(request)
        try:
            first, second, rest, filename = (segment.decode("utf-8") for segment in segments)
        except UnicodeDecodeError:
            return not_found(request)
        blake2b_256 = first + second + rest
        if len(first) != 2 or len(second) != 2 or len(blake2b_256) != 64 or not _HEX.match(blake2b_256):
            return not_found(request)
        if not filename or "/" in filename:
            return not_found(request)
        owner = filename.removesuffix(METADATA_SUFFIX)
        project = self._committed.get((owner, blake2b_256))
        if project is not None:
            return self._serve(request, blake2b_256, filename, project)
        Deferred.fromCoroutine(self._serve_later(request, blake2b_256, owner, filename))
        return NOT_DONE_YET

    render_HEAD = render_GET

    async def _serve_later(self, request: Request, blake2b_256: str, owner: str, filename: str) -> None:
        try:
            project = await self._index.project_of_file(owner, blake2b_256)
        except Exception:
            log.failure("looking up {filename} failed", filename=filename)
            project = None
        if request.channel is None:
            return
        if project is not None:
            if len(self._committed) >= _COMMITTED_LIMIT:
                self._committed.clear()
            self._committed[(owner, blake2b_256)] = project
            body = self._serve(request, blake2b_256, filename, project)
        else:
            body = not_found(request)
        if body is NOT_DONE_YET:
            return
        assert isinstance(body, bytes)
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def _serve(self, request: Request, blake2b_256: str, filename: str, project: str) -> bytes | int:
        is_metadata = filename.endswith(METADATA_SUFFIX)
        path = self._index.files.path(blake2b_256, filename.removesuffix(METADATA_SUFFIX)) + (
            METADATA_SUFFIX if is_metadata else ""
        )
        etag = f'"{blake2b_256}{"-metadata" if is_metadata else ""}"'.encode("ascii")
        request.setHeader(b"etag", etag)
        request.setHeader(b"cache-control", _IMMUTABLE)
        request.setHeader(b"access-control-allow-origin", b"*")
        content_type = b"text/plain; charset=utf-8" if is_metadata else b"application/octet-stream"
        counted = request.method == b"GET" and not is_metadata and request.getHeader(b"range") is None
        if counted:
            # PEP 381's statistics count whole downloads of distributions.
            user_agent = (request.getHeader(b"user-agent") or b"").decode("utf-8", "replace")
            self._downloads.count(today(self._index.now() / 1e6), project, filename, user_agent)
        if request.getHeader(b"range") is None and request.getHeader(b"if-none-match") is None:
            answered = _answer_small(request, path, content_type, etag)
            if answered is not None:
                return answered
        resource = StaticFile(path, defaultType=content_type.decode())
        # Distributions go out as they are stored: no Content-Encoding for
        # .tar.gz (a client would unpack it) and no guessing of types.
        resource.contentTypes = {}
        resource.contentEncodings = {}
        if not resource.exists():
            return not_found(request)
        match = request.getHeader(b"if-none-match")
        if match is not None and etag_matches(match, etag):
            return not_modified(request, resource.getFileSize())
        return resource.render(request)


def _answer_small(request: Request, path: str, content_type: bytes, etag: bytes) -> int | None:
    """
    Answer a plain GET or HEAD of a small file in one write, with the
    headers twisted.web's static files send: most distributions are small,
    and static.File's producer and header handling cost several times the
    read (measured: bench/mirror_bench.py, whose master serves 20,000).
    C{None} when the file is large or gone (the caller takes over).
    """
    respond = getattr(request, "respond_prepared", None)
    if respond is None:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if status.st_size > SMALL_FILE:
            return None
        body = os.read(descriptor, status.st_size) if request.method != b"HEAD" else b""
    finally:
        os.close(descriptor)
    head = (
        b"Content-Type: %s\r\nContent-Length: %d\r\nETag: %s\r\nCache-Control: %s\r\n"
        b"Access-Control-Allow-Origin: *\r\nAccept-Ranges: bytes\r\nLast-Modified: %s\r\n"
        % (content_type, status.st_size, etag, _IMMUTABLE, datetimeToString(int(status.st_mtime)))
    )
    respond(head, body)
    return NOT_DONE_YET  # type: ignore[no-any-return]
