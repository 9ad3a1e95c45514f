# -*- test-case-name: tests.test_upload_form -*-
"""
The legacy upload API's form: what a client sent, and the checks PyPI makes
on it before looking at the file.

The web layer fills an L{UploadForm} from the request (the file part already
streamed to a staged file); the domain reads it.  Messages follow PyPI's
upload API word for word where PyPI has words for the case.
"""

from __future__ import annotations

import re

from attrs import define, field

from .errors import InvalidRequest
from .filestore import StagedFile
from .names import PROJECT_NAME_RE

CORE_METADATA_HELP = "See https://packaging.python.org/specifications/core-metadata for more information."

_SHA256 = re.compile(r"\A[0-9a-fA-F]{64}\Z")
# stdlib distutils (3.6-3.11) sends hashlib.blake2b(content).hexdigest(), a
# 512-bit digest, under the name blake2_256_digest (CPython issue 89753).
# PyPI rejects it; we verify it as what it is.
_BLAKE2B_512 = re.compile(r"\A[0-9a-fA-F]{128}\Z")

FILETYPE_EXTENSIONS = {"sdist": (".tar.gz", ".zip"), "bdist_wheel": (".whl",)}


@define
class ContentPart:
    """
    The uploaded file: its name and type as sent, and where it was staged.
    """

    filename: str
    content_type: str | None
    staged: StagedFile | None


@define
class UploadForm:
    """
    The fields of one legacy API request, repeated fields kept in order.

    :ivar fields: text fields by name.
    :ivar file_fields: names of fields (other than C{content} and
        C{gpg_signature}) that arrived as file parts.
    :ivar content: the C{content} file part, if any.
    """

    fields: dict[str, list[str]] = field(factory=dict)
    file_fields: list[str] = field(factory=list)
    content: ContentPart | None = None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def add(self, name: str, value: str) -> None:
        self.fields.setdefault(name, []).append(value)

    @property
    def action(self) -> str | None:
        return self.get(":action")

    def discard(self) -> None:
        """
        Delete the staged file, unless it was taken into the store.
        """
        if self.content is not None and self.content.staged is not None:
            self.content.staged.discard()
            self.content.staged = None

    def sanitize(self) -> None:
        """
        PyPI's first step: drop the placeholder C{UNKNOWN} that distutils puts
        in empty fields, and make NUL characters visible.

        :raises InvalidRequest: when a field arrived as a file part.
        """
        for name in list(self.fields):
            values = [v.replace("\x00", "\\x00") for v in self.fields[name] if v.strip() != "UNKNOWN"]
            if values:
                self.fields[name] = values
            else:
                del self.fields[name]
        for name in self.file_fields:
            if name not in ("content", "gpg_signature"):
                raise InvalidRequest(f"{name}: Should not be a tuple.")


@define
class FileFields:
    """
    The file-describing fields of an upload, checked.
    """

    name: str
    filetype: str
    pyversion: str
    md5_digest: str | None
    sha256_digest: str | None
    blake2_digest: str | None
    comment: str | None


def _shown(value: str) -> str:
    return value[:30] + "..." + value[-30:] if len(value) > 60 else value


def check_file_fields(form: UploadForm) -> FileFields:
    """
    PyPI's upload-form checks, in PyPI's order of precedence.

    :raises InvalidRequest: with PyPI's message for the first problem.
    """
    if form.get("protocol_version") not in (None, "1"):
        raise InvalidRequest("Unknown protocol version.")
    errors: dict[str, str] = {}
    name = form.get("name") or ""
    if not name:
        errors["name"] = "This field is required."
    elif not PROJECT_NAME_RE.match(name):
        errors["name"] = "Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'."
    filetype = form.get("filetype") or ""
    if not filetype:
        errors["filetype"] = "This field is required."
    elif filetype not in FILETYPE_EXTENSIONS:
        errors["filetype"] = "Use a known file type."
    sha256 = form.get("sha256_digest")
    if sha256 and not _SHA256.match(sha256):
        errors["sha256_digest"] = "Use a valid, hex-encoded, SHA256 message digest."
    blake2 = form.get("blake2_256_digest")
    if blake2 and not (_SHA256.match(blake2) or _BLAKE2B_512.match(blake2)):
        errors["blake2_256_digest"] = "Use a valid, hex-encoded, BLAKE2 message digest."
    md5 = form.get("md5_digest")
    if errors:
        field_name = "name" if "name" in errors else sorted(errors)[0]
        if field_name == "name":
            raise InvalidRequest(
                f"{_shown(name)!r} is an invalid value for Name. Error: {errors['name']} {CORE_METADATA_HELP}"
            )
        raise InvalidRequest(f"Invalid value for {field_name}. Error: {errors[field_name]}")
    pyversion = form.get("pyversion") or ""
    if filetype != "sdist" and not pyversion:
        raise InvalidRequest(
            "Invalid value for pyversion. Error: Python version is required for binary distribution uploads."
        )
    if filetype == "sdist":
        # distutils sends an empty pyversion for an sdist; PyPI reads that
        # as "source" too.
        if pyversion and pyversion != "source":
            raise InvalidRequest("Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.")
        pyversion = "source"
    if not (md5 or sha256 or blake2):
        raise InvalidRequest("Error: Include at least one message digest.")
    return FileFields(
        name=name,
        filetype=filetype,
        pyversion=pyversion,
        md5_digest=md5.lower() if md5 else None,
        sha256_digest=sha256.lower() if sha256 else None,
        blake2_digest=blake2.lower() if blake2 else None,
        comment=form.get("comment"),
    )


