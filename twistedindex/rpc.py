# -*- test-case-name: tests.test_rpc -*-
"""
PyPI's XML-RPC API, at C{/RPC2}, and at C{/pypi} for C{text/xml} requests.

Every method of PyPI's legacy API is here, including those PyPI has since
turned off, with the return shapes PyPI gave them: the listing and query
methods, C{search} and C{browse}, and the journal methods mirrors follow
(C{changelog_since_serial} and C{changelog} return at most 50,000 rows a call,
as on PyPI; callers loop).

Faults use PyPI's codes: -32601 for an unknown method, -32602 for bad
parameters, -32500 for anything else.  Nothing internal leaks: domain errors
become their message, other errors a bare "application error" (logged here).
Text XML cannot carry is removed from every string sent.
"""

from __future__ import annotations

import functools
import re
import xmlrpc.client as xmlrpc_client
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from trove_classifiers import all_classifiers
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import xmlrpc
from twisted.web.server import Request

from .config import Settings
from .errors import CheeseshopError
from .filestore import relative_path
from .index import PackageIndex
from .names import find_release, latest_release, version_key
from .storage.search import FIELDS, Query, Term

log = Logger()

CHANGELOG_LIMIT = 50_000
SEARCH_LIMIT = 100

NOT_FOUND = -32601
INVALID_PARAMS = -32602
APPLICATION_ERROR = -32500

# Characters XML 1.0 cannot carry at all.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_REQUIRED = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOWNLOADS = {"last_day": -1, "last_week": -1, "last_month": -1}


