# -*- test-case-name: tests.test_mirror_snapshot -*-
"""
What one upstream project looks like, read from the upstream's pages.

A L{ProjectSnapshot} is parsed from a JSON API page (C{/pypi/<p>/json}, the
Warehouse way) or from a simple page (PEP 691 JSON or PEP 503 HTML), and says
everything the replica needs to bring the local project to the same state.
Parsing checks shapes and values: an upstream that sends nonsense fails
that project, it does not put nonsense into the index.
"""

from __future__ import annotations

import base64
import html.parser
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin

from attrs import field, frozen
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from ..filestore import relative_path
from ..names import PROJECT_NAME_RE, normalize
from .client import UpstreamError

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")

# The JSON API's info fields kept in a release's metadata record, by the
# record's key (see twistedindex.web.jsonapi, which writes them).
_INFO_TO_RECORD = {
    "author": "author",
    "author_email": "author_email",
    "maintainer": "maintainer",
    "maintainer_email": "maintainer_email",
    "license": "license",
    "license_expression": "license_expression",
    "license_files": "license_files",
    "home_page": "home_page",
    "download_url": "download_url",
    "classifiers": "classifiers",
    "keywords": "keywords",
    "requires_dist": "requires_dist",
    "provides_extra": "provides_extra",
    "project_urls": "project_urls",
    "dynamic": "dynamic",
}


class BadSnapshot(UpstreamError):
    """
    An upstream page that does not say what a page of its kind must.
    """


@frozen
class FileSnapshot:
    """
    One upstream file.

    :ivar url: absolute, with no fragment.
    :ivar core_metadata: the SHA-256 of its PEP 658 metadata file when the
        upstream serves one, C{False} when it says it does not, C{None} when
        its page does not say (then the wheel's own METADATA is used).
    :ivar content: the file's bytes, when they came inside the page.
    :ivar metadata_content: its metadata file's bytes, likewise.
    """

    filename: str
    version: str
    url: str
    sha256: str
    size: int | None
    packagetype: str
    python_version: str
    requires_python: str | None = None
    upload_time: int | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    md5: str | None = None
    blake2b_256: str | None = None
    comment_text: str | None = None
    core_metadata: str | bool | None = None
    uploaded_by: str | None = None
    content: bytes | None = field(default=None, repr=False)
    metadata_content: bytes | None = field(default=None, repr=False)


@frozen
class ReleaseSnapshot:
    """
    One upstream release.  C{metadata} is C{None} when the page read did
    not describe the release (the JSON API describes one release per page).
    """

    version: str
    yanked: bool = False
    yanked_reason: str | None = None
    metadata: ReleaseMetadata | None = None
    created: int | None = None


@frozen
class ReleaseMetadata:
    """
    A release's description, in the columns the index keeps.
    """

    summary: str | None
    description: str | None
    description_content_type: str | None
    requires_python: str | None
    record: dict[str, Any] = field(factory=dict)

    def values(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "description": self.description,
            "description_content_type": self.description_content_type,
            "requires_python": self.requires_python,
            "metadata": self.record,
        }


@frozen
class ProjectSnapshot:
    """
    One upstream project as a page showed it.

    :ivar serial: the page's C{X-PyPI-Last-Serial} (the JSON API's
        C{last_serial}), when the upstream has serials.
    :ivar roles: C{(role, user)} pairs, or C{None} when the page does not
        list them.
    :ivar signature: the upstream's PEP 381 signature of the project's
        simple page at C{serial}, when the page carries it.
    """

    name: str
    serial: int | None
    releases: dict[str, ReleaseSnapshot]
    files: tuple[FileSnapshot, ...]
    roles: tuple[tuple[str, str], ...] | None = None
    signature: bytes | None = None

    @property
    def normalized_name(self) -> str:
        return normalize(self.name)


