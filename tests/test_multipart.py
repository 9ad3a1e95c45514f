"""
The streaming multipart parser, fed the bodies real clients send, in chunks
of every size.
"""

from __future__ import annotations

import pytest

from twistedindex.web.multipart import MultipartError, MultipartParser, PartInfo, boundary_of

# The fixed boundary stdlib distutils uses for register and upload.
DISTUTILS = "--------------GHSKFJDLGDS7543FJKLFHRE75642756743254"


class Collect:
    def __init__(self) -> None:
        self.parts: list[tuple[PartInfo, bytes]] = []
        self._current = bytearray()

    def part_started(self, part: PartInfo) -> Collect:
        self._current = bytearray()
        return self

    def write(self, data: bytes) -> None:
        self._current += data

    def part_finished(self, part: PartInfo) -> None:
        self.parts.append((part, bytes(self._current)))


def parse(body: bytes, boundary: str, chunk: int) -> list[tuple[PartInfo, bytes]]:
    collect = Collect()
    parser = MultipartParser(boundary.encode(), collect)
    for start in range(0, len(body), chunk):
        parser.feed(body[start : start + chunk])
    parser.finish()
    return collect.parts


BINARY = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n\n"


def distutils_register_body() -> bytes:
    """
    What distutils register sends: LF-only lines, no part Content-Type.
    """
    body = b""
    for name, value in ((":action", b"submit"), ("name", b"demo"), ("keywords", b"a"), ("keywords", b"b")):
        body += f'\n--{DISTUTILS}\nContent-Disposition: form-data; name="{name}"\n\n'.encode() + value
    return body + f"\n--{DISTUTILS}--\n".encode()


def distutils_upload_body() -> bytes:
    """
    What distutils upload sends: CRLF lines, a file part with no type.
    """
    body = f'\r\n--{DISTUTILS}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload'.encode()
    body += f'\r\n--{DISTUTILS}\r\nContent-Disposition: form-data; name="content"; filename="demo-1.0.tar.gz"\r\n\r\n'.encode()
    return body + BINARY + f"\r\n--{DISTUTILS}--\r\n".encode()


def twine_body() -> bytes:
    """
    What twine sends: CRLF, starting with the boundary, a typed file part.
    """
    boundary = "abc123"
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\ndemo\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="demo-1.0-py3-none-any.whl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + BINARY
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000, 1 << 20])
def test_lf_only_body(chunk: int) -> None:
    """
    distutils register's LF-only body gives every field, repeated ones too.
    """
    parts = parse(distutils_register_body(), DISTUTILS, chunk)
    assert [(p.name, p.filename, p.content_type, data) for p, data in parts] == [
        (":action", None, None, b"submit"),
        ("name", None, None, b"demo"),
        ("keywords", None, None, b"a"),
        ("keywords", None, None, b"b"),
    ]


@pytest.mark.parametrize("chunk", [1, 3, 100, 1 << 20])
def test_crlf_body_with_untyped_file(chunk: int) -> None:
    """
    distutils upload's file part, with no Content-Type, comes through byte
    for byte, even when it holds lines that look like boundaries.
    """
    parts = parse(distutils_upload_body(), DISTUTILS, chunk)
    assert [(p.name, p.filename, p.content_type) for p, _ in parts] == [
        (":action", None, None),
        ("content", "demo-1.0.tar.gz", None),
    ]
    assert parts[1][1] == BINARY


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_twine_body(chunk: int) -> None:
    """
    twine's body, which starts with the boundary, gives a typed file part.
    """
    parts = parse(twine_body(), "abc123", chunk)
    assert parts[1][0] == PartInfo("content", "demo-1.0-py3-none-any.whl", "application/octet-stream")
    assert parts[1][1] == BINARY


def test_boundary_with_charset() -> None:
    """
    The boundary is found even with a charset parameter after it (distutils
    register), and only for multipart/form-data.
    """
    assert boundary_of(f"multipart/form-data; boundary={DISTUTILS}; charset=utf-8") == DISTUTILS.encode()
    assert boundary_of('multipart/form-data; boundary="quoted value"') == b"quoted value"
    assert boundary_of("application/x-www-form-urlencoded") is None
    assert boundary_of("multipart/form-data") is None


@pytest.mark.parametrize(
    "body, message",
    [
        (b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nvalue', "the body ended before the closing boundary"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--b--\r\n", "a part without Content-Disposition: form-data"),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n--b--\r\n", "a part without a name"),
        (b"--b\r\nno colon here\r\n\r\nvalue\r\n--b--\r\n", "malformed part header"),
        (b"--bgarbage\r\n", "garbage after a boundary"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    """
    A malformed body is refused with a message saying what is wrong.
    """
    with pytest.raises(MultipartError, match=message):
        parse(body, "b", 1 << 20)
