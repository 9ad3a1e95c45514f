# -*- test-case-name: tests.test_upload -*-
"""
The daemon's HTTP site and request: multipart bodies are parsed as they
arrive, with file parts streamed into the file store.

twisted.web would otherwise spool the body and then parse the whole of it in
memory (and drop the file part's name).  Here, when the headers announce
C{multipart/form-data}, the body never reaches twisted.web's own form
parsing: an L{UploadReceiver} takes each chunk, writes the C{content} part to
a staged file (hashing as it goes) and keeps the small text fields.  An
upload over the size limit is refused as soon as that is known, from its
C{Content-Length} or from the bytes received, and nothing more of it is kept.
"""

from __future__ import annotations

import io
import time
from typing import Any

from twisted.internet import tcp
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.web.http import HTTPChannel, datetimeToString
from twisted.web.server import Request, Site
from twisted.web.server import version as twisted_web_version

from ..errors import CheeseshopError, InvalidRequest, TooLarge
from ..filestore import FileStore, StagedFile
from ..upload import ContentPart, UploadForm
from .errors import reason_phrase
from .multipart import MultipartError, MultipartParser, PartInfo, boundary_of

log = Logger()

MiB = 1024 * 1024

# Room for the text fields (metadata, long descriptions) beside the file.
FORM_FIELDS_LIMIT = 8 * MiB

# The largest body of any other request (an XML-RPC call, a form), as PyPI's
# XML-RPC limit: these are read whole.
OTHER_BODY_LIMIT = 10 * MiB

# After refusing an upload mid-body, read (and drop) what the client is still
# sending for at most this long, so that it gets to read the refusal instead
# of a connection reset; then close.
LINGER_SECONDS = 5.0


def too_large(limit: int) -> TooLarge:
    size = f"{limit // MiB} MB" if limit % MiB == 0 else f"{limit} bytes"
    return TooLarge(f"File too large. Limit for this index is {size}.")


class _Buffer:
    """
    A text field's bytes, up to the space left for fields.
    """

    def __init__(self, receiver: UploadReceiver) -> None:
        self.data = bytearray()
        self._receiver = receiver

    def write(self, data: bytes) -> None:
        self._receiver.field_bytes += len(data)
        if self._receiver.field_bytes > FORM_FIELDS_LIMIT:
            raise _Refused(InvalidRequest("The upload's form fields are too large."))
        self.data += data


class _Discard:
    def write(self, data: bytes) -> None:
        pass


class _Capped:
    """
    The file part: into the staged file, up to the size limit.
    """

    def __init__(self, staged: StagedFile, limit: int) -> None:
        self.staged = staged
        self._limit = limit

    def write(self, data: bytes) -> None:
        if self.staged.size + len(data) > self._limit:
            raise _Refused(too_large(self._limit))
        self.staged.write(data)


class _Refused(Exception):
    def __init__(self, error: CheeseshopError) -> None:
        self.error = error


class UploadReceiver:
    """
    Takes a multipart body chunk by chunk and builds an L{UploadForm}.

    :ivar error: the first problem found; once set, nothing more is kept.
    """

    def __init__(self, boundary: bytes, files: FileStore, max_file_size: int) -> None:
        self.form = UploadForm()
        self.error: CheeseshopError | None = None
        self.field_bytes = 0
        self._files = files
        self._max_file_size = max_file_size
        self._parser = MultipartParser(boundary, self)
        self._buffers: dict[int, _Buffer] = {}

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            self._parser.feed(data)
        except _Refused as refused:
            self._fail(refused.error)
        except MultipartError as e:
            self._fail(InvalidRequest(f"The request body is not valid multipart/form-data: {e}"))

    def finish(self) -> None:
        if self.error is None:
            try:
                self._parser.finish()
            except MultipartError as e:
                self._fail(InvalidRequest(f"The request body is not valid multipart/form-data: {e}"))

    def _fail(self, error: CheeseshopError) -> None:
        self.error = error
        self.form.discard()

    def part_started(self, part: PartInfo) -> Any:
        if part.filename is None:
            buffer = _Buffer(self)
            self._buffers[id(part)] = buffer
            return buffer
        if part.name == "content" and self.form.content is None:
            staged = self._files.stage()
            self.form.content = ContentPart(part.filename, part.content_type, staged)
            return _Capped(staged, self._max_file_size)
        self.form.file_fields.append(part.name)
        return _Discard()

    def part_finished(self, part: PartInfo) -> None:
        buffer = self._buffers.pop(id(part), None)
        if buffer is None:
            return
        try:
            value = bytes(buffer.data).decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(InvalidRequest(f"{part.name}: the value is not valid UTF-8.")) from None
        self.form.add(part.name, value)