def serialize(result: Any) -> bytes:
    """
    An XML-RPC answer, with the characters XML cannot carry taken out.

    They are taken out of the finished document in one pass: the markup
    xmlrpc.client writes never holds them, so only the strings lose them.
    """
    payload = result if isinstance(result, xmlrpc.Fault) else (result,)
    text = xmlrpc_client.dumps(payload, methodresponse=True, allow_none=True)
    return _ILLEGAL_XML.sub("", text).encode("utf-8")


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "integer", bool: "boolean", list: "array", dict: "struct"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def parameters(
    *spec: tuple[str, type | tuple[type, ...], Any], with_request: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Check a method's arguments against C{(name, type, default)} triples
    before it runs, and answer a bad call with PyPI's -32602 fault.

    :param with_request: the method takes the request first (Twisted's
        C{withRequest}), which is passed on as it is.
    """

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def checked(self: IndexXMLRPC, *args: Any) -> Any:
            passed: tuple[Any, ...] = ()
            if with_request:
                passed, args = args[:1], args[1:]
            if len(args) > len(spec):
                raise xmlrpc.Fault(
                    INVALID_PARAMS, f"client error; takes at most {len(spec)} arguments, got {len(args)}"
                )
            values = []
            for position, (name, kind, default) in enumerate(spec):
                if position < len(args):
                    value = args[position]
                    # bool is an int in Python, not in XML-RPC.
                    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
                        raise xmlrpc.Fault(
                            INVALID_PARAMS, f"client error; {name}: Input should be a valid {_type_name(kind)}"
                        )
                elif default is _REQUIRED:
                    raise xmlrpc.Fault(INVALID_PARAMS, f"client error; {name}: Field required")
                else:
                    value = default
                values.append(value)
            return method(self, *passed, *values)

        checked.withRequest = with_request  # type: ignore[attr-defined]
        return checked

    return decorate


def _time(micros: int) -> datetime:
    # xmlrpc.client writes naive datetimes; these are UTC.
    return (_EPOCH + timedelta(microseconds=micros)).replace(tzinfo=None)


class IndexXMLRPC(xmlrpc.XMLRPC):
    """
    The XML-RPC resource.
    """

    def __init__(self, index: PackageIndex, settings: Settings) -> None:
        super().__init__(allowNone=True, useDateTime=True)
        self.index = index
        self._base = settings.base_url
        xmlrpc.addIntrospection(self)

    # Plumbing

    def lookupProcedure(self, procedurePath: str) -> Any:  # noqa: N802, N803 (Twisted's names)
        try:
            return super().lookupProcedure(procedurePath)
        except xmlrpc.NoSuchFunction:
            raise xmlrpc.Fault(NOT_FOUND, "server error; requested method not found") from None

    def _ebRender(self, failure: Failure) -> xmlrpc.Fault:  # noqa: N802
        if isinstance(failure.value, xmlrpc.Fault):
            return failure.value
        if isinstance(failure.value, CheeseshopError):
            return xmlrpc.Fault(APPLICATION_ERROR, f"{type(failure.value).__name__}: {failure.value.message}")
        log.failure("XML-RPC call failed", failure)
        return xmlrpc.Fault(APPLICATION_ERROR, "application error")

    def _cbRender(self, result: Any, request: Request, responseFailed: Any = None) -> None:  # noqa: N802, N803
        """
        Serialize the answer on a worker thread (a changelog page is 13 MB of
        XML, half a second of pure Python) and send it.
        """
        if responseFailed:
            return

        def send(content: bytes) -> None:
            if responseFailed or request.channel is None:
                return  # the client went away meanwhile
            request.setHeader(b"content-length", b"%d" % len(content))
            request.write(content)
            request.finish()

        def failed(failure: Failure) -> None:
            log.failure("serializing an XML-RPC answer failed", failure)
            send(serialize(xmlrpc.Fault(APPLICATION_ERROR, "application error")))

        self.index.blocking(serialize, result).addCallbacks(send, failed)

    def _urls(self, request: Request) -> str:
        """
        The index's own URL, for the few absolute URLs PyPI's answers hold.
        """
        if self._base:
            return self._base
        host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
        return f"{'https' if request.isSecure() else 'http'}://{host}"

    # Listing

    @parameters()
    async def xmlrpc_list_packages(self) -> list[str]:
        """
        Every project's name.
        """
        return [p.name for p in (await self.index.project_list()).projects]

    @parameters()
    async def xmlrpc_list_packages_with_serial(self) -> dict[str, int]:
        """
        Every project's name and last serial.
        """
        return {p.name: p.last_serial for p in (await self.index.project_list()).projects}

    @parameters(("package_name", str, _REQUIRED), ("show_hidden", bool, False))
    async def xmlrpc_package_releases(self, package_name: str, show_hidden: bool) -> list[str]:
        """
        The latest version of a project, or every version (newest first)
        with show_hidden, as Warehouse answered.
        """
        detail = await self.index.project_detail(package_name)
        if detail is None or not detail.releases:
            return []
        if not show_hidden:
            return [latest_release(detail.releases).version]
        return [r.version for r in sorted(detail.releases, key=lambda r: version_key(r.version), reverse=True)]

    @parameters(("package_name", str, _REQUIRED))
    async def xmlrpc_package_roles(self, package_name: str) -> list[list[str]]:
        """
        C{[role, user]} for each maintainer of a project, Owners first.
        """
        detail = await self.index.project_detail(package_name)
        return [[role, user] for role, user in detail.roles] if detail else []

    @parameters(("user", str, _REQUIRED))
    async def xmlrpc_user_packages(self, user: str) -> list[list[str]]:
        """
        C{[role, project]} for each project of a user.
        """
        return [[role, project] for role, project in await self.index.user_projects(user)]

    # Releases

    @parameters(("package_name", str, _REQUIRED), ("version", str, _REQUIRED), with_request=True)
    async def xmlrpc_release_urls(self, request: Request, package_name: str, version: str) -> list[dict[str, Any]]:
        """
        The files of a release.
        """
        detail = await self.index.project_detail(package_name)
        release = find_release(detail.releases, version) if detail else None
        if detail is None or release is None:
            return []
        base = self._urls(request)
        files = sorted((f for f in detail.files if f.release_id == release.id), key=lambda f: f.filename)
        answer = []
        for file in files:
            path = relative_path(file.blake2b_256, file.filename)
            upload_time = _time(file.upload_time)
            answer.append(
                {
                    "filename": file.filename,
                    "packagetype": file.packagetype,
                    "python_version": file.python_version,
                    "size": file.size,
                    "md5_digest": file.md5,
                    "sha256_digest": file.sha256,
                    "digests": {"md5": file.md5, "sha256": file.sha256},
                    "has_sig": False,
                    "upload_time": upload_time,
                    "upload_time_iso_8601": upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "comment_text": file.comment_text,
                    "downloads": -1,
                    "path": path,
                    "url": f"{base}/packages/{path}",
                    "yanked": file.yanked,
                    "yanked_reason": file.yanked_reason,
                }
            )
        return answer

    @parameters(("package_name", str, _REQUIRED), ("version", str, _REQUIRED), with_request=True)
    async def xmlrpc_release_data(self, request: Request, package_name: str, version: str) -> dict[str, Any]:
        """
        A release's metadata, or an empty struct.
        """
        detail = await self.index.project_detail(package_name)
        release = find_release(detail.releases, version) if detail else None
        if detail is None or release is None:
            return {}
        metadata = release.metadata
        ordering = sorted(detail.releases, key=lambda r: version_key(r.version)).index(release)
        project_url = f"{self._urls(request)}/project/{detail.project.name}/"
        keywords = metadata.get("keywords")
        return {
            "name": detail.project.name,
            "version": release.version,
            "stable_version": None,
            "bugtrack_url": None,
            "package_url": project_url,
            "release_url": f"{project_url}{release.version}/",
            "docs_url": None,
            "home_page": metadata.get("home_page"),
            "download_url": metadata.get("download_url"),
            "project_url": [f"{k}, {v}" for k, v in (metadata.get("project_urls") or {}).items()],
            "author": metadata.get("author"),
            "author_email": metadata.get("author_email"),
            "maintainer": metadata.get("maintainer"),
            "maintainer_email": metadata.get("maintainer_email"),
            "summary": release.summary,
            "description": release.description,
            "license": metadata.get("license") or metadata.get("license_expression"),
            "keywords": ", ".join(keywords) if isinstance(keywords, list) else keywords,
            "platform": ", ".join(metadata.get("platforms") or []) or None,
            "classifiers": metadata.get("classifiers", []),
            "requires": metadata.get("requires", []),
            "requires_dist": metadata.get("requires_dist", []),
            "provides": metadata.get("provides", []),
            "provides_dist": metadata.get("provides_dist", []),
            "obsoletes": metadata.get("obsoletes", []),
            "obsoletes_dist": metadata.get("obsoletes_dist", []),
            "requires_python": release.requires_python,
            "requires_external": metadata.get("requires_external", []),
            "yanked": release.yanked,
            "yanked_reason": release.yanked_reason,
            "_pypi_ordering": ordering,
            "downloads": _DOWNLOADS,
            "cheesecake_code_kwalitee_id": None,
            "cheesecake_documentation_id": None,
            "cheesecake_installability_id": None,
        }

    # PyPI's older names for the two methods above.
    xmlrpc_package_urls = xmlrpc_release_urls
    xmlrpc_package_data = xmlrpc_release_data

    # Search

    @parameters(("spec", dict, _REQUIRED), ("operator", str, "and"))
    async def xmlrpc_search(self, spec: dict[str, Any], operator: str) -> list[dict[str, Any]]:
        """
        Projects whose fields match C{spec} (C{{field: text or [texts]}}),
        all of them ("and") or any ("or"), best first, at most 100.
        """
        if operator not in ("and", "or"):
            raise xmlrpc.Fault(APPLICATION_ERROR, "ValueError: Invalid operator, must be one of 'and' or 'or'.")
        terms = []
        for field, value in spec.items():
            if field not in FIELDS:
                raise xmlrpc.Fault(INVALID_PARAMS, f"client error; spec: unknown field {field!r}")
            values = value if isinstance(value, list) else [value]
            for text in values:
                if not isinstance(text, str):
                    raise xmlrpc.Fault(INVALID_PARAMS, f"client error; spec.{field}: Input should be a valid string")
                terms.append(Term(field, text))
        if not terms:
            return []
        hits = await self.index.search(Query(tuple(terms), operator), SEARCH_LIMIT)
        return [
            {"name": hit.name, "summary": hit.summary, "version": hit.version, "_pypi_ordering": hit.ordering}
            for hit in hits
        ]

    @parameters(("classifiers", list, _REQUIRED))
    async def xmlrpc_browse(self, classifiers: list[Any]) -> list[list[str]]:
        """
        C{[project, version]} of the releases carrying every classifier.
        """
        for classifier in classifiers:
            if not isinstance(classifier, str):
                raise xmlrpc.Fault(INVALID_PARAMS, "client error; classifiers: Input should be a valid string")
            if classifier not in all_classifiers:
                raise xmlrpc.Fault(APPLICATION_ERROR, f'ValueError: Unknown category "{classifier}"')
        return [[name, version] for name, version in await self.index.browse(classifiers)]

    # The journal

    @parameters()
    async def xmlrpc_changelog_last_serial(self) -> int:
        """
        The newest journal serial.
        """
        return await self.index.last_serial()

    @parameters(("since_serial", int, _REQUIRED))
    async def xmlrpc_changelog_since_serial(self, since_serial: int) -> list[tuple[Any, ...]]:
        """
        C{[name, version, timestamp, action, serial]} of the entries after a
        serial, oldest first, at most 50,000.
        """
        return await self.index.changelog_since_serial(since_serial, CHANGELOG_LIMIT)

    @parameters(("since", int, _REQUIRED), ("with_ids", bool, False))
    async def xmlrpc_changelog(self, since: int, with_ids: bool) -> list[list[Any]]:
        """
        C{[name, version, timestamp, action]} (and the serial with with_ids)
        of the entries after a Unix time, at most 50,000.
        """
        entries = await self.index.journal_since_time(since, CHANGELOG_LIMIT)
        rows = [[e.name, e.version, e.timestamp // 1_000_000, e.action] for e in entries]
        if with_ids:
            for row, entry in zip(rows, entries, strict=True):
                row.append(entry.serial)
        return rows

    @parameters(("since", int, _REQUIRED))
    async def xmlrpc_updated_releases(self, since: int) -> list[list[str]]:
        """
        C{[project, version]} of the releases added after a Unix time,
        newest first.
        """
        return [[name, version] for name, version in await self.index.releases_added_since(since)]

    @parameters(("since", int, _REQUIRED))
    async def xmlrpc_changed_packages(self, since: int) -> list[str]:
        """
        The projects changed after a Unix time.
        """
        return await self.index.names_changed_since(since)


def wants_xmlrpc(request: Request) -> bool:
    """
    Whether a request to C{/pypi} is an XML-RPC call (PyPI's rule: a POST of
    C{text/xml}).
    """
    content_type = request.getHeader(b"content-type") or b""
    return request.method == b"POST" and content_type.split(b";")[0].strip().lower() == b"text/xml"