def _json(body: bytes, page_url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise BadSnapshot(f"{page_url}: not JSON") from None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadSnapshot(f"{what} is not a string")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _time(value: Any) -> int | None:
    """
    An ISO 8601 time (PEP 700, or the JSON API's upload_time_iso_8601) in
    microseconds since the epoch.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _kind_of(filename: str) -> tuple[str, str, str]:
    """
    A distribution filename's C{(version, packagetype, python_version)}.
    """
    try:
        if filename.endswith(".whl"):
            _, version, _, tags = parse_wheel_filename(filename)
            pythons = sorted({tag.interpreter for tag in tags})
            return str(version), "bdist_wheel", ".".join(pythons)
        _, version = parse_sdist_filename(filename)
        return str(version), "sdist", "source"
    except (InvalidWheelFilename, InvalidSdistFilename):
        raise BadSnapshot(f"{filename!r} is not a wheel or sdist filename") from None


def _check_filename(filename: str) -> str:
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise BadSnapshot(f"{filename!r} is not a file name")
    return filename


def _sha256(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise BadSnapshot(f"{what} has no sha256 digest")
    return value


def _core_metadata(value: Any) -> str | bool | None:
    """
    PEP 691/714 C{core-metadata} (or the older C{dist-info-metadata}).
    """
    if value is None:
        return None
    if value is False:
        return False
    if value is True:
        return None  # served, but its digest not given
    if isinstance(value, dict) and isinstance(value.get("sha256"), str) and _HEX64.match(value["sha256"]):
        return str(value["sha256"])
    return None


def _yanked(value: Any) -> tuple[bool, str | None]:
    if isinstance(value, str):
        return True, value
    return bool(value), None


# The JSON API (Warehouse and twistedindex)


def release_metadata(info: dict[str, Any]) -> ReleaseMetadata:
    """
    A release's description from the JSON API's C{info}.
    """
    record: dict[str, Any] = {}
    for key, name in _INFO_TO_RECORD.items():
        value = info.get(key)
        if value is not None and value != [] and value != {} and value != "":
            record[name] = value
    platform = info.get("platform")
    if isinstance(platform, str) and platform:
        record["platforms"] = [platform]
    return ReleaseMetadata(
        _optional_text(info.get("summary"), "info.summary"),
        _optional_text(info.get("description"), "info.description") or None,
        _optional_text(info.get("description_content_type"), "info.description_content_type"),
        _optional_text(info.get("requires_python"), "info.requires_python") or None,
        record,
    )


def from_json_api(body: bytes, page_url: str, serial: int | None) -> ProjectSnapshot:
    """
    A project from its C{/pypi/<project>/json} page.  The page describes its
    latest release only; the others come back without metadata.
    """
    document = _json(body, page_url)
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        raise BadSnapshot(f"{page_url}: no info")
    info = document["info"]
    name = _text(info.get("name"), "info.name")
    if not PROJECT_NAME_RE.match(name):
        raise BadSnapshot(f"{page_url}: {name!r} is not a project name")
    listed = document.get("releases")
    if not isinstance(listed, dict):
        raise BadSnapshot(f"{page_url}: no releases (only a project's root page lists them all)")
    page_serial = document.get("last_serial")
    if serial is None and isinstance(page_serial, int):
        serial = page_serial
    described = info.get("version")
    releases: dict[str, ReleaseSnapshot] = {}
    files: list[FileSnapshot] = []
    for version, entries in listed.items():
        if not isinstance(entries, list):
            raise BadSnapshot(f"{page_url}: release {version!r} is not a list")
        yanked_flags = []
        for entry in entries:
            file = _json_api_file(entry, version, page_url)
            files.append(file)
            yanked_flags.append((file.yanked, file.yanked_reason))
        if version == described:
            yanked, reason = bool(info.get("yanked")), _optional_text(info.get("yanked_reason"), "info.yanked_reason")
            metadata: ReleaseMetadata | None = release_metadata(info)
        else:
            # A release is yanked with all its files.
            yanked, reason = yanked_flags[0] if yanked_flags else (False, None)
            metadata = None
        releases[version] = ReleaseSnapshot(version, yanked, reason if yanked else None, metadata)
    roles = None
    ownership = document.get("ownership")
    if isinstance(ownership, dict) and isinstance(ownership.get("roles"), list):
        roles = tuple(
            (_text(r.get("role"), "ownership.role"), _text(r.get("user"), "ownership.user"))
            for r in ownership["roles"]
            if isinstance(r, dict)
        )
    _check_unique(files, page_url)
    return ProjectSnapshot(name, serial, releases, tuple(files), roles)


def release_from_json_api(body: bytes, page_url: str) -> ReleaseSnapshot:
    """
    One release from its C{/pypi/<project>/<version>/json} page.
    """
    document = _json(body, page_url)
    if not isinstance(document, dict) or not isinstance(document.get("info"), dict):
        raise BadSnapshot(f"{page_url}: no info")
    info = document["info"]
    version = _text(info.get("version"), "info.version")
    yanked = bool(info.get("yanked"))
    reason = _optional_text(info.get("yanked_reason"), "info.yanked_reason") if yanked else None
    return ReleaseSnapshot(version, yanked, reason, release_metadata(info))


def _json_api_file(entry: Any, version: str, page_url: str) -> FileSnapshot:
    if not isinstance(entry, dict):
        raise BadSnapshot(f"{page_url}: a file of {version!r} is not an object")
    filename = _check_filename(_text(entry.get("filename"), "filename"))
    digests = entry.get("digests") if isinstance(entry.get("digests"), dict) else {}
    sha256 = _sha256(digests.get("sha256"), filename)
    md5 = digests.get("md5") if isinstance(digests.get("md5"), str) and _HEX32.match(digests["md5"]) else None
    blake2b_256 = digests.get("blake2b_256")
    if not (isinstance(blake2b_256, str) and _HEX64.match(blake2b_256)):
        blake2b_256 = None
    size = entry.get("size")
    if not isinstance(size, int) or size < 0:
        raise BadSnapshot(f"{page_url}: {filename} has no size")
    url, _ = urldefrag(urljoin(page_url, _text(entry.get("url"), f"{filename} url")))
    yanked, reason = bool(entry.get("yanked")), _optional_text(entry.get("yanked_reason"), "yanked_reason")
    _, packagetype, python_version = _kind_of(filename)
    return FileSnapshot(
        filename=filename,
        version=version,
        url=url,
        sha256=sha256,
        size=size,
        packagetype=_text(entry.get("packagetype") or packagetype, "packagetype"),
        python_version=_text(entry.get("python_version") or python_version, "python_version"),
        requires_python=_optional_text(entry.get("requires_python"), "requires_python") or None,
        upload_time=_time(entry.get("upload_time_iso_8601")),
        yanked=yanked,
        yanked_reason=reason if yanked else None,
        md5=md5,
        blake2b_256=blake2b_256,
        comment_text=_optional_text(entry.get("comment_text"), "comment_text"),
        core_metadata=_core_metadata(entry.get("core-metadata", entry.get("data-dist-info-metadata"))),
    )


def _check_unique(files: list[FileSnapshot], page_url: str) -> None:
    seen: set[str] = set()
    for file in files:
        if file.filename in seen:
            raise BadSnapshot(f"{page_url}: {file.filename} is listed twice")
        seen.add(file.filename)


# A twistedindex upstream's /+replica/?project=...


def replica_documents(body: bytes, page_url: str) -> dict[str, Any]:
    """
    The documents of a twistedindex upstream's C{/+replica/} answer, by
    normalized project name: each one for L{from_replica}, or C{None} for a
    project the upstream does not have.
    """
    answer = _json(body, page_url)
    documents = answer.get("projects") if isinstance(answer, dict) else None
    if not isinstance(documents, dict):
        raise BadSnapshot(f"{page_url}: no projects")
    return documents


def from_replica(document: Any, page_url: str, base_url: str) -> ProjectSnapshot:
    """
    A project from a twistedindex upstream's C{/+replica/} document: every
    release described, every file with all its digests, and the serial.
    """
    if not isinstance(document, dict):
        raise BadSnapshot(f"{page_url}: not an object")
    name = _text(document.get("name"), "name")
    if not PROJECT_NAME_RE.match(name):
        raise BadSnapshot(f"{page_url}: {name!r} is not a project name")
    serial = document.get("serial")
    if not isinstance(serial, int):
        raise BadSnapshot(f"{page_url}: {name} has no serial")
    listed = document.get("releases")
    if not isinstance(listed, dict):
        raise BadSnapshot(f"{page_url}: no releases")
    releases: dict[str, ReleaseSnapshot] = {}
    for version, entry in listed.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict):
            raise BadSnapshot(f"{page_url}: release {version!r} is malformed")
        yanked = bool(entry.get("yanked"))
        created = entry.get("created")
        releases[version] = ReleaseSnapshot(
            version,
            yanked,
            _optional_text(entry.get("yanked_reason"), "yanked_reason") if yanked else None,
            ReleaseMetadata(
                _optional_text(entry.get("summary"), "summary"),
                _optional_text(entry.get("description"), "description"),
                _optional_text(entry.get("description_content_type"), "description_content_type"),
                _optional_text(entry.get("requires_python"), "requires_python"),
                entry["metadata"],
            ),
            created if isinstance(created, int) else None,
        )
    files = []
    for entry in document.get("files") or []:
        if not isinstance(entry, dict):
            raise BadSnapshot(f"{page_url}: a file is not an object")
        filename = _check_filename(_text(entry.get("filename"), "filename"))
        version = _text(entry.get("version"), f"{filename} version")
        if version not in releases:
            raise BadSnapshot(f"{page_url}: {filename} belongs to no release")
        blake2b_256 = _sha256(entry.get("blake2b_256"), f"{filename} blake2b_256")
        size = entry.get("size")
        if not isinstance(size, int) or size < 0:
            raise BadSnapshot(f"{page_url}: {filename} has no size")
        yanked = bool(entry.get("yanked"))
        metadata_sha256 = entry.get("metadata_sha256")
        files.append(
            FileSnapshot(
                filename=filename,
                version=version,
                url=f"{base_url}/packages/{relative_path(blake2b_256, filename)}",
                sha256=_sha256(entry.get("sha256"), filename),
                size=size,
                packagetype=_text(entry.get("packagetype"), "packagetype"),
                python_version=_text(entry.get("python_version"), "python_version"),
                requires_python=_optional_text(entry.get("requires_python"), "requires_python"),
                upload_time=entry["upload_time"] if isinstance(entry.get("upload_time"), int) else None,
                yanked=yanked,
                yanked_reason=_optional_text(entry.get("yanked_reason"), "yanked_reason") if yanked else None,
                md5=entry["md5"] if isinstance(entry.get("md5"), str) and _HEX32.match(entry["md5"]) else None,
                blake2b_256=blake2b_256,
                comment_text=_optional_text(entry.get("comment_text"), "comment_text"),
                core_metadata=_sha256(metadata_sha256, f"{filename} metadata") if metadata_sha256 else False,
                uploaded_by=_optional_text(entry.get("uploaded_by"), "uploaded_by"),
                content=_content(entry.get("content"), filename),
                metadata_content=_content(entry.get("metadata_content"), filename + " metadata"),
            )
        )
    _check_unique(files, page_url)
    roles = tuple(
        (_text(pair[0], "role"), _text(pair[1], "user"))
        for pair in document.get("roles") or []
        if isinstance(pair, list) and len(pair) == 2
    )
    signature = document.get("serversig")
    try:
        signed = base64.b64decode(signature, validate=True) if isinstance(signature, str) else None
    except ValueError:
        raise BadSnapshot(f"{page_url}: the signature is not base64") from None
    return ProjectSnapshot(name, serial, releases, tuple(files), roles, signed)


def _content(value: Any, filename: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(_text(value, f"{filename} content"), validate=True)
    except ValueError:
        raise BadSnapshot(f"{filename}: its content is not base64") from None


# Simple pages (PEP 503 HTML, PEP 691 JSON)

SIMPLE_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


def is_json(content_type: str) -> bool:
    return content_type in ("application/vnd.pypi.simple.v1+json", "application/json")


def listing_from_simple(body: bytes, page_url: str, content_type: str) -> dict[str, int | None]:
    """
    The projects of a simple index page: C{{name: _last-serial or None}}.
    """
    projects: dict[str, int | None] = {}
    if is_json(content_type):
        document = _json(body, page_url)
        entries = document.get("projects") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise BadSnapshot(f"{page_url}: no projects")
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                serial = entry.get("_last-serial")
                projects[entry["name"]] = serial if isinstance(serial, int) else None
        return projects
    for _, text in _links(body):
        if text and PROJECT_NAME_RE.match(text.strip()):
            projects[text.strip()] = None
    return projects


def from_simple(body: bytes, page_url: str, content_type: str, name: str) -> ProjectSnapshot:
    """
    A project from its simple page.  Simple pages describe files only: the
    releases come back without metadata.
    """
    if is_json(content_type):
        document = _json(body, page_url)
        entries = document.get("files") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise BadSnapshot(f"{page_url}: no files")
        files = [_simple_json_file(entry, page_url) for entry in entries]
        versions = document.get("versions")
        name = document.get("name") if isinstance(document.get("name"), str) else name
    else:
        files = [_simple_html_file(href, attributes, page_url) for href, attributes in _anchors(body)]
        versions = None
    _check_unique(files, page_url)
    releases: dict[str, ReleaseSnapshot] = {}
    for file in files:
        release = releases.get(file.version)
        yanked = file.yanked and (release is None or release.yanked)
        releases[file.version] = ReleaseSnapshot(file.version, yanked, file.yanked_reason if yanked else None)
    if isinstance(versions, list):
        for version in versions:
            if isinstance(version, str) and version not in releases:
                releases[version] = ReleaseSnapshot(version)
    if canonicalize_name(name) != canonicalize_name(name.strip()) or not PROJECT_NAME_RE.match(name):
        raise BadSnapshot(f"{page_url}: {name!r} is not a project name")
    return ProjectSnapshot(name, None, releases, tuple(files), None)


def _simple_json_file(entry: Any, page_url: str) -> FileSnapshot:
    if not isinstance(entry, dict):
        raise BadSnapshot(f"{page_url}: a file is not an object")
    filename = _check_filename(_text(entry.get("filename"), "filename"))
    hashes = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
    version, packagetype, python_version = _kind_of(filename)
    yanked, reason = _yanked(entry.get("yanked"))
    size = entry.get("size")
    url, _ = urldefrag(urljoin(page_url, _text(entry.get("url"), f"{filename} url")))
    return FileSnapshot(
        filename=filename,
        version=version,
        url=url,
        sha256=_sha256(hashes.get("sha256"), filename),
        size=size if isinstance(size, int) and size >= 0 else None,
        packagetype=packagetype,
        python_version=python_version,
        requires_python=_optional_text(entry.get("requires-python"), "requires-python") or None,
        upload_time=_time(entry.get("upload-time")),
        yanked=yanked,
        yanked_reason=reason,
        core_metadata=_core_metadata(entry.get("core-metadata", entry.get("dist-info-metadata"))),
    )


def _simple_html_file(href: str, attributes: dict[str, str | None], page_url: str) -> FileSnapshot:
    url, fragment = urldefrag(urljoin(page_url, href))
    filename = _check_filename(url.rsplit("/", 1)[-1])
    algorithm, _, digest = fragment.partition("=")
    if algorithm != "sha256":
        raise BadSnapshot(f"{page_url}: {filename} has no sha256 digest")
    version, packagetype, python_version = _kind_of(filename)
    yanked = "data-yanked" in attributes
    metadata = attributes.get("data-core-metadata", attributes.get("data-dist-info-metadata"))
    core_metadata: str | bool | None = False
    if metadata is not None:
        algorithm, _, value = metadata.partition("=")
        core_metadata = value if algorithm == "sha256" and _HEX64.match(value) else None
    return FileSnapshot(
        filename=filename,
        version=version,
        url=url,
        sha256=_sha256(digest, filename),
        size=None,
        packagetype=packagetype,
        python_version=python_version,
        requires_python=attributes.get("data-requires-python") or None,
        yanked=yanked,
        yanked_reason=(attributes.get("data-yanked") or None) if yanked else None,
        core_metadata=core_metadata,
    )


class _AnchorParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            attributes = dict(attrs)
            href = attributes.get("href")
            if href:
                self._open = (href, attributes)
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            href, attributes = self._open
            self.anchors.append((href, attributes, "".join(self._text)))
            self._open = None


def _parse_anchors(body: bytes) -> list[tuple[str, dict[str, str | None], str]]:
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    return parser.anchors


def _anchors(body: bytes) -> list[tuple[str, dict[str, str | None]]]:
    return [(href, attributes) for href, attributes, _ in _parse_anchors(body)]


def _links(body: bytes) -> list[tuple[str, str]]:
    return [(href, text) for href, _, text in _parse_anchors(body)]
