# -*- test-case-name: tests.test_names -*-
"""
Names of projects and users: how they are checked and compared.
"""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name
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
