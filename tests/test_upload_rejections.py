"""
Every way an upload (or another legacy API call) is refused, against a
running daemon: each case asserts the status, the reason phrase (what twine
and distutils print) and the body.  Messages are PyPI's where PyPI has them.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .daemon import RunningIndex
from .distributions import metadata_text, multipart, sdist, upload_fields, wheel
from .http import basic, post_form

MiB = 1024 * 1024
ALICE, BOB = ("alice", "alice-password"), ("bob", "bob-password")
CORE = "See https://packaging.python.org/specifications/core-metadata for more information."
AUTH = (
    "Invalid or non-existent authentication information. See https://pypi.org/help/#invalid-auth for more information."
)


def send(index: RunningIndex, fields: list[tuple[str, str]], files: list[Any], headers: dict[str, str]) -> Any:
    content_type, body = multipart(fields, files)
    return post_form(index.upload_url, content_type, body, headers)


def upload(index: RunningIndex, path: Path, name: str, version: str, auth: tuple[str, str] = ALICE) -> Any:
    response = send(
        index, upload_fields(path, name, version), [("content", path.name, path.read_bytes(), None)], basic(*auth)
    )
    assert response.status == 200, response
    return response


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    data = tmp_path_factory.mktemp("rejections")
    running = RunningIndex(str(data), "--max-upload-size", str(2 * MiB)).start()
    running.add_user(*ALICE)
    running.add_user(*BOB)
    seeds = tmp_path_factory.mktemp("seeds")
    upload(running, sdist(seeds, "owned", "1.0"), "owned", "1.0")
    upload(running, wheel(seeds, "owned", "1.0"), "owned", "1.0")
    upload(running, wheel(seeds, "owned", "0.9"), "owned", "0.9")
    running.admin("remove", "owned", "0.9", "owned-0.9-py3-none-any.whl")
    running.revoked = running.token("alice")  # type: ignore[attr-defined]
    running.admin("token", "revoke", "1")
    running.scoped = running.token("alice", project="owned")  # type: ignore[attr-defined]
    yield running
    running.stop()


Build = Callable[[Path, RunningIndex], tuple[list[tuple[str, str]], list[Any], dict[str, str]]]


class Case(NamedTuple):
    id: str
    build: Build
    status: int
    message: str
    exact: bool = True


def file_upload(
    make: Callable[[Path], Path],
    project: str,
    release: str = "1.0",
    auth: dict[str, str] | None = None,
    content_type: str | None = None,
    filename: str | None = None,
    **overrides: str | None,
) -> Build:
    """
    An upload of the file C{make} writes, with twine's fields, some changed.
    """

    def build(tmp: Path, index: RunningIndex) -> Any:
        path = make(tmp)
        fields = upload_fields(path, project, release, **overrides)
        files = [("content", filename or path.name, path.read_bytes(), content_type)]
        return fields, files, basic(*ALICE) if auth is None else auth

    return build


def raw(fields: list[tuple[str, str]], auth: dict[str, str] | None = None) -> Build:
    return lambda tmp, index: (fields, [], basic(*ALICE) if auth is None else auth)


def bare_zip(
    filename: str, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / filename
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path

    return make


def zip_bomb(tmp: Path) -> Path:
    path = tmp / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb-1.0.dist-info/METADATA", metadata_text("bomb", "1.0"))
        archive.writestr("bomb-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        archive.writestr("bomb-1.0.dist-info/RECORD", "")
        archive.writestr("bomb/zeros", bytes(70 * MiB))
    return path


def with_metadata(name: str, version: str = "1.0", **options: Any) -> Callable[[Path], Path]:
    return lambda tmp: wheel(tmp, name, version, **options)


CASES = [
    # Who is asking
    Case("no-credentials", file_upload(with_metadata("anon"), "anon", auth={}), 403, AUTH),
    Case("wrong-password", file_upload(with_metadata("anon"), "anon", auth=basic("alice", "nope")), 403, AUTH),
    Case("unknown-user", file_upload(with_metadata("anon"), "anon", auth=basic("nobody", "x")), 403, AUTH),
    Case(
        "unknown-token",
        file_upload(with_metadata("anon"), "anon", auth=basic("__token__", "cheeseshop-" + "A" * 43)),
        403,
        AUTH,
    ),
    Case(
        "bearer-garbage",
        file_upload(with_metadata("anon"), "anon", auth={"Authorization": "Bearer nonsense"}),
        403,
        AUTH,
    ),
    Case(
        "basic-not-base64", file_upload(with_metadata("anon"), "anon", auth={"Authorization": "Basic !!!"}), 403, AUTH
    ),
    # The form
    Case(
        "field-as-file",
        lambda tmp, index: (
            upload_fields(wheel(tmp, "tuple"), "tuple", "1.0"),
            [
                ("content", "tuple-1.0-py3-none-any.whl", wheel(tmp, "tuple").read_bytes(), None),
                ("summary", "s.txt", b"x", None),
            ],
            basic(*ALICE),
        ),
        400,
        "summary: Should not be a tuple.",
    ),
    Case(
        "protocol-version",
        file_upload(with_metadata("proto"), "proto", protocol_version="2"),
        400,
        "Unknown protocol version.",
    ),
    Case(
        "name-missing",
        file_upload(with_metadata("noname"), "noname", name=None),
        400,
        f"'' is an invalid value for Name. Error: This field is required. {CORE}",
    ),
    Case(
        "name-invalid",
        file_upload(with_metadata("badname"), "-bad-"),
        400,
        "'-bad-' is an invalid value for Name. Error: Start and end with a letter or numeral containing only "
        f"ASCII numeric and '.', '_' and '-'. {CORE}",
    ),
    Case(
        "filetype-missing",
        file_upload(with_metadata("ft"), "ft", filetype=None),
        400,
        "Invalid value for filetype. Error: This field is required.",
    ),
    Case(
        "filetype-egg",
        file_upload(with_metadata("ft"), "ft", filetype="bdist_egg"),
        400,
        "Invalid value for filetype. Error: Use a known file type.",
    ),
    Case(
        "sha256-malformed",
        file_upload(with_metadata("dg"), "dg", sha256_digest="xyz"),
        400,
        "Invalid value for sha256_digest. Error: Use a valid, hex-encoded, SHA256 message digest.",
    ),
    Case(
        "blake2-malformed",
        file_upload(with_metadata("dg"), "dg", blake2_256_digest="abc"),
        400,
        "Invalid value for blake2_256_digest. Error: Use a valid, hex-encoded, BLAKE2 message digest.",
    ),
    Case(
        "pyversion-missing",
        file_upload(with_metadata("pv"), "pv", pyversion=None),
        400,
        "Invalid value for pyversion. Error: Python version is required for binary distribution uploads.",
    ),
    Case(
        "pyversion-sdist",
        file_upload(lambda tmp: sdist(tmp, "pvs"), "pvs", pyversion="py3"),
        400,
        "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist.",
    ),
    Case(
        "no-digest",
        file_upload(with_metadata("nd"), "nd", sha256_digest=None, blake2_256_digest=None),
        400,
        "Error: Include at least one message digest.",
    ),
    Case(
        "no-file",
        raw(
            [
                (":action", "file_upload"),
                ("protocol_version", "1"),
                ("name", "nofile"),
                ("version", "1.0"),
                ("filetype", "sdist"),
                ("sha256_digest", "a" * 64),
            ]
        ),
        400,
        "Upload payload does not have a file.",
    ),
    # The file's name and type
    Case(
        "control-character",
        file_upload(with_metadata("ctl"), "ctl", filename="ctl\x07-1.0-py3-none-any.whl"),
        400,
        "Cannot upload a file with non-printable characters (ordinals 0-31) or the DEL character (ordinal 127) in the name.",
    ),
    Case(
        "backslash",
        file_upload(with_metadata("slash"), "slash", filename="x\\slash-1.0-py3-none-any.whl"),
        400,
        "Cannot upload a file with '/' or '\\' in the name.",
    ),
    Case(
        "extension-exe",
        file_upload(with_metadata("exe"), "exe", filename="exe-1.0.exe"),
        400,
        "Invalid file extension: Use .tar.gz, .whl or .zip extension. See https://www.python.org/dev/peps/pep-0527 "
        "and https://peps.python.org/pep-0715/ for more information",
    ),
    Case(
        "extension-filetype",
        file_upload(with_metadata("mix"), "mix", filetype="sdist", pyversion="source"),
        400,
        "Invalid file extension: Extension .whl is invalid for filetype sdist. See https://www.python.org/dev/peps/pep-0527 for more information.",
    ),
    Case(
        "image-part",
        file_upload(with_metadata("img"), "img", content_type="image/png"),
        400,
        "Invalid distribution file.",
    ),
    # Digests
    Case(
        "sha256-mismatch",
        file_upload(with_metadata("mm"), "mm", sha256_digest="0" * 64),
        400,
        "The digest supplied does not match a digest calculated from the uploaded file.",
    ),
    Case(
        "md5-mismatch",
        file_upload(with_metadata("mm"), "mm", md5_digest="0" * 32),
        400,
        "The digest supplied does not match a digest calculated from the uploaded file.",
    ),
    Case(
        "blake2b-512-mismatch",
        file_upload(with_metadata("mm"), "mm", blake2_256_digest="0" * 128),
        400,
        "The digest supplied does not match a digest calculated from the uploaded file.",
    ),
    # The archive
    Case(
        "not-a-zip",
        file_upload(lambda tmp: _write(tmp / "nz-1.0-py3-none-any.whl", b"nope"), "nz"),
        400,
        "Invalid distribution file. File is not a zipfile",
    ),
    Case(
        "not-a-tar",
        file_upload(lambda tmp: _write(tmp / "nt-1.0.tar.gz", b"nope"), "nt"),
        400,
        "Invalid distribution file. File is not a tarfile",
    ),
    Case(
        "wheel-without-WHEEL",
        file_upload(bare_zip("nw-1.0-py3-none-any.whl", {"nw-1.0.dist-info/METADATA": b"x"}), "nw"),
        400,
        "Invalid distribution file. WHEEL not found at nw-1.0.dist-info/WHEEL",
    ),
    Case(
        "wheel-without-RECORD",
        file_upload(with_metadata("nr", record=False), "nr"),
        400,
        "Wheel 'nr-1.0-py3-none-any.whl' does not contain the required RECORD file: nr-1.0.dist-info/RECORD",
    ),
    Case(
        "wheel-without-METADATA",
        file_upload(
            bare_zip("nm-1.0-py3-none-any.whl", {"nm-1.0.dist-info/WHEEL": b"x", "nm-1.0.dist-info/RECORD": b""}), "nm"
        ),
        400,
        "Wheel 'nm-1.0-py3-none-any.whl' does not contain the required METADATA file: nm-1.0.dist-info/METADATA",
    ),
    Case(
        "sdist-two-tops",
        file_upload(bare_zip("tops-1.0.zip", {"a/PKG-INFO": b"x", "b/setup.py": b"x"}), "tops"),
        400,
        "Invalid distribution file. Incorrect number of top-level directories in sdist",
    ),
    Case(
        "sdist-without-PKG-INFO",
        file_upload(bare_zip("npi-1.0.zip", {"npi-1.0/setup.py": b"x"}), "npi"),
        400,
        "Invalid distribution file. PKG-INFO not found at npi-1.0/PKG-INFO",
    ),
    Case(
        "zip-bomb",
        file_upload(zip_bomb, "bomb"),
        400,
        "Invalid distribution file. File exceeds compression ratio of 50",
    ),
    Case(
        "bzip2-zip",
        file_upload(bare_zip("bz-1.0-py3-none-any.whl", {"bz-1.0.dist-info/WHEEL": b"x"}, zipfile.ZIP_BZIP2), "bz"),
        400,
        "Invalid distribution file. File does not use a supported compression type",
    ),
    Case(
        "too-large",
        file_upload(with_metadata("big", payload=os.urandom(3 * MiB)), "big"),
        400,
        "File too large. Limit for this index is 2 MB.",
    ),
    # The metadata
    Case(
        "local-version",
        file_upload(with_metadata("lv", "1.0+local"), "lv", "1.0+local"),
        400,
        "The use of local versions in '1.0+local' is not allowed. See "
        "https://packaging.python.org/specifications/version-specifiers/#local-version-identifiers for more information.",
    ),
    Case(
        "metadata-version",
        file_upload(with_metadata("mv", metadata_version="2.0"), "mv"),
        400,
        f"'2.0' is not a valid metadata version. {CORE}",
    ),
    Case(
        "classifier-unknown",
        file_upload(with_metadata("cl", extra_headers=["Classifier: Foo :: Bar"]), "cl"),
        400,
        f"'Foo :: Bar' is not a valid classifier. {CORE}",
    ),
    Case(
        "classifier-deprecated",
        file_upload(with_metadata("cd", extra_headers=["Classifier: Natural Language :: Ukranian"]), "cd"),
        400,
        "The classifier 'Natural Language :: Ukranian' has been deprecated, use one of ['Natural Language :: Ukrainian'] "
        f"instead. {CORE}",
    ),
    Case(
        "classifier-too-new",
        file_upload(
            with_metadata("cn", metadata_version="1.0", extra_headers=["Classifier: Framework :: Twisted"]), "cn"
        ),
        400,
        f"classifier introduced in metadata version 1.1, not 1.0. {CORE}",
    ),
    Case(
        "email",
        file_upload(with_metadata("em", extra_headers=["Author-email: not-an-email"]), "em"),
        400,
        "'not-an-email' is not a valid email address: ",
        exact=False,
    ),
    Case(
        "url",
        file_upload(with_metadata("url", extra_headers=["Home-page: ftp://example.org/x"]), "url"),
        400,
        f"'ftp://example.org/x' is not a valid url. {CORE}",
    ),
    Case(
        "project-url-label",
        file_upload(with_metadata("pu", extra_headers=["Project-URL: " + "L" * 33 + ", https://example.org"]), "pu"),
        400,
        f"'{'L' * 33}' must be 32 characters or less. {CORE}",
    ),
    Case(
        "direct-dependency",
        file_upload(with_metadata("dd", requires_dist=["other @ https://example.org/other-1.0.tar.gz"]), "dd"),
        400,
        f"Can't have direct dependency: other @ https://example.org/other-1.0.tar.gz. {CORE}",
    ),
    Case(
        "requirement-invalid",
        file_upload(with_metadata("ri", requires_dist=["other >>> 1"]), "ri"),
        400,
        "'other >>> 1' is invalid for 'requires-dist'",
        exact=False,
    ),
    Case(
        "summary-long",
        file_upload(with_metadata("sl", summary="s" * 513), "sl"),
        400,
        f"'summary' field must be 512 characters or less. {CORE}",
    ),
    Case(
        "description-rst",
        file_upload(with_metadata("rst", description="Broken\n=====\n\n.. raw:: html\n\n   <b>x</b>\n"), "rst"),
        400,
        "The description failed to render in the default format of reStructuredText. "
        "See https://pypi.org/help/#description-content-type for more information.",
    ),
    Case(
        "description-content-type",
        file_upload(with_metadata("dct", description_content_type="text/html"), "dct"),
        400,
        "'description-content-type' must be one of ",
        exact=False,
    ),
    Case(
        "license-and-expression",
        file_upload(
            with_metadata("lic", metadata_version="2.4", extra_headers=["License: MIT", "License-Expression: MIT"]),
            "lic",
        ),
        400,
        f"License is deprecated when License-Expression is present. Only License-Expression should be present. {CORE}",
    ),
    # Names and versions that disagree
    Case(
        "form-name",
        file_upload(with_metadata("agree"), "disagree"),
        400,
        "The name in the upload form ('disagree') is not the name in the distribution's metadata ('agree').",
    ),
    Case(
        "form-version",
        file_upload(with_metadata("agree"), "agree", "2.0"),
        400,
        "The version in the upload form ('2.0') is not the version in the distribution's metadata ('1.0').",
    ),
    Case(
        "wheel-name",
        file_upload(lambda tmp: wheel(tmp, "outside", metadata=metadata_text("inside", "1.0")), "inside"),
        400,
        "Start filename for 'inside' with 'inside'.",
    ),
    Case(
        "wheel-not-normalized",
        file_upload(lambda tmp: wheel(tmp, "Nor.Mal", dist_name="Nor.Mal"), "Nor.Mal"),
        400,
        "Filename 'Nor.Mal-1.0-py3-none-any.whl' should contain the normalized project name 'nor_mal', not 'Nor.Mal'.",
    ),
    Case(
        "wheel-version",
        file_upload(lambda tmp: wheel(tmp, "wv", "1.1", metadata=metadata_text("wv", "1.0")), "wv"),
        400,
        "Version in filename should be '1.0' not '1.1'.",
    ),
    Case(
        "wheel-filename-parts",
        file_upload(lambda tmp: wheel(tmp, "wf"), "wf", filename="wf-1.0.whl"),
        400,
        "Invalid distribution file. Unable to parse name and version from wheel filename",
    ),
    Case(
        "wheel-filename",
        file_upload(lambda tmp: _renamed(wheel(tmp, "wf"), "wf-1.0-py3.whl"), "wf"),
        400,
        "Invalid wheel filename (wrong number of parts): 'wf-1.0-py3'",
    ),
    Case(
        "platform-tag",
        file_upload(lambda tmp: wheel(tmp, "plat", tag="cp311-cp311-linux_x86_64"), "plat", pyversion="cp311"),
        400,
        "Binary wheel 'plat-1.0-cp311-cp311-linux_x86_64.whl' has an unsupported platform tag 'linux_x86_64'.",
    ),
    Case(
        "sdist-filename",
        file_upload(lambda tmp: sdist(tmp, "sdn", filename="sdn.tar.gz", top="sdn-1.0"), "sdn"),
        400,
        "Invalid source distribution filename: sdn.tar.gz",
    ),
    Case(
        "sdist-version",
        file_upload(lambda tmp: sdist(tmp, "sdv", "1.0", filename="sdv-1.1.tar.gz"), "sdv"),
        400,
        "Version in filename should be '1.0' not '1.1'.",
    ),
    # What is already there
    Case(
        "file-exists",
        file_upload(lambda tmp: wheel(tmp, "owned", "1.0", summary="Different bytes"), "owned"),
        400,
        "File already exists ('owned-1.0-py3-none-any.whl', with blake2_256 hash '",
        exact=False,
    ),
    Case(
        "second-sdist",
        file_upload(lambda tmp: _zip_sdist(tmp, "owned", "1.0"), "owned"),
        400,
        "Only one sdist may be uploaded per release.",
    ),
    Case(
        "filename-reuse",
        file_upload(lambda tmp: wheel(tmp, "owned", "0.9", summary="New bytes"), "owned", "0.9"),
        400,
        "This filename was previously used by a file that has since been deleted. Use a different version. "
        "See https://pypi.org/help/#file-name-reuse for more information.",
    ),
    # Permissions
    Case(
        "not-a-maintainer",
        file_upload(with_metadata("owned", "2.0"), "owned", "2.0", auth=basic(*BOB)),
        403,
        "The user 'bob' isn't allowed to upload to project 'owned'. See https://pypi.org/help/#project-name for more information.",
    ),
    Case(
        "scoped-token-elsewhere",
        lambda tmp, index: file_upload(with_metadata("elsewhere"), "elsewhere", auth=basic("__token__", index.scoped))(
            tmp, index
        ),
        403,
        "The given token isn't allowed to upload to project 'elsewhere'. See https://pypi.org/help/#project-name for more information.",
    ),
    Case(
        "revoked-token",
        lambda tmp, index: file_upload(
            with_metadata("owned", "3.0"), "owned", "3.0", auth=basic("__token__", index.revoked)
        )(tmp, index),
        403,
        AUTH,
    ),
    # Other actions
    Case(
        "doc-upload",
        raw([(":action", "doc_upload"), ("name", "owned")]),
        410,
        "Uploading documentation is no longer supported, we recommend using https://readthedocs.org/.",
    ),
    Case("unknown-action", raw([(":action", "frobnicate")]), 400, "Unknown action 'frobnicate'."),
    Case("no-action", raw([("name", "x")]), 400, "The request has no :action."),
    Case(
        "password-reset",
        raw([(":action", "password_reset"), ("email", "a@example.org")]),
        403,
        "This index sends no e-mail, so passwords cannot be reset this way; ask the index's administrator "
        "(cheeseshop-admin passwd).",
    ),
    Case(
        "registration-closed",
        raw([(":action", "user"), ("name", "carol"), ("password", "carol-password"), ("email", "c@example.org")]),
        403,
        "Account registration is closed on this index; ask its administrator for an account.",
    ),
    Case(
        "register-without-login",
        raw([(":action", "submit"), ("metadata_version", "1.0"), ("name", "reg"), ("version", "1.0")], auth={}),
        401,
        AUTH,
    ),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _renamed(path: Path, filename: str) -> Path:
    return path.rename(path.parent / filename)


def _zip_sdist(tmp: Path, name: str, version: str) -> Path:
    return bare_zip(f"{name}-{version}.zip", {f"{name}-{version}/PKG-INFO": metadata_text(name, version).encode()})(tmp)


def test_there_are_at_least_forty_cases() -> None:
    """
    The table covers at least forty ways to be refused.
    """
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_refusal(case: Case, index: RunningIndex, tmp_path: Path) -> None:
    """
    The request is refused with the case's status, and its message is both
    the reason phrase and the body; nothing is stored.
    """
    fields, files, headers = case.build(tmp_path, index)
    before = sorted(os.walk(os.path.join(index.data_dir, "packages")))
    response = send(index, fields, files, headers)
    assert response.status == case.status, response
    if case.exact:
        assert response.reason == case.message
        assert response.text == f"{case.status} {case.message}\n"
    else:
        assert response.reason.startswith(case.message), response.reason
        assert response.text.startswith(f"{case.status} {case.message}")
    if case.status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="pypi"'
    assert sorted(os.walk(os.path.join(index.data_dir, "packages"))) == before


def test_refusal_as_json(index: RunningIndex, tmp_path: Path) -> None:
    """
    A client that asks for JSON gets the message as PyPI's JSON error body.
    """
    fields, files, headers = file_upload(with_metadata("js"), "js", protocol_version="2")(tmp_path, index)
    content_type, body = multipart(fields, files)
    response = post_form(index.upload_url, content_type, body, {**headers, "Accept": "application/json"})
    assert response.status == 400
    assert json.loads(response.body) == {
        "message": "Unknown protocol version.",
        "code": "400 Unknown protocol version.",
        "title": "Bad Request",
    }


def test_staging_is_empty_after_refusals(index: RunningIndex) -> None:
    """
    No refused upload leaves a staged file behind.
    """
    for instance in os.listdir(os.path.join(index.data_dir, "tmp")):
        assert os.listdir(os.path.join(index.data_dir, "tmp", instance)) == [".lock"]


@pytest.mark.parametrize(
    "path, status",
    [
        ("simple/", 405),
        ("simple/anything/", 405),
        ("pypi/anything/json", 404),
        ("packages/aa/bb/cc/x.whl", 405),
        ("RPC2", 200),  # an XML-RPC fault
        ("legacy/?:action=doap", 400),
    ],
)
def test_multipart_bodies_elsewhere_leave_nothing_staged(
    index: RunningIndex, tmp_path: Path, path: str, status: int
) -> None:
    """
    A multipart body with a file, posted anywhere but an upload, is answered
    and leaves no staged file behind.
    """
    content_type, body = multipart([(":action", "doap")], [("content", "x-1.0.tar.gz", b"x" * 100_000, None)])
    response = post_form(index.url + path, content_type, body, basic(*ALICE))
    assert response.status == status, response
    for instance in os.listdir(os.path.join(index.data_dir, "tmp")):
        assert os.listdir(os.path.join(index.data_dir, "tmp", instance)) == [".lock"]
