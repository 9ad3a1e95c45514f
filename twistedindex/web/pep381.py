# -*- test-case-name: tests.test_pep381 -*-
"""
PEP 381's URLs: C{/serverkey}, C{/serversig/<project>}, C{/last-modified},
C{/mirrors} and C{/local-stats/days/<day>.bz2}.

On a master, signatures are made here, over the exact bytes C{/simple/<p>/}
serves.  A mirror serves the signatures it copied from its upstream (each
only while its page is still the one signed), and sends C{/serverkey} on to
its upstream: the key that signs a ring is its master's.
"""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from ..index import PackageIndex
from ..names import PROJECT_NAME_RE, normalize
from ..pep381 import Pep381, last_modified, public_key_pem, stats_file
from ..storage import Transaction
from .cache import answer_later, not_found, redirect
from .simple import SimpleResource

log = Logger()

_DAY = re.compile(r"\A(\d{4}-\d{2}-\d{2})\.bz2\Z")

# /mirrors asks the ring mirrors again when what it knows is older than this.
MIRRORS_MAX_AGE = 10.0


def _text(request: Request, body: str, content_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    request.setHeader(b"content-type", content_type)
    return body.encode("utf-8")


class ServerKeyResource(Resource):
    """
    C{/serverkey}: the master's public key, PEM.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, pep381: Pep381) -> None:
        super().__init__()
        self._index = index
        self._pep381 = pep381

    def render_GET(self, request: Request) -> int:  # noqa: N802  (twisted.web's name)
        async def work() -> bytes:
            upstream = await self._index.mirror_of()
            if upstream is not None:
                # A mirror has no key of its own; its upstream has (or
                # sends this on to) the master's.
                location = f"{upstream}/serverkey".encode()
                request.setResponseCode(302)
                request.setHeader(b"location", location)
                return _text(request, f"The key that signs this mirror's pages is at {upstream}/serverkey\n")
            key = await self._pep381.key()
            request.setHeader(b"content-type", b"application/x-pem-file")
            return public_key_pem(key)

        return answer_later(request, work)

    render_HEAD = render_GET


class ServerSigResource(Resource):
    """
    C{/serversig/<project>}: the signature of C{/simple/<project>/}, with the
    serial of the page it signs in C{X-PyPI-Last-Serial}.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, pep381: Pep381, simple: SimpleResource) -> None:
        super().__init__()
        self._index = index
        self._pep381 = pep381
        self._simple = simple

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if segments and segments[-1] == "":
            segments.pop()
        if len(segments) != 1 or not PROJECT_NAME_RE.match(segments[0]):
            return not_found(request)
        project = normalize(segments[0])
        if project != segments[0]:
            return redirect(request, project.encode())
        return answer_later(request, lambda: self._signature(request, project))

    render_HEAD = render_GET

    async def _signature(self, request: Request, project: str) -> bytes:
        page = await self._simple.project_page(project)
        if page is None:
            return not_found(request)
        if await self._index.mirror_of() is not None:
            copied = await self._index.store.read(_serversig, project)
            if copied is None or copied[0] != page.serial:
                return not_found(request, "No signature of this page from the upstream (yet).")
            signature = copied[1]
        else:
            signature = await self._pep381.signature(project, page.serial, page.body)
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"x-pypi-last-serial", b"%d" % page.serial)
        return signature


async def _serversig(tx: Transaction, project: str) -> tuple[int, bytes] | None:
    return await tx.serversig(project)


class LastModifiedResource(Resource):
    """
    C{/last-modified}: a mirror's last complete sync, or a master's last
    change, as C{%Y%m%dT%H:%M:%S} UTC.
    """

    isLeaf = True

    def __init__(self, index: PackageIndex) -> None:
        super().__init__()
        self._index = index

    def render_GET(self, request: Request) -> int:  # noqa: N802
        async def work() -> bytes:
            moment = await self._index.last_modified()
            if moment is None:
                request.setResponseCode(404)
                return _text(request, "This mirror has not completed a sync yet.\n")
            request.setHeader(b"content-type", b"text/plain; charset=us-ascii")
            request.setHeader(b"cache-control", b"no-cache")
            return last_modified(moment)

        return answer_later(request, work)

    render_HEAD = render_GET


