"""
The values storage hands back: plain frozen records, one per table row.

They carry data only.  What a row means for uploads, permissions or pages is
decided in L{twistedindex.index}.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen


@frozen
class User:
    id: int
    name: str
    email: str | None
    password_hash: str | None
    created: int


@frozen
class Project:
    id: int
    name: str
    normalized_name: str
    created: int
    last_serial: int


@frozen
class Release:
    id: int
    project_id: int
    version: str
    canonical_version: str
    created: int
    yanked: bool
    yanked_reason: str | None
    summary: str | None
    description: str | None
    description_content_type: str | None
    requires_python: str | None
    metadata: dict[str, Any]


@frozen
class File:
    id: int
    release_id: int
    version: str
    filename: str
    packagetype: str
    python_version: str
    size: int
    sha256: str
    blake2b_256: str
    md5: str
    upload_time: int
    yanked: bool
    yanked_reason: str | None
    requires_python: str | None
    metadata_sha256: str | None
    comment_text: str | None
    uploaded_by: str | None


@frozen
class NewFile:
    """
    A file row to insert (see L{Transaction.insert_files}).
    """

    release_id: int
    filename: str
    packagetype: str
    python_version: str
    size: int
    sha256: str
    blake2b_256: str
    md5: str
    upload_time: int
    requires_python: str | None = None
    metadata_sha256: str | None = None
    comment_text: str | None = None
    uploaded_by: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None


@frozen
class Token:
    id: int
    user_id: int
    user_name: str
    project_id: int | None
    project_name: str | None
    description: str
    created: int
    last_used: int | None
    revoked: int | None


@frozen
class JournalEntry:
    serial: int
    name: str
    normalized_name: str
    version: str | None
    timestamp: int
    action: str
    submitted_by: str | None


@frozen
class SearchHit:
    name: str
    normalized_name: str
    version: str
    summary: str
    ordering: int


@frozen
class MirrorProject:
    """
    A mirror's record of one upstream project.
    """

    normalized_name: str
    serial: int
    fingerprint: str | None
    failures: int
    last_error: str | None


@frozen
class Session:
    """
    A browser's login (the session id itself is never stored).
    """

    digest: str
    user_id: int
    user_name: str
    csrf_token: str
    created: int
    expires: int


@frozen
class Counts:
    """
    How much the index holds.
    """

    projects: int
    releases: int
    files: int


@frozen
class RecentRelease:
    """
    A release with files, by the time of its newest file.
    """

    name: str
    normalized_name: str
    version: str
    summary: str | None
    uploaded: int
