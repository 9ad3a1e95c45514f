# -*- test-case-name: tests.test_mirror -*-
"""
C{/+replica/?project=A&project=B}: everything a downstream twistedindex
mirror copies of some projects, in one JSON document.

Mirrors of a Warehouse-compatible index read the JSON API: a page for each
project, one more per release for its description, and C{/serversig} beside
them.  Between twistedindex daemons this one answer replaces them all, for
several projects at once (a request cost both daemons more than a small
project's rows and files; measured by bench/mirror_bench.py), and carries
what the JSON API leaves out (each release's full metadata record and
creation time, each file's uploader), so that a mirror's XML-RPC and web
pages match its upstream's too.  Each project's signature is made over the
simple page rendered from the same snapshot, so it always fits the serial
it comes with.  With C{?inline=N}, files of at most N bytes come inside it
too, with a wheel's PEP 658 metadata file beside its bytes.

The answer is C{{"projects": {<name>: <document> or null}}}, null for a
project the index does not have.  C{GET /+replica/} alone answers
C{{"version": 2, "projects": <most names a request>}}: that is how a mirror
tells a twistedindex upstream.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..errors import InvalidRequest
from ..filestore import METADATA_SUFFIX, FileStore
from ..index import PackageIndex, ProjectDetail, ReplicaSource
from ..names import PROJECT_NAME_RE, normalize
from ..pep381 import Pep381
from .cache import answer_later, not_found
from .errors import error_response
from .files import SMALL_FILE
from .simple import project_html

VERSION = 2

# The most projects one request may name.
MOST_PROJECTS = 16

# C{?inline=N} puts the bytes of each file of at most N bytes into the
# document (base64), up to INLINE_PER_PROJECT bytes a project: a mirror then
# fetches a project of small files without a request per file, and holds
# at most that much of each project it has in hand.
INLINE_LIMIT = 256 * 1024
INLINE_PER_PROJECT = 1024 * 1024

# At most this many inline files are read on the reactor thread (see
# ReplicaResource._documents).
READ_HERE_FILES = 32


def replica_document(
    detail: ProjectDetail, signature: bytes | None, contents: dict[str, bytes] | None = None
) -> dict[str, Any]:
    releases_by_id = {release.id: release for release in detail.releases}
    contents = contents or {}
    return {
        "name": detail.project.name,
        "serial": detail.project.last_serial,
        "releases": {
            release.version: {
                "created": release.created,
                "yanked": release.yanked,
                "yanked_reason": release.yanked_reason,
                "summary": release.summary,
                "description": release.description,
                "description_content_type": release.description_content_type,
                "requires_python": release.requires_python,
                "metadata": release.metadata,
            }
            for release in detail.releases
        },
        "files": [
            {
                "filename": file.filename,
                "version": releases_by_id[file.release_id].version,
                "packagetype": file.packagetype,
                "python_version": file.python_version,
                "size": file.size,
                "sha256": file.sha256,
                "blake2b_256": file.blake2b_256,
                "md5": file.md5,
                "upload_time": file.upload_time,
                "requires_python": file.requires_python,
                "yanked": file.yanked,
                "yanked_reason": file.yanked_reason,
                "metadata_sha256": file.metadata_sha256,
                "comment_text": file.comment_text,
                "uploaded_by": file.uploaded_by,
                **(
                    {"content": base64.b64encode(contents[file.filename]).decode("ascii")}
                    if file.filename in contents
                    else {}
                ),
                **(
                    {"metadata_content": base64.b64encode(contents[file.filename + METADATA_SUFFIX]).decode("ascii")}
                    if file.filename + METADATA_SUFFIX in contents
                    else {}
                ),
            }
            for file in sorted(detail.files, key=lambda f: f.filename)
        ],
        "roles": [[role, user] for role, user in detail.roles],
        "serversig": base64.b64encode(signature).decode("ascii") if signature is not None else None,
    }


class ReplicaResource(Resource):
    isLeaf = True

    def __init__(self, index: PackageIndex, pep381: Pep381) -> None:
        super().__init__()
        self._index = index
        self._pep381 = pep381

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802  (twisted.web's name)
        if request.postpath not in ([], [b""]):
            return not_found(request)
        asked = [name.decode("utf-8", "replace") for name in request.args.get(b"project", [])]
        if not asked:
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"version": VERSION, "projects": MOST_PROJECTS}).encode()
        invalid = [name for name in asked if not PROJECT_NAME_RE.match(name)]
        if invalid:
            return error_response(request, InvalidRequest(f"{invalid[0]!r} is not a project name"))
        if len(asked) > MOST_PROJECTS:
            return error_response(request, InvalidRequest(f"at most {MOST_PROJECTS} projects a request"))
        try:
            inline = min(int(request.args.get(b"inline", [b"0"])[0]), INLINE_LIMIT)
        except ValueError:
            inline = 0
        names = list(dict.fromkeys(normalize(name) for name in asked))
        return answer_later(request, lambda: self._documents(request, names, inline))

    async def _documents(self, request: Request, names: list[str], inline: int) -> bytes:
        sources = await self._index.replica_sources(names)
        details = [source.detail for source in sources.values() if source.detail is not None]
        contents: dict[str, bytes] = {}
        if inline:
            carried = [file.size for detail in details for file in detail.files if file.size <= inline]
            if len(carried) <= READ_HERE_FILES and sum(carried) <= SMALL_FILE:
                # A few files of 256 KiB in all (and their metadata files)
                # are read here, as files.py reads a small file: a trip to a
                # worker thread cost more (the threads taking the GIL from
                # one another at every read; measured by
                # bench/mirror_bench.py).
                contents = _read_small_files(self._index.files, details, inline)
            else:
                contents = await self._index.blocking(_read_small_files, self._index.files, details, inline)
        documents = {
            name: await self._document(name, source, contents) if source.detail is not None else None
            for name, source in sources.items()
        }
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"projects": documents}, separators=(",", ":")).encode("utf-8")

    async def _document(self, name: str, source: ReplicaSource, contents: dict[str, bytes]) -> dict[str, Any]:
        detail = source.detail
        assert detail is not None
        serial = detail.project.last_serial
        if source.mirror:
            copied = source.copied_signature
            signature = copied[1] if copied is not None and copied[0] == serial else None
        else:
            signature = await self._pep381.signature(name, serial, project_html(detail))
        return replica_document(detail, signature, contents)


def _read_small_files(store: FileStore, details: list[ProjectDetail], limit: int) -> dict[str, bytes]:
    """
    The bytes of the projects' files of at most C{limit} bytes, up to
    C{INLINE_PER_PROJECT} a project, and the metadata files of those that
    have one (keyed C{<filename>.metadata}): the mirror then need not open
    the wheel to find it.  (A filename names its project: no two projects
    share one.)
    """
    contents: dict[str, bytes] = {}
    for detail in details:
        total = 0
        for file in sorted(detail.files, key=lambda f: f.size):
            if file.size > limit:
                break
            path = store.path(file.blake2b_256, file.filename)
            try:
                carried = {file.filename: _read_at_most(path, file.size + 1)}
                if file.metadata_sha256 is not None:
                    metadata = _read_at_most(path + METADATA_SUFFIX, INLINE_LIMIT + 1)
                    # A longer metadata file (a small wheel can hold a large
                    # compressed description) is left out: the mirror reads
                    # it from the wheel, as it checks it anyway.
                    if len(metadata) <= INLINE_LIMIT:
                        carried[file.filename + METADATA_SUFFIX] = metadata
            except OSError:
                continue  # the mirror fetches it by URL
            size = sum(len(content) for content in carried.values())
            if total + size > INLINE_PER_PROJECT:
                break
            contents.update(carried)
            total += size
    return contents


def _read_at_most(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)
