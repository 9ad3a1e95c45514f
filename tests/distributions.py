"""
Real distribution files for the tests, written with zipfile and tarfile: no
build backend or network needed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path


def metadata_text(
    name: str,
    version: str,
    metadata_version: str = "2.1",
    summary: str | None = "A test distribution",
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    extra_headers: Iterable[str] = (),
    description: str | None = "Test\n====\n\nA *test* distribution.\n",
    description_content_type: str | None = None,
) -> str:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary is not None:
        lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    if description_content_type:
        lines.append(f"Description-Content-Type: {description_content_type}")
    lines += list(extra_headers)
    text = "\n".join(lines) + "\n"
    if description is not None:
        text += "\n" + description
    return text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(
    directory: Path,
    name: str = "demo-pkg",
    version: str = "1.0",
    tag: str = "py3-none-any",
    module: str | None = None,
    metadata: str | None = None,
    record: bool = True,
    payload: bytes | None = None,
    dist_name: str | None = None,
    deflated: bool = False,
    **metadata_options: object,
) -> Path:
    """
    A wheel with one module (named after the project) and valid RECORD.

    :param dist_name: the name in the filename and the .dist-info directory
        (by default the normalized project name, as the wheel spec says).
    :param metadata: the whole METADATA text, to make it disagree with the
        filename.
    :param deflated: whether its members are compressed (stored otherwise).
    """
    escaped = dist_name or name.replace("-", "_").replace(".", "_").lower()
    module = module or name.replace("-", "_").replace(".", "_").lower()
    dist_info = f"{escaped}-{version}.dist-info"
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f"NAME = {name!r}\nVERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": (metadata or metadata_text(name, version, **metadata_options)).encode(),  # type: ignore[arg-type]
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    if payload is not None:
        files[f"{module}/payload.bin"] = payload
    if record:
        lines = [_record_line(path, data) for path, data in files.items()] + [f"{dist_info}/RECORD,,"]
        files[f"{dist_info}/RECORD"] = ("\n".join(lines) + "\n").encode()
    path = directory / f"{escaped}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
            archive.writestr(info, data)
    return path


def sdist(
    directory: Path,
    name: str = "demo-pkg",
    version: str = "1.0",
    filename: str | None = None,
    top: str | None = None,
    metadata: str | None = None,
    **metadata_options: object,
) -> Path:
    """
    A .tar.gz sdist with PKG-INFO and a setup.py, named by PEP 625 unless
    told otherwise.
    """
    base = f"{name.replace('-', '_').replace('.', '_').lower()}-{version}"
    filename = filename or f"{base}.tar.gz"
    top = top or filename[: -len(".tar.gz")]
    files = {
        f"{top}/PKG-INFO": (metadata or metadata_text(name, version, **metadata_options)).encode(),  # type: ignore[arg-type]
        f"{top}/setup.py": b"from setuptools import setup\nsetup()\n",
    }
    path = directory / filename
    with tarfile.open(path, "w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mtime = int(time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, -1)))
            archive.addfile(info, io.BytesIO(data))
    return path


def digests(path: Path) -> dict[str, str]:
    data = path.read_bytes()
    return {
        "md5_digest": hashlib.md5(data).hexdigest(),
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }


def multipart(
    fields: Iterable[tuple[str, str]],
    files: Iterable[tuple[str, str, bytes, str | None]] = (),
    boundary: str = "----------twistedindex-test-boundary",
    newline: bytes = b"\r\n",
) -> tuple[str, bytes]:
    """
    A multipart/form-data body: C{(content type, body)}.

    :param files: C{(field, filename, data, part content type or None)}.
    """
    out = io.BytesIO()
    for name, value in fields:
        out.write(b"--" + boundary.encode() + newline)
        out.write(f'Content-Disposition: form-data; name="{name}"'.encode() + newline + newline)
        out.write(value.encode("utf-8") + newline)
    for name, filename, data, content_type in files:
        out.write(b"--" + boundary.encode() + newline)
        out.write(f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'.encode() + newline)
        if content_type is not None:
            out.write(f"Content-Type: {content_type}".encode() + newline)
        out.write(newline + data + newline)
    out.write(b"--" + boundary.encode() + b"--" + newline)
    return f"multipart/form-data; boundary={boundary}", out.getvalue()


def upload_fields(path: Path, project: str, release: str, **overrides: str | None) -> list[tuple[str, str]]:
    """
    The form fields twine would send for C{path}; an override of C{None}
    leaves that field out.
    """
    filetype = "bdist_wheel" if path.name.endswith(".whl") else "sdist"
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": project,
        "version": release,
        "filetype": filetype,
        "pyversion": "py3" if filetype == "bdist_wheel" else "source",
        **{k: v for k, v in digests(path).items() if k != "md5_digest"},
    }
    fields.update(overrides)
    return [(k, v) for k, v in fields.items() if v is not None]


def remove(path: Path) -> None:
    if path.exists():
        os.unlink(path)
