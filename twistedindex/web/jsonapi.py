# -*- test-case-name: tests.test_install -*-
"""
PyPI's JSON API: C{/pypi/<project>/json} and C{/pypi/<project>/<version>/json}.

The shape is Warehouse's (C{info}, C{releases}, C{urls}, C{last_serial},
C{vulnerabilities}, C{ownership}), which mirroring tools and many scripts
read.  Pages are cached per project serial like the simple pages.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_version
from twisted.web.server import Request

from ..config import Settings
from ..filestore import relative_path
from ..index import PackageIndex, ProjectDetail
from ..names import PROJECT_NAME_RE, find_release, latest_release, normalize, version_key
from ..storage.rows import File, Release
from .cache import Answer, CachedPageResource, Page, PageCache, Route, not_found, redirect_to
from .simple import iso_time

_DOWNLOADS = {"last_day": -1, "last_month": -1, "last_week": -1}

# The core-metadata fields of "info", as the release record stores them.
_INFO_FIELDS = (
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "license",
    "license_expression",
    "home_page",
    "download_url",
)


class JsonApiResource(CachedPageResource):
    """
    The JSON API, below C{/pypi/}.
    """

    headers = (
        (b"Access-Control-Allow-Origin", b"*"),
        (b"Access-Control-Expose-Headers", b"X-PyPI-Last-Serial"),
        (b"Cache-Control", b"max-age=0, must-revalidate, public"),
    )

    def __init__(self, index: PackageIndex, cache: PageCache, settings: Settings) -> None:
        super().__init__(index, cache)
        self._base = settings.base_url or ""

    def route(self, request: Request) -> Route | Answer:
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if segments and segments[-1] == "":
            segments.pop()
        if len(segments) not in (2, 3) or segments[-1] != "json":
            return not_found
        name = segments[0]
        if not PROJECT_NAME_RE.match(name):
            return not_found  # nor a redirect that could leave the site
        version = segments[1] if len(segments) == 3 else None
        project = normalize(name)
        if project != name:
            rest = f"/{quote(version, safe='')}/json" if version else "/json"
            return redirect_to(f"{self._base}/pypi/{project}{rest}".encode())
        # Keyed by the canonical version: spellings of one version (1.0,
        # 1.0.0, v1.0...) are one page, not one cache entry each.
        return Route(
            ("json-api", project, None if version is None else canonicalize_version(version)),
            project,
            b"application/json",
            lambda: self._render(project, version),
        )

    async def _render(self, project: str, version: str | None) -> Page | None:
        detail = await self.index.project_detail(project)
        if detail is None or not detail.releases:
            return None
        if version is None:
            release = latest_release(detail.releases)
        else:
            found = find_release(detail.releases, version)
            if found is None:
                return None
            release = found
        body = json.dumps(self.document(detail, release, with_releases=version is None), sort_keys=True) + "\n"
        return Page(body.encode("utf-8"), detail.project.last_serial, f"{project}-json-{version or ''}")

    def file_object(self, file: File) -> dict[str, Any]:
        upload_time = iso_time(file.upload_time)
        return {
            "comment_text": file.comment_text,
            "core-metadata": {"sha256": file.metadata_sha256} if file.metadata_sha256 else False,
            "digests": {"blake2b_256": file.blake2b_256, "md5": file.md5, "sha256": file.sha256},
            "downloads": -1,
            "filename": file.filename,
            "has_sig": False,
            "md5_digest": file.md5,
            "packagetype": file.packagetype,
            "python_version": file.python_version,
            "requires_python": file.requires_python,
            "size": file.size,
            "upload_time": upload_time[:19],
            "upload_time_iso_8601": upload_time,
            "url": f"{self._base}/packages/{relative_path(file.blake2b_256, file.filename)}",
            "yanked": file.yanked,
            "yanked_reason": file.yanked_reason,
        }

    def document(self, detail: ProjectDetail, release: Release, with_releases: bool) -> dict[str, Any]:
        project = detail.project
        files_by_release: dict[int, list[File]] = {}
        for file in sorted(detail.files, key=lambda f: f.filename):
            files_by_release.setdefault(file.release_id, []).append(file)
        metadata = release.metadata
        project_url = f"{self._base}/project/{project.name}/"
        keywords = metadata.get("keywords")
        info: dict[str, Any] = {
            "bugtrack_url": None,
            "classifiers": metadata.get("classifiers", []),
            "description": release.description or "",
            "description_content_type": release.description_content_type,
            "docs_url": None,
            "downloads": _DOWNLOADS,
            "dynamic": metadata.get("dynamic"),
            "keywords": ", ".join(keywords) if isinstance(keywords, list) else keywords,
            "license_files": metadata.get("license_files"),
            "name": project.name,
            "package_url": project_url,
            "platform": (metadata.get("platforms") or [None])[0],
            "project_url": project_url,
            "project_urls": metadata.get("project_urls") or None,
            "provides_extra": metadata.get("provides_extra"),
            "release_url": f"{project_url}{release.version}/",
            "requires_dist": metadata.get("requires_dist"),
            "requires_python": release.requires_python,
            "summary": release.summary,
            "version": release.version,
            "yanked": release.yanked,
            "yanked_reason": release.yanked_reason,
        }
        info.update({name: metadata.get(name) for name in _INFO_FIELDS})
        document: dict[str, Any] = {
            "info": info,
            "last_serial": project.last_serial,
            "ownership": {
                "organization": None,
                "roles": [{"role": role, "user": user} for role, user in detail.roles],
            },
            "urls": [self.file_object(f) for f in files_by_release.get(release.id, [])],
            "vulnerabilities": [],
        }
        if with_releases:
            document["releases"] = {
                r.version: [self.file_object(f) for f in files_by_release.get(r.id, [])]
                for r in sorted(detail.releases, key=lambda r: version_key(r.version))
            }
        return document
