# -*- test-case-name: tests.test_mirror -*-
"""
C{/+replica/<project>}: everything a downstream twistedindex mirror copies
of one project, in one JSON document.

Mirrors of a Warehouse-compatible index read the JSON API: a page for the
project, one more per release for its description, and C{/serversig}
beside them.  Between twistedindex daemons this one answer replaces them
all, and carries what the JSON API leaves out (each release's full metadata
record and creation time, each file's uploader), so that a mirror's
XML-RPC and web pages match its upstream's too.  Its signature is made over
the simple page rendered from the same snapshot, so it always fits the
serial it comes with.  With C{?inline=N}, files of at most N bytes come
inside it too, with a wheel's PEP 658 metadata file beside its bytes.
C{GET /+replica/} answers C{{"version": 1}}: that is how a
mirror tells a twistedindex upstream.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..filestore import METADATA_SUFFIX, FileStore
from ..index import PackageIndex, ProjectDetail
from ..names import PROJECT_NAME_RE, normalize
from ..pep381 import Pep381
from .cache import answer_later, not_found, redirect
from .files import SMALL_FILE
from .simple import project_html

VERSION = 1

# C{?inline=N} puts the bytes of each file of at most N bytes into the
# document (base64), up to these limits: a mirror then fetches a project of
# small files in one request rather than one per file.
INLINE_LIMIT = 256 * 1024
INLINE_TOTAL = 8 * 1024 * 1024

# At most this many inline files are read on the reactor thread (see
# ReplicaResource._document).
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
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if segments in ([], [""]):
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"version": VERSION}).encode()
        if len(segments) != 1 or not PROJECT_NAME_RE.match(segments[0]):
            return not_found(request)
        project = normalize(segments[0])
        if project != segments[0]:
            return redirect(request, project.encode())
        try:
            inline = min(int(request.args.get(b"inline", [b"0"])[0]), INLINE_LIMIT)
        except ValueError:
            inline = 0
        return answer_later(request, lambda: self._document(request, project, inline))

    async def _document(self, request: Request, project: str, inline: int) -> bytes:
        detail, mirror, copied = await self._index.replica_source(project)
        if detail is None:
            return not_found(request)
        contents: dict[str, bytes] = {}
        if inline:
            carried = [file.size for file in detail.files if file.size <= inline]
            if len(carried) <= READ_HERE_FILES and sum(carried) <= SMALL_FILE:
                # A few files of 256 KiB in all (and their metadata files)
                # are read here, as files.py reads a small file: a trip to a
                # worker thread cost more (the threads taking the GIL from
                # one another at every read; measured by
                # bench/mirror_bench.py).
                contents = _read_small_files(self._index.files, detail, inline)
            else:
                contents = await self._index.blocking(_read_small_files, self._index.files, detail, inline)
        serial = detail.project.last_serial
        if mirror:
            signature = copied[1] if copied is not None and copied[0] == serial else None
        else:
            signature = await self._pep381.signature(project, serial, project_html(detail))
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"x-pypi-last-serial", b"%d" % serial)
        return json.dumps(replica_document(detail, signature, contents), separators=(",", ":")).encode("utf-8")


def _read_small_files(store: FileStore, detail: ProjectDetail, limit: int) -> dict[str, bytes]:
    """
    On a worker thread: the bytes of the project's files of at most
    C{limit} bytes, up to C{INLINE_TOTAL} in all, and the metadata files of
    those that have one (keyed C{<filename>.metadata}): the mirror then
    need not open the wheel to find it.
    """
    contents: dict[str, bytes] = {}
    total = 0
    for file in sorted(detail.files, key=lambda f: f.size):
        if file.size > limit or total + file.size > INLINE_TOTAL:
            break
        path = store.path(file.blake2b_256, file.filename)
        try:
            with open(path, "rb") as f:
                contents[file.filename] = f.read(file.size + 1)
            if file.metadata_sha256 is not None:
                with open(path + METADATA_SUFFIX, "rb") as f:
                    contents[file.filename + METADATA_SUFFIX] = f.read(INLINE_LIMIT + 1)
                total += len(contents[file.filename + METADATA_SUFFIX])
        except OSError:
            # The mirror fetches what is missing by URL.
            contents.pop(file.filename, None)
            continue
        total += file.size
    return contents