_CONTROL = {chr(n) for n in range(32)} | {chr(127)}
_EXTENSION = re.compile(r".+?(?P<extension>\.(tar\.gz|zip|whl))\Z", re.IGNORECASE)

# The longest filename stored: with ".metadata" appended it still fits the
# 255-byte name limit of common filesystems.
MAX_FILENAME_LENGTH = 240


def check_filename(filename: str, filetype: str) -> None:
    """
    PyPI's checks on the uploaded file's name and extension.
    """
    if any(c in _CONTROL for c in filename):
        raise InvalidRequest(
            "Cannot upload a file with non-printable characters (ordinals 0-31) "
            "or the DEL character (ordinal 127) in the name."
        )
    if "/" in filename or "\\" in filename:
        raise InvalidRequest("Cannot upload a file with '/' or '\\' in the name.")
    match = _EXTENSION.match(filename)
    if match is None:
        raise InvalidRequest(
            "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
            "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ "
            "for more information"
        )
    extension = match.group("extension")
    if extension not in FILETYPE_EXTENSIONS[filetype]:
        raise InvalidRequest(
            f"Invalid file extension: Extension {extension} is invalid for filetype {filetype}. "
            "See https://www.python.org/dev/peps/pep-0527 for more information."
        )
    if len(filename.encode("utf-8")) > MAX_FILENAME_LENGTH:
        raise InvalidRequest(f"Filename is too long: '{filename}'")


# The wheel platform tags PyPI accepts: a fixed list, and families whose
# architectures are known.  New entries need an ABI specification behind them.
_PLATFORMS = {
    "any",
    "win32",
    "win_arm64",
    "win_amd64",
    "win_ia64",
    "manylinux1_x86_64",
    "manylinux1_i686",
    "manylinux2010_x86_64",
    "manylinux2010_i686",
    "manylinux2014_x86_64",
    "manylinux2014_i686",
    "manylinux2014_aarch64",
    "manylinux2014_armv7l",
    "manylinux2014_ppc64",
    "manylinux2014_ppc64le",
    "manylinux2014_s390x",
    "linux_armv6l",
    "linux_armv7l",
}
_MACOSX = re.compile(r"macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>.*)")
_MACOSX_ARCHES = {"ppc", "ppc64", "i386", "x86_64", "arm64", "intel", "fat", "fat3", "fat64", "universal", "universal2"}
_MACOSX_MAJORS = {"11", "12", "13", "14", "15", "26"}
_LINUX = re.compile(r"(?P<libc>many|musl)linux_(\d+)_(\d+)_(?P<arch>.*)")
_LINUX_ARCHES = {"x86_64", "i686", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64"}
_IOS = re.compile(r"ios_(\d+)_(\d+)_(?P<arch>.*)_(iphoneos|iphonesimulator)")
_ANDROID = re.compile(r"android_(\d+)_(?P<arch>.*)")
_PYEMSCRIPTEN = re.compile(r"pyemscripten_(\d+)_(\d+)_wasm32")


def valid_platform_tag(platform: str) -> bool:
    """
    Whether PyPI would take a wheel for this platform.
    """
    if platform in _PLATFORMS or _PYEMSCRIPTEN.fullmatch(platform):
        return True
    if match := _MACOSX.fullmatch(platform):
        if match["arch"] not in _MACOSX_ARCHES:
            return False
        return match["major"] == "10" or (match["major"] in _MACOSX_MAJORS and match["minor"] == "0")
    if match := _LINUX.fullmatch(platform):
        arches = _LINUX_ARCHES | {"ppc64"} if match["libc"] == "many" else _LINUX_ARCHES
        return match["arch"] in arches
    if match := _IOS.fullmatch(platform):
        return match["arch"] in {"arm64", "x86_64"}
    if match := _ANDROID.fullmatch(platform):
        return match["arch"] in {"armeabi_v7a", "arm64_v8a", "x86", "x86_64"}
    return False
