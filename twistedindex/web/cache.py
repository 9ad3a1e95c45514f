# -*- test-case-name: tests.test_simple -*-
"""
Rendered pages, kept in memory as bytes, each tagged with the serial of the
data it was rendered from.

A page stays valid until its project's serial moves.  L{PageCache.changed}
is called with every journal serial the index learns of (its own commits at
once, other processes' through the journal follower), and a page older than
its project's newest serial is never served again.  Because validity is
decided by serials and not by the order of events, a render that started
before a change and finished after it cannot put a stale page back.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

if TYPE_CHECKING:
    from ..index import PackageIndex

log = Logger()

_NO_PROJECT = ""


class Page:
    """
    One rendered page: its bytes, lazily gzipped, and its validators.
    """

    __slots__ = ("body", "serial", "etag", "_gzipped", "gzip_etag", "_heads")

    def __init__(self, body: bytes, serial: int, tag: str) -> None:
        self.body = body
        self.serial = serial
        self.etag = f'"{tag}-{serial}"'.encode("ascii")
        self.gzip_etag = f'"{tag}-{serial}-gz"'.encode("ascii")
        self._gzipped: bytes | None = None
        self._heads: dict[tuple[bytes, bool], bytes] = {}

    def head(self, content_type: bytes, gzipped: bool, headers: tuple[tuple[bytes, bytes], ...]) -> bytes:
        """
        The header lines of a 200 answer with this page, built once per type
        and encoding (for the fast path, see L{CachedPageResource.respond_at_once}).
        """
        key = (content_type, gzipped)
        head = self._heads.get(key)
        if head is None:
            lines = [
                (b"Content-Type", content_type),
                (b"Content-Length", b"%d" % len(self.gzipped() if gzipped else self.body)),
                (b"ETag", self.gzip_etag if gzipped else self.etag),
                (b"Vary", b"Accept, Accept-Encoding"),
                *headers,
                (b"X-PyPI-Last-Serial", b"%d" % self.serial),
            ]
            if gzipped:
                lines.append((b"Content-Encoding", b"gzip"))
            head = self._heads[key] = b"".join(name + b": " + value + b"\r\n" for name, value in lines)
        return head

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            # mtime=0 keeps the bytes the same on every render.
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


class PageCache:
    """
    Pages by key, checked against the newest serial known for their project.
    """

    def __init__(self) -> None:
        self._pages: dict[Hashable, Page] = {}
        self._project_serials: dict[str, int] = {}
        self._any_serial = 0

    def _floor(self, project: str) -> int:
        return self._any_serial if project == _NO_PROJECT else self._project_serials.get(project, 0)

    def get(self, key: Hashable, project: str = _NO_PROJECT) -> Page | None:
        """
        The page for C{key} if it is still current.

        :param project: the normalized project the page shows; pages that
            show the whole index (the default) are current only while no
            project has changed.
        """
        page = self._pages.get(key)
        if page is not None and page.serial < self._floor(project):
            del self._pages[key]
            return None
        return page

    def put(self, key: Hashable, page: Page, project: str = _NO_PROJECT) -> None:
        if page.serial >= self._floor(project):
            self._pages[key] = page

    def changed(self, project: str, serial: int) -> None:
        """
        The journal reached C{serial} with a change to C{project}.
        """
        if serial > self._project_serials.get(project, 0):
            self._project_serials[project] = serial
        if serial > self._any_serial:
            self._any_serial = serial


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip().lower() == b"q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accepts_gzip(request: Request) -> bool:
    """
    Whether the client's C{Accept-Encoding} takes gzip.
    """
    header = request.getHeader(b"accept-encoding")
    if not header or b"gzip" not in header:
        return False
    for part in header.split(b","):
        coding, _, params = part.partition(b";")
        if coding.strip().lower() in (b"gzip", b"x-gzip"):
            return _quality(params) > 0
    return False


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """
    Whether an C{If-None-Match} header names C{etag} (or C{*}).
    """
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/") == etag:
            return True
    return False


def not_modified(request: Request, length: int) -> int:
    """
    Answer 304 and finish the request.  Its Content-Length is that of the
    200 answer (RFC 9110, 8.6: it must be that or absent), which twisted.web
    would set to 0 for an empty body; so the request is finished here.
    """
    request.setResponseCode(304)
    request.responseHeaders.removeHeader(b"content-encoding")
    request.setHeader(b"content-length", b"%d" % length)
    request.finish()
    return NOT_DONE_YET  # type: ignore[no-any-return]


def serve_page(
    request: Request, page: Page, content_type: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> bytes | int:
    """
    Answer C{request} with C{page}: 304 when the client's copy is current,
    gzip when the client takes it.  Returns the body to hand to twisted.web
    (empty for HEAD), or C{NOT_DONE_YET} for a 304, which is finished.
    """
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"vary", b"Accept, Accept-Encoding")
    for name, value in headers:
        request.setHeader(name, value)
    if accepts_gzip(request):
        body, etag = page.gzipped(), page.gzip_etag
        request.setHeader(b"content-encoding", b"gzip")
    else:
        body, etag = page.body, page.etag
    request.setHeader(b"etag", etag)
    match = request.getHeader(b"if-none-match")
    if match is not None and etag_matches(match, etag):
        return not_modified(request, len(body))
    if request.method == b"HEAD":
        # twisted.web would otherwise log a warning for a HEAD body.
        request.setHeader(b"content-length", b"%d" % len(body))
        return b""
    return body


# A finished answer that is not a page (a redirect, a 404): applied to the
# request, it sets the status and headers and returns the body.
Answer = Callable[[Request], bytes]


class Route:
    """
    What a cached resource decided for one request: the page's cache key,
    its project (for validity), its type, and how to render it when it is
    not cached (returning C{None} when there is no such page).
    """

    __slots__ = ("key", "project", "content_type", "render")

    def __init__(
        self,
        key: Hashable,
        project: str,
        content_type: bytes,
        render: Callable[[], Awaitable[Page | None]],
    ) -> None:
        self.key = key
        self.project = project
        self.content_type = content_type
        self.render = render


class CachedPageResource(Resource):
    """
    A leaf resource serving pages from a L{PageCache}: a cached, current page
    is answered at once; otherwise the page is rendered (once other
    processes' changes have been caught up with), cached and answered.

    Subclasses implement L{route}.
    """

    isLeaf = True
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, index: PackageIndex, cache: PageCache) -> None:
        super().__init__()
        self.index = index
        self.cache = cache

    def route(self, request: Request) -> Route | Answer:
        """
        Decide what C{request} asks for, without answering it: a L{Route}, or
        an L{Answer} (a redirect, a 404).
        """
        raise NotImplementedError

    def respond_at_once(self, request: Request) -> bool:
        """
        The fast path: answer a GET or HEAD whose page is cached and current
        in one write, with the response head built once per page, and return
        C{True}; return C{False} (having answered nothing) for anything else.

        On a cached page, twisted.web's resource traversal and per-header
        work cost more than the page lookup itself.  This path skips them;
        conditional and range requests, misses and redirects take the
        ordinary path.
        """
        if request.getHeader(b"if-none-match") is not None or request.getHeader(b"range") is not None:
            return False
        route = self.route(request)
        if not isinstance(route, Route):
            return False
        pending = self.index.pending_changes()
        if pending is not None:
            # The ordinary path waits for it; this one only had to know.
            pending.addErrback(lambda failure: None)  # the index logs it
            return False
        page = self.cache.get(route.key, route.project)
        if page is None:
            return False
        gzipped = accepts_gzip(request)
        body = b"" if request.method == b"HEAD" else page.gzipped() if gzipped else page.body
        request.respond_prepared(page.head(route.content_type, gzipped, self.headers), body)
        return True

    def render_GET(self, request: Request) -> bytes | int:
        route = self.route(request)
        if not isinstance(route, Route):
            return route(request)
        pending = self.index.pending_changes()
        if pending is None:
            page = self.cache.get(route.key, route.project)
            if page is not None:
                return self._serve(request, page, route)
        return answer_later(request, lambda: self._render_later(request, route, pending))

    render_HEAD = render_GET

    def _serve(self, request: Request, page: Page, route: Route) -> bytes | int:
        headers = self.headers + ((b"x-pypi-last-serial", b"%d" % page.serial),)
        return serve_page(request, page, route.content_type, headers)

    async def current(self, route: Route, pending: Deferred[None] | None = None) -> Page | None:
        """
        The route's page as it stands now: from the cache if current, else
        rendered (and cached).
        """
        if pending is not None:
            try:
                await pending
            except Exception:
                # The database is out of reach: a cached page is the best
                # answer there is (the index logged the failure).
                pass
        page = self.cache.get(route.key, route.project)
        if page is None:
            page = await route.render()
            if page is not None:
                self.cache.put(route.key, page, route.project)
        return page

    async def _render_later(self, request: Request, route: Route, pending: Deferred[None] | None) -> bytes | int:
        page = await self.current(route, pending)
        if request.channel is None:
            return NOT_DONE_YET  # the client went away
        return self._serve(request, page, route) if page is not None else not_found(request)


def answer_later(request: Request, work: Callable[[], Awaitable[bytes | int]]) -> int:
    """
    Answer C{request} with the body C{work} gives (or leave it, if C{work}
    answered itself and gave C{NOT_DONE_YET}); a failure is a 500.
    """

    async def run() -> None:
        try:
            body = await work()
        except Exception:
            log.failure("answering {path} failed", path=request.path)
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            body = b"Internal server error\n"
        if body == NOT_DONE_YET or request.channel is None:
            return  # answered already (a 304), or the client went away
        assert isinstance(body, bytes)
        if request.method != b"HEAD":
            request.setHeader(b"content-length", b"%d" % len(body))
            request.write(body)
        elif not request.responseHeaders.hasHeader(b"content-length"):
            request.setHeader(b"content-length", b"%d" % len(body))
        request.finish()

    Deferred.fromCoroutine(run())
    return NOT_DONE_YET  # type: ignore[no-any-return]


def redirect_to(location: bytes) -> Answer:
    return lambda request: redirect(request, location)


def redirect(request: Request, location: bytes) -> bytes:
    request.setResponseCode(301)
    request.setHeader(b"location", location)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"" if request.method == b"HEAD" else b"Moved permanently to " + location + b"\n"


def not_found(request: Request, message: str = "Not Found") -> bytes:
    request.setResponseCode(404)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    body = (message + "\n").encode("utf-8")
    request.setHeader(b"content-length", b"%d" % len(body))
    return b"" if request.method == b"HEAD" else body
