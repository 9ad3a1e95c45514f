# -*- test-case-name: tests.test_dists -*-
"""
Looking inside distribution files: is this a valid wheel or sdist, and what
core metadata does it carry?

Everything here reads a file on disk and blocks; the domain runs it on a
thread.  Archives are never extracted, and their decompressed size is
bounded while they are read (zip bombs).
"""

from __future__ import annotations

import os
import tarfile
import zipfile

from attrs import frozen

from .errors import InvalidRequest

# PyPI's zip-bomb rule: more than 64 MiB decompressed and more than 50 times
# the archive's size.
COMPRESSION_RATIO_MIN_SIZE = 64 * 1024 * 1024
COMPRESSION_RATIO_THRESHOLD = 50

# The largest METADATA or PKG-INFO read (descriptions can be long).
MAX_METADATA_SIZE = 16 * 1024 * 1024


@frozen
class DistContents:
    """
    What an upload's archive holds.

    :ivar metadata: the bytes of its METADATA (wheel) or PKG-INFO (sdist).
    :ivar is_wheel: the metadata is a wheel's, to be served as PEP 658's
        C{<file>.metadata}.
    :ivar names: the archive's member names, for License-File checks.
    """

    metadata: bytes
    is_wheel: bool
    names: frozenset[str]


def invalid(message: str | None) -> InvalidRequest:
    return InvalidRequest("Invalid distribution file." + (f" {message}" if message else ""))


def _too_big(decompressed: int, compressed: int) -> bool:
    return decompressed > COMPRESSION_RATIO_MIN_SIZE and decompressed / max(compressed, 1) > COMPRESSION_RATIO_THRESHOLD


def _single_top_level(names: frozenset[str] | list[str]) -> str:
    """
    The one directory an sdist unpacks into.
    """
    tops = {name.split("/")[0] for name in names}
    tops.discard("")
    if len(tops) != 1:
        raise invalid("Incorrect number of top-level directories in sdist")
    return tops.pop()


def _read_zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_METADATA_SIZE:
        raise invalid(f"{name} is larger than {MAX_METADATA_SIZE} bytes")
    return archive.read(info)


def inspect_zip(path: str, filename: str) -> DistContents:
    """
    A wheel, or a .zip sdist.
    """
    if not zipfile.is_zipfile(path):
        raise invalid("File is not a zipfile")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if _too_big(sum(i.file_size for i in infos), os.stat(path).st_size):
                raise invalid(f"File exceeds compression ratio of {COMPRESSION_RATIO_THRESHOLD}")
            for info in infos:
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise invalid("File does not use a supported compression type")
            names = frozenset(archive.namelist())
            if filename.endswith(".whl"):
                return _wheel_contents(archive, filename, names)
            target = f"{_single_top_level(names)}/PKG-INFO"
            if target not in names:
                raise invalid(f"PKG-INFO not found at {target}")
            return DistContents(_read_zip_member(archive, target), False, names)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as e:
        raise invalid(f"File is not a valid zipfile: {e}") from None


def _wheel_contents(archive: zipfile.ZipFile, filename: str, names: frozenset[str]) -> DistContents:
    try:
        name, version, _ = filename.split("-", 2)
    except ValueError:
        raise invalid("Unable to parse name and version from wheel filename") from None
    dist_info = f"{name}-{version}.dist-info"
    if f"{dist_info}/WHEEL" not in names:
        raise invalid(f"WHEEL not found at {dist_info}/WHEEL")
    if f"{dist_info}/RECORD" not in names:
        raise InvalidRequest(f"Wheel '{filename}' does not contain the required RECORD file: {dist_info}/RECORD")
    if f"{dist_info}/METADATA" not in names:
        raise InvalidRequest(f"Wheel '{filename}' does not contain the required METADATA file: {dist_info}/METADATA")
    return DistContents(_read_zip_member(archive, f"{dist_info}/METADATA"), True, names)


def inspect_tar(path: str) -> DistContents:
    """
    A .tar.gz sdist.  Unlike PyPI, the decompressed size is watched while the
    archive is read, so a tar bomb is refused like a zip bomb.
    """
    if not tarfile.is_tarfile(path):
        raise invalid("File is not a tarfile")
    compressed = os.stat(path).st_size
    names: list[str] = []
    metadata: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                names.append(member.name)
                total += member.size
                if _too_big(total, compressed):
                    raise invalid(f"File exceeds compression ratio of {COMPRESSION_RATIO_THRESHOLD}")
                if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO") and member.isfile():
                    if member.size > MAX_METADATA_SIZE:
                        raise invalid(f"{member.name} is larger than {MAX_METADATA_SIZE} bytes")
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    metadata[member.name] = extracted.read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise invalid(f"File is not a valid tarfile: {e}") from None
    target = f"{_single_top_level(names)}/PKG-INFO"
    if target not in metadata:
        raise invalid(f"PKG-INFO not found at {target}")
    return DistContents(metadata[target], False, frozenset(names))


def inspect(path: str, filename: str) -> DistContents:
    """
    Check that C{path} is a valid distribution for C{filename}'s extension and
    return what it holds.

    :raises InvalidRequest: with PyPI's "Invalid distribution file." messages.
    """
    if filename.endswith((".whl", ".zip")):
        return inspect_zip(path, filename)
    return inspect_tar(path)