class MirrorsResource(Resource):
    """
    C{/mirrors}: this index's ring mirrors and how far behind each one is.
    """

    isLeaf = True

    def __init__(self, pep381: Pep381) -> None:
        super().__init__()
        self._pep381 = pep381

    def render_GET(self, request: Request) -> int:  # noqa: N802
        return answer_later(request, lambda: self._page(request))

    render_HEAD = render_GET

    async def _page(self, request: Request) -> bytes:
        states = await self._pep381.mirror_ages(max_age=MIRRORS_MAX_AGE)
        now = datetime.now(tz=UTC)
        rows = []
        for url in self._pep381.ring:
            status = states.get(url)
            if status is None:
                state, age = "not checked yet", ""
            elif status.last_modified is None:
                state, age = f"unreachable ({status.error})", ""
            else:
                state = status.last_modified.strftime("%Y-%m-%d %H:%M:%S UTC")
                age = _age((now - status.last_modified).total_seconds())
            rows.append(
                f'    <tr><td><a href="{html.escape(url)}/">{html.escape(url)}</a></td>'
                f"<td>{html.escape(state)}</td><td>{html.escape(age)}</td></tr>"
            )
        body = "\n".join(
            [
                "<!DOCTYPE html>",
                "<html>",
                "  <head><title>Mirrors</title></head>",
                "  <body>",
                "  <h1>Mirrors</h1>",
                "  <p>These indexes mirror this one (PEP 381). Each one's age is the time since its last "
                "complete sync, from its <code>/last-modified</code>.</p>",
                "  <table>",
                "    <tr><th>Mirror</th><th>Last synced</th><th>Age</th></tr>",
                *rows,
                "  </table>",
                "  </body>",
                "</html>",
                "",
            ]
        )
        return _text(request, body, b"text/html; charset=utf-8")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


class LocalStatsResource(Resource):
    """
    C{/local-stats/}, C{/local-stats/days/} (listings) and
    C{/local-stats/days/<YYYY-MM-DD>.bz2} (PEP 381 statistics files).
    """

    isLeaf = True

    def __init__(self, index: PackageIndex, pep381: Pep381) -> None:
        super().__init__()
        self._index = index
        self._pep381 = pep381

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if not segments:
            return redirect(request, b"local-stats/")
        if segments == [""]:
            return _listing(request, "local-stats", ["days/"])
        if segments == ["days"]:
            return redirect(request, b"days/")
        if segments[0] != "days" or len(segments) != 2:
            return not_found(request)
        if segments[1] == "":
            return answer_later(request, lambda: self._days(request))
        match = _DAY.match(segments[1])
        if match is None:
            return not_found(request)
        return answer_later(request, lambda: self._day(request, match.group(1)))

    render_HEAD = render_GET

    async def _days(self, request: Request) -> bytes:
        await self._pep381.flush()
        days = await self._index.store.read(_download_days)
        return _listing(request, "local-stats/days", [f"{day}.bz2" for day in days])

    async def _day(self, request: Request, day: str) -> bytes:
        await self._pep381.flush()
        rows = await self._index.store.read(_downloads_on, day)
        if not rows:
            return not_found(request)
        request.setHeader(b"content-type", b"application/x-bzip2")
        if day != time.strftime("%Y-%m-%d", time.gmtime()):
            request.setHeader(b"cache-control", b"public, max-age=86400")
        return stats_file(rows)


def _listing(request: Request, title: str, names: list[str]) -> bytes:
    links = [f'    <a href="{html.escape(name)}">{html.escape(name)}</a><br />' for name in names]
    body = "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            f"  <head><title>Index of /{html.escape(title)}/</title></head>",
            "  <body>",
            f"  <h1>Index of /{html.escape(title)}/</h1>",
            *links,
            "  </body>",
            "</html>",
            "",
        ]
    )
    return _text(request, body, b"text/html; charset=utf-8")


async def _download_days(tx: Transaction) -> list[str]:
    return await tx.download_days()


async def _downloads_on(tx: Transaction, day: str) -> list[tuple[str, str, str, int]]:
    return await tx.downloads_on(day)
