# -*- test-case-name: tests.test_mirror_client -*-
"""
The mirror's HTTP client, over a persistent connection pool, with the
limits a long-running replica needs: treq for XML-RPC calls, and a bare
Agent for the many pages and files.

Every response body is read with a size limit and an idle timeout (an
upstream that stops sending is given up on, not waited for), and a file is
streamed to the file store while its digests are computed.  Everything that
goes wrong ends as an L{UpstreamError} with a one-line message naming the URL.
"""

from __future__ import annotations

import hmac
import xmlrpc.client
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urljoin

from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeout
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from twisted.web.client import (
    URI,
    Agent,
    ContentDecoderAgent,
    GzipDecoder,
    HTTPConnectionPool,
    ResponseDone,
    _HTTP11ClientFactory,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IResponse
from zope.interface import implementer

from .. import __version__
from ..filestore import StagedFile

USER_AGENT = f"twistedindex-mirror/{__version__}"

# Seconds to wait for a connection, for a response's head, and for the next
# piece of a body before giving up on the upstream.
CONNECT_TIMEOUT = 10.0
RESPONSE_TIMEOUT = 60.0
IDLE_TIMEOUT = 60.0

# The largest page (JSON, simple page, XML-RPC answer) read whole.  PyPI's
# biggest JSON API pages are tens of MiB.
PAGE_LIMIT = 256 * 1024 * 1024

SERIAL_HEADER = "X-PyPI-Last-Serial"

MAX_REDIRECTS = 5


class UpstreamError(Exception):
    """
    The upstream could not give what was asked.  The message is one line.
    """


class NotFound(UpstreamError):
    """
    The upstream answered 404 (or 410): what was asked is not there.
    """


class _Body(Protocol):
    """
    Hands a response body's pieces to C{sink}, up to C{limit} bytes, and
    fails if none arrives for C{idle} seconds.
    """

    def __init__(self, url: str, sink: Callable[[bytes], None], limit: int, idle: float, reactor: Any) -> None:
        self.done: Deferred[None] = Deferred()
        self._url = url
        self._sink = sink
        self._limit = limit
        self._received = 0
        self._idle = idle
        self._reactor = reactor
        self._timer = reactor.callLater(idle, self._stalled)
        self._failure: Failure | None = None

    def dataReceived(self, data: bytes) -> None:  # noqa: N802  (Twisted's name)
        if self._failure is not None:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._abort(UpstreamError(f"{self._url}: more than {self._limit} bytes"))
            return
        try:
            self._sink(data)
        except Exception as e:
            self._abort(e)
            return
        self._timer.reset(self._idle)

    def _stalled(self) -> None:
        self._abort(UpstreamError(f"{self._url}: nothing received for {self._idle:g} seconds"))

    def _abort(self, error: Exception) -> None:
        self._failure = Failure(error)
        if self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        if self._timer.active():
            self._timer.cancel()
        if self._failure is not None:
            self.done.errback(self._failure)
        elif reason.check(ResponseDone, PotentialDataLoss):
            # PotentialDataLoss: a body with no length, read to its close; a
            # short one is caught by the caller's size and hash checks.
            self.done.callback(None)
        else:
            self.done.errback(UpstreamError(f"{self._url}: the body was cut off ({reason.getErrorMessage()})"))


class _QuietFactory(_HTTP11ClientFactory):  # type: ignore[misc]
    noisy = False  # no "Starting factory" line per connection


class _Pool(HTTPConnectionPool):
    _factory = _QuietFactory


class UpstreamClient:
    """
    HTTP requests to one upstream, over kept-alive connections.

    :ivar connections: how many connections it keeps: the callers' bound
        on requests at once.
    :ivar reactor: the reactor it runs on.
    """

    def __init__(self, base_url: str, reactor: Any, connections: int = 8) -> None:
        self.base_url = base_url.rstrip("/")
        self.connections = connections
        self.reactor = reactor
        self._pool = _Pool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = connections
        self._pool.retryAutomatically = True
        # treq for XML-RPC calls, which are few.
        self._http = HTTPClient(Agent(reactor, connectTimeout=CONNECT_TIMEOUT, pool=self._pool))
        # Pages and files go through a bare Agent over the same pool: a
        # mirror fetches tens of thousands, and treq's layers (URL parsing,
        # cookies) cost more CPU than the transfer itself (measured:
        # bench/mirror_bench.py).  Endpoints are made once.  Pages may come
        # gzipped (PyPI's JSON pages shrink several times over).
        self._files = Agent.usingEndpointFactory(reactor, _Endpoints(reactor), pool=self._pool)
        self._pages = ContentDecoderAgent(self._files, [(b"gzip", GzipDecoder)])

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"

    async def close(self) -> None:
        await self._pool.closeCachedConnections()

    async def _request(self, method: str, url: str, **kwargs: Any) -> IResponse:
        headers = {"User-Agent": [USER_AGENT], **kwargs.pop("headers", {})}
        try:
            response: IResponse = await self._http.request(
                method, url, headers=headers, unbuffered=True, timeout=RESPONSE_TIMEOUT, **kwargs
            )
        except CancelledError:
            raise UpstreamError(f"{url}: no answer in {RESPONSE_TIMEOUT:g} seconds") from None
        except Exception as e:
            raise UpstreamError(f"{url}: {_describe(e)}") from None
        await self._check(response, url, (200, 304))
        return response

    async def _check(self, response: IResponse, url: str, expected: tuple[int, ...]) -> None:
        """
        Raise L{NotFound} or L{UpstreamError}, the body read and dropped,
        unless the response's status is one of C{expected}.
        """
        if response.code in expected:
            return
        await self._drain(response, url)
        if response.code in (404, 410):
            raise NotFound(f"{url}: {response.code}")
        raise UpstreamError(f"{url}: HTTP {response.code} {response.phrase.decode('latin-1', 'replace')}")

    async def _drain(self, response: IResponse, url: str) -> None:
        try:
            await self._read(response, url, lambda data: None, PAGE_LIMIT)
        except UpstreamError:
            pass

    async def _read(self, response: IResponse, url: str, sink: Callable[[bytes], None], limit: int) -> None:
        body = _Body(url, sink, limit, IDLE_TIMEOUT, self.reactor)
        response.deliverBody(body)
        await body.done

    async def page(self, path: str, accept: str | None = None, etag: str | None = None) -> Page:
        """
        GET a page and read it whole.  With C{etag}, a 304 answer gives a
        L{Page} with no body.
        """
        url = self.url(path)
        headers = Headers({b"User-Agent": [USER_AGENT.encode()]})
        if accept:
            headers.setRawHeaders(b"Accept", [accept.encode("utf-8")])
        if etag:
            headers.setRawHeaders(b"If-None-Match", [etag.encode("utf-8")])
        response = await self._get(url, headers, (200, 304), self._pages)
        pieces: list[bytes] = []
        if response.code == 304:
            await self._drain(response, url)
            return Page(url, None, _serial(response), etag, _content_type(response))
        await self._read(response, url, pieces.append, PAGE_LIMIT)
        etags = response.headers.getRawHeaders("etag")
        return Page(url, b"".join(pieces), _serial(response), etags[0] if etags else None, _content_type(response))

    async def xmlrpc(self, method: str, *params: Any) -> Any:
        """
        Call an XML-RPC method at the upstream's C{/pypi}.
        """
        url = self.url("pypi")
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode("utf-8")
        response = await self._request("POST", url, data=body, headers={"Content-Type": ["text/xml"]})
        pieces: list[bytes] = []
        await self._read(response, url, pieces.append, PAGE_LIMIT)
        try:
            (result,), _ = xmlrpc.client.loads(b"".join(pieces), use_datetime=False)
        except xmlrpc.client.Fault as fault:
            raise UpstreamError(f"{url} {method}: fault {fault.faultCode}: {fault.faultString}") from None
        except Exception as e:
            raise UpstreamError(f"{url} {method}: not an XML-RPC answer ({_describe(e)})") from None
        return result

    async def download(self, path: str, staged: StagedFile, size: int | None, sha256: str) -> None:
        """
        Stream a file into C{staged}, then check its size and SHA-256.  The
        staged file is left for the caller to place or discard.
        """
        url = self.url(path)
        response = await self._get(url)
        limit = size if size is not None else PAGE_LIMIT * 64
        await self._read(response, url, staged.write, limit)
        digests = staged.peek_digests()
        if size is not None and digests.size != size:
            raise UpstreamError(f"{url}: {digests.size} bytes instead of {size}")
        if not hmac.compare_digest(digests.sha256, sha256):
            raise UpstreamError(f"{url}: sha256 {digests.sha256} instead of {sha256}")

    async def fetch_small(self, path: str, size: int) -> bytes:
        """
        A file of known (small) size, read whole into memory; the caller
        checks its digests.
        """
        url = self.url(path)
        response = await self._get(url)
        pieces: list[bytes] = []
        await self._read(response, url, pieces.append, size)
        body = b"".join(pieces)
        if len(body) != size:
            raise UpstreamError(f"{url}: {len(body)} bytes instead of {size}")
        return body

    async def _get(
        self, url: str, headers: Headers | None = None, expected: tuple[int, ...] = (200,), agent: Any = None
    ) -> IResponse:
        """
        GET C{url}, following redirects.
        """
        if headers is None:
            headers = Headers({b"User-Agent": [USER_AGENT.encode()]})
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response: IResponse = (
                    await (agent or self._files)
                    .request(b"GET", _url_bytes(url), headers)
                    .addTimeout(RESPONSE_TIMEOUT, self.reactor)
                )
            except (CancelledError, DeferredTimeout):
                raise UpstreamError(f"{url}: no answer in {RESPONSE_TIMEOUT:g} seconds") from None
            except Exception as e:
                raise UpstreamError(f"{url}: {_describe(e)}") from None
            location = response.headers.getRawHeaders(b"location")
            if response.code in (301, 302, 303, 307, 308) and location:
                await self._drain(response, url)
                url = urljoin(url, location[0].decode("latin-1"))
                continue
            await self._check(response, url, expected)
            return response
        raise UpstreamError(f"{url}: more than {MAX_REDIRECTS} redirects")


@implementer(IAgentEndpointFactory)
class _Endpoints:
    """
    Each scheme, host and port's endpoint, made once.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._made: dict[tuple[bytes, bytes, int], Any] = {}

    def endpointForURI(self, uri: URI) -> Any:  # noqa: N802  (Twisted's name)
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._made.get(key)
        if endpoint is None:
            host = uri.host.decode("idna")
            endpoint = HostnameEndpoint(self._reactor, host, uri.port, timeout=CONNECT_TIMEOUT)
            if uri.scheme == b"https":
                endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
            elif uri.scheme != b"http":
                raise UpstreamError(f"cannot fetch {uri.scheme.decode()} URLs")
            self._made[key] = endpoint
        return endpoint


def _url_bytes(url: str) -> bytes:
    try:
        return url.encode("ascii")
    except UnicodeEncodeError:
        return quote(url, safe=":/?#[]@!$&'()*+,;=%~").encode("ascii")


class Page:
    """
    A page read whole.

    :ivar body: its bytes, or C{None} after a 304 to a conditional request.
    :ivar serial: its C{X-PyPI-Last-Serial}, if it had a usable one.
    """

    def __init__(self, url: str, body: bytes | None, serial: int | None, etag: str | None, content_type: str) -> None:
        self.url = url
        self.body = body
        self.serial = serial
        self.etag = etag
        self.content_type = content_type


def _serial(response: IResponse) -> int | None:
    values = response.headers.getRawHeaders(SERIAL_HEADER)
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def _content_type(response: IResponse) -> str:
    values = response.headers.getRawHeaders("content-type")
    return values[0].split(";")[0].strip().lower() if values else ""


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
