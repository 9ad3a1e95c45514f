# -*- test-case-name: tests.test_multipart -*-
"""
An incremental C{multipart/form-data} parser, fed as the body arrives.

It takes what the upload clients really send:

 - CRLF framing (twine, uv, distutils C{upload}) and LF-only framing
   (distutils C{register}); the framing is read from the first boundary line;
 - parts with or without their own C{Content-Type};
 - a C{charset} parameter after the boundary (distutils C{register}).

Part bodies go to sinks chosen by the caller as each part begins, so a file
part can be written and hashed on its way to disk and never held in memory.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Protocol

from attrs import frozen

# Header blocks larger than this are not form parts.
MAX_HEADER_BYTES = 16 * 1024

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(rb"\r?\n")


class MultipartError(ValueError):
    """
    The body is not well-formed C{multipart/form-data}.
    """


@frozen
class PartInfo:
    """
    The headers of one part.
    """

    name: str
    filename: str | None
    content_type: str | None


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class PartHandler(Protocol):
    """
    Where parts go.
    """

    def part_started(self, part: PartInfo) -> Sink:
        """
        A part begins; return where its body is to be written.
        """

    def part_finished(self, part: PartInfo) -> None:
        """
        The part's body is complete.
        """


def boundary_of(content_type: str) -> bytes | None:
    """
    The boundary of a C{multipart/form-data} content type, or C{None} if the
    type is something else.
    """
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        return None
    return boundary.encode("latin-1", "replace")


def _parse_headers(block: bytes) -> PartInfo:
    message = Message()
    for line in _LINE_SPLIT.split(block):
        if not line:
            continue
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise MultipartError(f"malformed part header {line[:60]!r}")
        message[name.strip()] = value.strip()
    if message.get_content_disposition() != "form-data":
        raise MultipartError("a part without Content-Disposition: form-data")
    name = message.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise MultipartError("a part without a name")
    filename = message.get_filename()
    content_type = message.get("content-type")
    return PartInfo(name, filename, content_type.strip() if content_type else None)


class MultipartParser:
    """
    Feed it the body with L{feed}, then call L{finish}.
    """

    def __init__(self, boundary: bytes, handler: PartHandler) -> None:
        self._dash_boundary = b"--" + boundary
        self._handler = handler
        self._buffer = b""
        self._state = "preamble"
        self._delimiter = b""
        self._part: PartInfo | None = None
        self._sink: Sink | None = None

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> None:
        if self._state == "done":
            return  # the epilogue is ignored
        self._buffer += data
        while self._step():
            pass

    def finish(self) -> None:
        """
        The body ended.

        :raises MultipartError: if it ended before the closing boundary.
        """
        if self._state != "done":
            raise MultipartError("the body ended before the closing boundary")

    def _step(self) -> bool:
        """
        Make what progress the buffer allows; C{True} if more may follow.
        """
        if self._state == "preamble":
            return self._find_first_boundary()
        if self._state == "after-boundary":
            return self._after_boundary()
        if self._state == "headers":
            return self._read_headers()
        if self._state == "body":
            return self._read_body()
        return False

    def _find_first_boundary(self) -> bool:
        start = 0
        while True:
            index = self._buffer.find(self._dash_boundary, start)
            if index < 0:
                # Keep only what could be the start of the boundary.
                keep = len(self._dash_boundary) + 1
                self._buffer = self._buffer[-keep:]
                return False
            if index == 0 or self._buffer[index - 1 : index] == b"\n":
                self._buffer = self._buffer[index + len(self._dash_boundary) :]
                self._state = "after-boundary"
                return True
            start = index + 1

    def _after_boundary(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer.startswith(b"--"):
            self._state = "done"
            self._buffer = b""
            return False
        # Transport padding may follow the boundary, then the line ends.
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > 256:
                raise MultipartError("garbage after a boundary")
            return False
        line = self._buffer[:end]
        if line.rstrip(b" \t\r"):
            raise MultipartError("garbage after a boundary")
        if not self._delimiter:
            # The first boundary line tells how lines end in this body.
            newline = b"\r\n" if line.endswith(b"\r") else b"\n"
            self._delimiter = newline + self._dash_boundary
        self._buffer = self._buffer[end + 1 :]
        self._state = "headers"
        return True

    def _read_headers(self) -> bool:
        match = _HEADER_END.search(self._buffer)
        if match is None:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise MultipartError("a part's headers are too long")
            return False
        self._part = _parse_headers(self._buffer[: match.start()])
        self._buffer = self._buffer[match.end() :]
        self._sink = self._handler.part_started(self._part)
        self._state = "body"
        return True

    def _read_body(self) -> bool:
        assert self._sink is not None and self._part is not None
        index = self._buffer.find(self._delimiter)
        if index < 0:
            # Everything but a possible partial delimiter is part body.
            safe = len(self._buffer) - len(self._delimiter) + 1
            if safe > 0:
                self._sink.write(self._buffer[:safe])
                self._buffer = self._buffer[safe:]
            return False
        if index:
            self._sink.write(self._buffer[:index])
        self._buffer = self._buffer[index + len(self._delimiter) :]
        part, self._part, self._sink = self._part, None, None
        self._handler.part_finished(part)
        self._state = "after-boundary"
        return True