class IndexRequest(Request):
    """
    A request whose multipart body is parsed as it arrives, and which the
    simple pages can answer on a fast path.

    :ivar upload: the receiver of a multipart body, else C{None}.
    """

    upload: UploadReceiver | None = None
    _refused = False
    _linger: IDelayedCall | None = None
    _body_size = 0

    def process(self) -> None:
        # The fast path for the hottest requests (see
        # CachedPageResource.respond_at_once): it needs the traversal state
        # twisted.web would have set; paths with escapes take the long way.
        site: IndexSite = self.channel.site
        if site.simple is not None and self.path.startswith(b"/simple/") and b"%" not in self.path:
            self.site = site
            self.prepath = [b"simple"]
            self.postpath = self.path[8:].split(b"/")
            if self.method in (b"GET", b"HEAD") and site.simple.respond_at_once(self):
                return
        super().process()

    def respond_prepared(self, head: bytes, body: bytes) -> None:
        """
        Send a whole 200 answer in one write, its header lines ready-made,
        and finish the request the way twisted.web does.
        """
        connection = self.responseHeaders.getRawHeaders(b"connection")
        parts = [self.clientproto, b" 200 OK\r\n", _server_and_date(), head]
        if connection:
            parts.append(b"Connection: " + connection[0] + b"\r\n")
        parts += [b"\r\n", body]
        self.startedWriting = 1
        self.sentLength = len(body)
        _write_now(self.channel.transport, b"".join(parts))
        self.finish()

    def gotLength(self, length: int | None) -> None:
        content_type = self.requestHeaders.getRawHeaders(b"content-type", [b""])[0]
        # Most requests are GETs with no body: skip the header parsing.  Only
        # the legacy API's POSTs stream a multipart body (and its file) to
        # disk; elsewhere it is an ordinary body, under the ordinary limit.
        if not content_type[:10].lower().startswith(b"multipart/") or not _posts_to_legacy_api(self.channel):
            if length is not None and length > OTHER_BODY_LIMIT:
                self._refuse(TooLarge(f"The request body is larger than {OTHER_BODY_LIMIT // MiB} MiB."))
                return
            super().gotLength(length)
            return
        boundary = boundary_of(content_type.decode("latin-1"))
        if boundary is None:
            super().gotLength(length)
            return
        # twisted.web parses no form from an empty body: its own multipart
        # parsing never runs.
        self.content = io.BytesIO()
        site: IndexSite = self.channel.site
        if length is not None and length > site.max_upload_size + FORM_FIELDS_LIMIT:
            self._refuse(too_large(site.max_upload_size))
            return
        self.upload = UploadReceiver(boundary, site.files, site.max_upload_size)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        if self.upload is None:
            self._body_size += len(data)
            if self._body_size > OTHER_BODY_LIMIT:
                self._refuse(TooLarge(f"The request body is larger than {OTHER_BODY_LIMIT // MiB} MiB."))
                return
            super().handleContentChunk(data)
            return
        self.upload.feed(data)
        if isinstance(self.upload.error, TooLarge):
            self._refuse(self.upload.error)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            # The refusal went out already; the rest of the body was dropped.
            self._close_now()
            return
        if self.upload is not None:
            self.upload.finish()
            # Whatever answers, the staged file goes with the request (an
            # upload takes it out of the form first).
            self.notifyFinish().addBoth(self._discard_form)
        super().requestReceived(command, path, version)

    def _discard_form(self, result: object) -> None:
        if self.upload is not None:
            self.upload.form.discard()

    def connectionLost(self, reason: Any) -> None:
        # A client gone mid-body leaves nothing behind.
        if self.upload is not None:
            self.upload.form.discard()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def _refuse(self, error: CheeseshopError) -> None:
        """
        Answer now, before the body is read: 400 with the message in the
        reason phrase and the body, then close.
        """
        self._refused = True
        if self.upload is not None:
            self.upload.form.discard()
        code = 400
        body = f"{code} {error.message}\n".encode()
        head = (
            b"HTTP/1.1 %d %s\r\n" % (code, reason_phrase(error.message))
            + b"Content-Type: text/plain; charset=utf-8\r\n"
            + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        log.info("refused an upload before reading it: {message}", message=error.message)
        self.channel.transport.write(head + body)
        self._linger = self.channel.site.reactor.callLater(LINGER_SECONDS, self._close_now)

    def _close_now(self) -> None:
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._linger = None
        transport = self.channel.transport if self.channel is not None else None
        if transport is not None:
            transport.loseConnection()


# Where the legacy API takes uploads (see IndexApp.legacy_api).
_LEGACY_API_PATHS = frozenset([b"/", b"/legacy", b"/legacy/", b"/pypi", b"/pypi/"])


def _posts_to_legacy_api(channel: Any) -> bool:
    """
    Whether the request whose headers C{channel} is reading is a POST to the
    legacy API.  Its request line is known before its headers end, but
    twisted.web keeps it on the channel until then.
    """
    command = getattr(channel, "_command", None)
    path = getattr(channel, "_path", b"")
    return command == b"POST" and path.split(b"?", 1)[0] in _LEGACY_API_PATHS


def _write_now(transport: Any, data: bytes) -> None:
    """
    Write C{data} to a plain TCP connection's socket at once when nothing is
    queued before it; otherwise (or for what the socket does not take) hand
    it to the transport.

    twisted.web's transport would register the socket for writing and send
    on the next reactor iteration, unregistering it afterwards: two epoll
    calls per answer, a seventh of a cached page's cost.
    """
    if (
        type(transport) is tcp.Server
        and not transport.TLS
        and not transport.dataBuffer
        and not transport._tempDataBuffer
        and transport.connected
        and not transport.disconnecting
    ):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # the transport finds out about the connection itself
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


_date_line: tuple[int, bytes] = (0, b"")


def _server_and_date() -> bytes:
    """
    The Server and Date header lines, the date formatted once a second.
    """
    global _date_line
    now = int(time.time())
    if _date_line[0] != now:
        _date_line = (now, b"Server: " + twisted_web_version + b"\r\nDate: " + datetimeToString(now) + b"\r\n")
    return _date_line[1]


class IndexChannel(HTTPChannel):
    """
    An HTTP connection that learns its own address once: twisted.web asks for
    it with every request (a getsockname call each time), and it never
    changes.
    """

    _host: Any = None

    def getHost(self) -> Any:
        if self._host is None:
            self._host = super().getHost()
        return self._host


class IndexSite(Site):
    """
    The daemon's HTTP site: its requests stream uploads into C{files}.

    Access logging costs a sixth of a cached page's time when it goes through
    twisted.logger, so it is off unless asked for: to a file of its own
    (twisted.web writes combined-format lines to it directly), or with
    C{"-"} through the daemon's log.
    """

    requestFactory = IndexRequest
    protocol = IndexChannel

    def __init__(
        self, resource: Any, files: FileStore, max_upload_size: int, reactor: Any, access_log: str | None = None
    ) -> None:
        log_path = access_log if access_log not in (None, "-") else None
        super().__init__(resource, logPath=log_path, reactor=reactor)
        self.files = files
        self.max_upload_size = max_upload_size
        self._access_logging = access_log is not None
        # The simple pages' resource, for the fast path (set by wiring).
        self.simple: Any = None

    def log(self, request: Request) -> None:
        if self._access_logging:
            super().log(request)


def upload_form(request: Request) -> UploadForm:
    """
    The legacy API form of a request: its streamed multipart body, else its
    query string and urlencoded body.

    :raises CheeseshopError: when the body could not be received.
    """
    upload = getattr(request, "upload", None)
    if upload is not None:
        if upload.error is not None:
            raise upload.error
        form: UploadForm = upload.form
    else:
        form = UploadForm()
        for key, values in (request.args or {}).items():
            for value in values:
                form.add(key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
        return form
    # ':action' may come in the query string too.
    for key, values in (request.args or {}).items():
        name = key.decode("utf-8", "replace")
        if name not in form.fields:
            for value in values:
                form.add(name, value.decode("utf-8", "replace"))
    return form
