# -*- test-case-name: tests.test_simple -*-
"""
The simple repository API: C{/simple/} and C{/simple/<project>/}.

PEP 503 HTML and PEP 691 JSON are rendered from the same data, with PEP 592
yanking, PEP 658/714 core metadata, PEP 629 and PEP 700 additions, and the
serial (C{X-PyPI-Last-Serial}, C{_last-serial}, C{<!--SERIAL n-->}) that
mirrors follow.  File links are relative, so a mirror serving the same data
serves the same bytes, and the master's PEP 381 signature holds on it.

This is the hottest path of the daemon, so it is a plain twisted.web
resource: a cached page costs a dictionary lookup and a few headers.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.web.server import Request

from ..filestore import relative_path
from ..index import ProjectDetail, ProjectList
from ..names import PROJECT_NAME_RE, normalize, version_key
from ..storage.rows import File
from .cache import Answer, CachedPageResource, Page, Route, not_found, redirect_to

API_VERSION = "1.1"

TEXT_HTML = "text/html"
V1_HTML = "application/vnd.pypi.simple.v1+html"
V1_JSON = "application/vnd.pypi.simple.v1+json"
_LATEST = {
    "application/vnd.pypi.simple.latest+html": V1_HTML,
    "application/vnd.pypi.simple.latest+json": V1_JSON,
}
# In this order, so equal preferences go to HTML, as on PyPI.
_OFFERS = (TEXT_HTML, V1_HTML, V1_JSON)
_CONTENT_TYPES = {
    TEXT_HTML: b"text/html; charset=utf-8",
    V1_HTML: b"application/vnd.pypi.simple.v1+html",
    V1_JSON: b"application/vnd.pypi.simple.v1+json",
}

_COMMON_HEADERS = (
    (b"Cache-Control", b"max-age=0, must-revalidate, public"),
    (b"Access-Control-Allow-Origin", b"*"),
    (b"Access-Control-Expose-Headers", b"X-PyPI-Last-Serial"),
)


def choose_content_type(accept: str | None, format_param: str | None = None) -> str:
    """
    The representation to send, by PEP 691: C{?format=} first, then the
    C{Accept} header with its q-values; HTML when nothing else fits (PyPI
    never answers 406).
    """
    if format_param:
        # A "+" left unescaped in the query string arrives as a space.
        format_param = format_param.strip().replace(" ", "+")
        wanted = _LATEST.get(format_param, format_param)
        return wanted if wanted in _OFFERS else TEXT_HTML
    if not accept:
        return TEXT_HTML
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = part.split(";")
        media = media.strip().lower()
        media = _LATEST.get(media, media)
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media, quality))
    best, best_quality = TEXT_HTML, 0.0
    for offer in _OFFERS:
        kind = offer.split("/")[0]
        specific = [q for media, q in ranges if media == offer]
        partial = [q for media, q in ranges if media == f"{kind}/*"]
        anything = [q for media, q in ranges if media == "*/*"]
        quality = max(specific or partial or anything or [0.0])
        if quality > best_quality:
            best, best_quality = offer, quality
    return best


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(micros: int) -> str:
    """
    PEP 700's upload-time: UTC, microseconds, a trailing Z.
    """
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_url(file: File) -> str:
    return f"../../packages/{relative_path(file.blake2b_256, file.filename)}"


def sorted_files(detail: ProjectDetail) -> list[File]:
    return sorted(detail.files, key=lambda f: (version_key(f.version), f.filename))


def project_html(detail: ProjectDetail) -> bytes:
    """
    The PEP 503 project page.
    """
    name = html.escape(detail.project.normalized_name)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>Links for {name}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {name}</h1>",
    ]
    for file in sorted_files(detail):
        attributes = [f'href="{html.escape(file_url(file))}#sha256={file.sha256}"']
        if file.requires_python:
            attributes.append(f'data-requires-python="{html.escape(file.requires_python)}"')
        if file.yanked:
            attributes.append(f'data-yanked="{html.escape(file.yanked_reason or "")}"')
        if file.metadata_sha256:
            # PEP 714: the new name, and the old one with the same value.
            value = f"sha256={file.metadata_sha256}"
            attributes.append(f'data-core-metadata="{value}" data-dist-info-metadata="{value}"')
        lines.append(f"    <a {' '.join(attributes)}>{html.escape(file.filename)}</a><br />")
    lines += ["  </body>", "</html>", f"<!--SERIAL {detail.project.last_serial}-->", ""]
    return "\n".join(lines).encode("utf-8")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def project_json(detail: ProjectDetail) -> bytes:
    """
    The PEP 691 project page, with PEP 700's versions, sizes and times.
    """
    files = []
    for file in sorted_files(detail):
        entry: dict[str, Any] = {
            "filename": file.filename,
            "url": file_url(file),
            "hashes": {"sha256": file.sha256},
            "requires-python": file.requires_python,
            # PEP 714: only the new key in JSON.
            "core-metadata": {"sha256": file.metadata_sha256} if file.metadata_sha256 else False,
            "size": file.size,
            "upload-time": iso_time(file.upload_time),
            "yanked": (file.yanked_reason or True) if file.yanked else False,
        }
        files.append(entry)
    versions = sorted({release.version for release in detail.releases}, key=version_key)
    return _dumps(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": detail.project.last_serial},
            "name": detail.project.normalized_name,
            "versions": versions,
            "files": files,
        }
    )


def index_html(listing: ProjectList) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    for project in listing.projects:
        lines.append(f'    <a href="{html.escape(project.normalized_name)}/">{html.escape(project.name)}</a><br />')
    lines += ["  </body>", "</html>", f"<!--SERIAL {listing.last_serial}-->", ""]
    return "\n".join(lines).encode("utf-8")


def index_json(listing: ProjectList) -> bytes:
    return _dumps(
        {
            "meta": {"api-version": API_VERSION, "_last-serial": listing.last_serial},
            "projects": [{"name": p.name, "_last-serial": p.last_serial} for p in listing.projects],
        }
    )


def _kind(content_type: str) -> str:
    return "json" if content_type == V1_JSON else "html"


class SimpleResource(CachedPageResource):
    """
    C{/simple/...}: the index page and every project page.
    """

    headers = _COMMON_HEADERS

    def route(self, request: Request) -> Route | Answer:
        segments = request.postpath
        if not segments:
            return redirect_to(b"simple/")
        raw = segments[0].decode("utf-8", "replace")
        if len(segments) > 2 or (len(segments) == 2 and segments[1]):
            return not_found
        format_param = request.args.get(b"format", [b""])[0].decode("ascii", "replace") or None
        accept = request.getHeader(b"accept")
        content_type = choose_content_type(accept.decode("latin-1") if accept else None, format_param)
        kind = _kind(content_type)
        if raw == "":
            return Route(("index", kind), "", _CONTENT_TYPES[content_type], lambda: self._render_index(kind))
        if not PROJECT_NAME_RE.match(raw):
            # No project has such a name; and a redirect built from it could
            # point off the site (/simple/%2F%2Fexample.com).
            return not_found
        project = normalize(raw)
        if len(segments) == 1:
            return redirect_to(project.encode("utf-8") + b"/")
        if project != raw:
            return redirect_to(b"../" + project.encode("utf-8") + b"/")
        return Route(
            (project, kind), project, _CONTENT_TYPES[content_type], lambda: self._render_project(project, kind)
        )

    async def project_page(self, project: str) -> Page | None:
        """
        A project's PEP 503 HTML page, exactly as C{/simple/<project>/}
        serves it (PEP 381 signs these bytes).
        """
        route = Route(
            (project, "html"), project, _CONTENT_TYPES[TEXT_HTML], lambda: self._render_project(project, "html")
        )
        return await self.current(route, self.index.pending_changes())

    async def _render_index(self, kind: str) -> Page:
        listing = await self.index.project_list()
        body = index_json(listing) if kind == "json" else index_html(listing)
        return Page(body, listing.last_serial, f"index-{kind}")

    async def _render_project(self, project: str, kind: str) -> Page | None:
        detail = await self.index.project_detail(project)
        if detail is None:
            return None
        body = project_json(detail) if kind == "json" else project_html(detail)
        return Page(body, detail.project.last_serial, f"{project}-{kind}")
