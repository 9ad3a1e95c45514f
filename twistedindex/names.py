# -*- test-case-name: tests.test_names -*-
"""
Names of projects and users: how they are checked and compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from .errors import InvalidRequest

# PyPI's rule for project names (core metadata "Name").
PROJECT_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE | re.ASCII)

# PyPI's rule for user names: letters, digits, '.', '_', '-', starting and
# ending with a letter or digit, at most 50 characters.
USERNAME_RE = re.compile(r"^[A-Z0-9]([A-Z0-9._-]{0,48}[A-Z0-9])?\Z", re.IGNORECASE | re.ASCII)


def normalize(name: str) -> str:
    """
    The PEP 503 form of a project name.
    """
    return str(canonicalize_name(name))


def check_project_name(name: str) -> str:
    """
    Return C{name} if it is a valid project name.

    :raises InvalidRequest: otherwise, in PyPI's words.
    """
    if not PROJECT_NAME_RE.match(name):
        raise InvalidRequest(f"The name {name!r} is invalid.")
    return name


def check_username(name: str) -> str:
    """
    Return C{name} if it is a valid user name.

    :raises InvalidRequest: otherwise.
    """
    if not USERNAME_RE.match(name):
        raise InvalidRequest(
            f"The username {name!r} is invalid. Usernames must be composed of letters, numbers, "
            "or the characters '.', '_' or '-', must start and finish with a letter or number, "
            "and may be at most 50 characters long."
        )
    return name


def version_key(version: str) -> tuple[int, Version, str]:
    """
    A sort key for version strings: PEP 440 order, with versions that are not
    PEP 440 (a mirror may carry old ones) first, in string order.
    """
    try:
        return (1, Version(version), version)
    except InvalidVersion:
        return (0, Version("0"), version)


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def canonical_version(self) -> str: ...

    @property
    def yanked(self) -> bool: ...


V = TypeVar("V", bound=_Versioned)


def latest_release(releases: Sequence[V]) -> V:
    """
    PyPI's "latest" release: one not yanked before one yanked, a final
    release before a pre-release, then the highest version.
    """

    def key(release: V) -> tuple[bool, bool, tuple[int, Version, str]]:
        sort = version_key(release.version)
        prerelease = sort[0] == 1 and sort[1].is_prerelease
        return (not release.yanked, not prerelease, sort)

    return max(releases, key=key)


def find_release(releases: Sequence[V], version: str) -> V | None:
    """
    The release whose version is exactly C{version}, else the one release
    equal to it under PEP 440 (C{1.0} finds C{1.0.0}).
    """
    for release in releases:
        if release.version == version:
            return release
    canonical = canonicalize_version(version)
    matches = [r for r in releases if r.canonical_version == canonical]
    return matches[0] if len(matches) == 1 else None
