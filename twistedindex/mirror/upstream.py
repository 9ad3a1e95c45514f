# -*- test-case-name: tests.test_mirror -*-
"""
Reading an upstream index: what changed, and what a project looks like now.

Two ways, chosen by what the upstream offers (L{discover}):

 - L{SerialUpstream}: XML-RPC C{list_packages_with_serial} for the first
   sync and C{changelog_since_serial} after it, with the JSON API for each
   project; the mirror keeps the upstream's serials.  Warehouse and every
   twistedindex answer this way.
 - L{PageUpstream}: the simple index and project pages only (PEP 691 JSON
   when offered, PEP 503 HTML otherwise), as devpi and pypiserver serve
   them; changes are found by comparing pages, and the mirror numbers its
   own journal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..names import PROJECT_NAME_RE, normalize
from .client import NotFound, UpstreamClient, UpstreamError
from .snapshot import (
    SIMPLE_ACCEPT,
    BadSnapshot,
    ProjectSnapshot,
    ReleaseSnapshot,
    from_json_api,
    from_replica,
    from_simple,
    listing_from_simple,
    release_from_json_api,
    replica_documents,
)

# PyPI answers changelog_since_serial with at most this many entries.
CHANGELOG_PAGE = 50_000

# Files up to this size come inside a twistedindex upstream's /+replica/
# answers, not by a request each.
INLINE = 64 * 1024

# The most projects asked for in one /+replica/ request.
REPLICA_BATCH = 8

# No /+replica/ request is sent while the answers of projects still in hand
# come to more than this (one always is when none are held): a mirror of an
# index that relays large projects (descriptions of hundreds of releases)
# holds a bounded amount of them.
HELD_LIMIT = 32 * 1024 * 1024

log = Logger()

# Changelog actions after which a release's description is read again.
_DESCRIBING_ACTIONS = ("new release", "update ")


class StalePage(UpstreamError):
    """
    The upstream's page is older than its changelog promised: try later.
    """


@frozen
class JournalEntry:
    """
    One upstream changelog entry, as C{changelog_since_serial} gives it.
    """

    name: str
    version: str | None
    timestamp: int
    action: str
    serial: int

    @property
    def normalized_name(self) -> str:
        return normalize(self.name)


@frozen
class Wanted:
    """
    A project a round brings forward.

    :ivar serial: the serial its page must show at least (serial upstreams),
        or its C{_last-serial} in the listing (page upstreams, if given).
    :ivar versions: releases whose descriptions must be read again, or
        C{None} for every release not yet here.
    """

    name: str
    serial: int | None
    versions: frozenset[str] = frozenset()

    @property
    def normalized_name(self) -> str:
        return normalize(self.name)


def parse_listing(value: Any) -> dict[str, int]:
    """
    C{list_packages_with_serial}'s answer, checked.
    """
    if not isinstance(value, dict):
        raise UpstreamError("list_packages_with_serial did not answer with a struct")
    listing: dict[str, int] = {}
    for name, serial in value.items():
        if isinstance(name, str) and PROJECT_NAME_RE.match(name) and isinstance(serial, int):
            listing[name] = serial
    return listing


def parse_changelog(value: Any, after: int) -> list[JournalEntry]:
    """
    C{changelog_since_serial}'s answer, checked: entries after C{after}, in
    strictly increasing serial order.
    """
    if not isinstance(value, list):
        raise UpstreamError("changelog_since_serial did not answer with an array")
    entries: list[JournalEntry] = []
    last = after
    for row in value:
        if not (isinstance(row, list | tuple) and len(row) >= 5):
            raise UpstreamError(f"changelog_since_serial: a malformed entry {row!r}")
        name, version, timestamp, action, serial = row[:5]
        if not (
            isinstance(name, str)
            and (version is None or isinstance(version, str))
            and isinstance(timestamp, int)
            and isinstance(action, str)
            and isinstance(serial, int)
        ):
            raise UpstreamError(f"changelog_since_serial: a malformed entry {row!r}")
        if serial <= last:
            raise UpstreamError(f"changelog_since_serial: serial {serial} after {last}")
        last = serial
        entries.append(JournalEntry(name, version or None, timestamp, action, serial))
    return entries


def wanted_from_changelog(entries: Iterable[JournalEntry]) -> dict[str, Wanted]:
    """
    The projects a changelog touches, each with the newest serial it reached
    and the releases whose descriptions it changed.
    """
    serials: dict[str, int] = {}
    names: dict[str, str] = {}
    versions: dict[str, set[str]] = {}
    for entry in entries:
        key = entry.normalized_name
        serials[key] = entry.serial
        names[key] = entry.name
        if entry.version and entry.action.startswith(_DESCRIBING_ACTIONS):
            versions.setdefault(key, set()).add(entry.version)
    return {key: Wanted(names[key], serials[key], frozenset(versions.get(key, ()))) for key in serials}


class SerialUpstream:
    """
    An upstream with serials: Warehouse's XML-RPC and JSON API, or, from a
    twistedindex, its C{/+replica/} answers (every release described and
    the page's signature, for several projects a request).

    :ivar projects_a_request: how many projects one request brings.
    """

    mode = "serials"

    def __init__(self, client: UpstreamClient, replica_batch: int = 0) -> None:
        self.client = client
        self.replica = replica_batch > 0
        self.projects_a_request = replica_batch or 1
        self._replicas = _ReplicaRequests(client, replica_batch) if self.replica else None

    async def listing(self) -> dict[str, int]:
        return parse_listing(await self.client.xmlrpc("list_packages_with_serial"))

    async def changelog(self, after: int) -> list[JournalEntry]:
        return parse_changelog(await self.client.xmlrpc("changelog_since_serial", after), after)

    async def project(self, wanted: Wanted) -> ProjectSnapshot | None:
        """
        The project's page, or C{None} if the upstream has no such project
        (any more).

        :raises StalePage: if the page is older than C{wanted.serial}.
        """
        if self._replicas is not None:
            return await self._replicas.project(wanted)
        try:
            page = await self.client.page(f"pypi/{wanted.normalized_name}/json", accept="application/json")
        except NotFound:
            return None
        _check_fresh(page.url, page.serial, wanted.serial)
        return from_json_api(page.body or b"", page.url, page.serial)

    def done_with(self, wanted: Wanted) -> None:
        """
        The round is done with the project it asked L{project} for.
        """
        if self._replicas is not None:
            self._replicas.done_with(wanted.normalized_name)

    def stop(self) -> None:
        """
        Ask nothing more: projects not yet asked for fail at once.
        """
        if self._replicas is not None:
            self._replicas.stop()

    async def release(self, normalized_name: str, version: str, serial: int | None) -> ReleaseSnapshot:
        page = await self.client.page(f"pypi/{normalized_name}/{version}/json", accept="application/json")
        _check_fresh(page.url, page.serial, serial)
        return release_from_json_api(page.body or b"", page.url)

    async def serversig(self, normalized_name: str) -> tuple[int | None, bytes] | None:
        """
        The upstream's PEP 381 signature of the project's simple page, with
        the serial of the page it signs; C{None} if it has none.
        """
        try:
            page = await self.client.page(f"serversig/{normalized_name}")
        except NotFound:
            return None
        return page.serial, page.body or b""


# A project waiting for its /+replica/ document: what is wanted, and what
# hears the answer.
_Asked = tuple[Wanted, Deferred[ProjectSnapshot | None]]


class _ReplicaRequests:
    """
    Asks a twistedindex upstream's C{/+replica/} for projects, as many
    requests at once as the client keeps connections: the projects asked
    for in one turn of the reactor, or while those requests run, go
    together in the next (at most C{batch} a request).  A request that
    fails is asked again one project at a time, so that a project that
    cannot be read fails alone.
    """

    def __init__(self, client: UpstreamClient, batch: int) -> None:
        self._client = client
        self._batch = batch
        self._waiting: list[_Asked] = []
        # Those of a failed request, to ask for one at a time, first.
        self._alone: list[_Asked] = []
        self._running = 0
        self._send_soon = False
        self._stopped = False
        # The answers' bytes, shared among their projects, until the round
        # is done with each.
        self._held: dict[str, int] = {}

    def project(self, wanted: Wanted) -> Deferred[ProjectSnapshot | None]:
        answer: Deferred[ProjectSnapshot | None] = Deferred()
        if self._stopped:
            answer.errback(UpstreamError("the mirror is stopping"))
            return answer
        self._waiting.append((wanted, answer))
        if not self._send_soon:
            self._send_soon = True
            self._client.reactor.callLater(0, self._send)
        return answer

    def done_with(self, normalized_name: str) -> None:
        self._held.pop(normalized_name, None)
        self._send()

    def stop(self) -> None:
        self._stopped = True
        waiting, self._alone, self._waiting = self._alone + self._waiting, [], []
        for _, answer in waiting:
            answer.errback(UpstreamError("the mirror is stopping"))

    def _send(self) -> None:
        self._send_soon = False
        while (
            (self._alone or self._waiting)
            and not self._stopped
            and self._running < self._client.connections
            and sum(self._held.values()) < HELD_LIMIT
        ):
            if self._alone:
                asked = [self._alone.pop(0)]
            else:
                asked, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            self._running += 1
            Deferred.fromCoroutine(self._ask(asked))

    async def _ask(self, asked: list[_Asked]) -> None:
        try:
            query = urlencode([("inline", INLINE)] + [("project", wanted.normalized_name) for wanted, _ in asked])
            try:
                page = await self._client.page(f"+replica/?{query}", accept="application/json")
                documents = replica_documents(page.body or b"", page.url)
            except Exception:
                if len(asked) > 1 and not self._stopped:
                    self._alone += asked
                else:
                    failure = Failure()
                    for _, answer in asked:
                        answer.errback(failure)
                return
            share = len(page.body or b"") // len(asked)
            for wanted, answer in asked:
                try:
                    snapshot = self._snapshot(documents, wanted, page.url)
                except Exception:
                    answer.errback()
                else:
                    self._held[wanted.normalized_name] = share
                    answer.callback(snapshot)
        finally:
            self._running -= 1
            self._send()

    def _snapshot(self, documents: dict[str, Any], wanted: Wanted, url: str) -> ProjectSnapshot | None:
        if wanted.normalized_name not in documents:
            raise UpstreamError(f"{url}: no answer for {wanted.normalized_name}")
        document = documents[wanted.normalized_name]
        if document is None:
            return None
        snapshot = from_replica(document, url, self._client.base_url)
        if snapshot.normalized_name != wanted.normalized_name:
            raise BadSnapshot(f"{url}: {snapshot.name} answered for {wanted.normalized_name}")
        _check_fresh(f"{url} ({wanted.normalized_name})", snapshot.serial, wanted.serial)
        return snapshot


class PageUpstream:
    """
    An upstream with simple pages only.
    """

    mode = "pages"

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client
        # The upstream named by its simple index itself (devpi's
        # /<user>/<index>/+simple, say), or by the root above /simple/.
        self._simple = "" if is_simple_url(client.base_url) else "simple/"

    async def listing(self) -> dict[str, int | None]:
        page = await self.client.page(self._simple or "/", accept=SIMPLE_ACCEPT)
        return listing_from_simple(page.body or b"", page.url, page.content_type)

    async def project(self, wanted: Wanted) -> tuple[ProjectSnapshot, str] | None:
        """
        The project's simple page, with a fingerprint of it; C{None} if the
        upstream has no such project.
        """
        try:
            page = await self.client.page(f"{self._simple}{wanted.normalized_name}/", accept=SIMPLE_ACCEPT)
        except NotFound:
            return None
        body = page.body or b""
        snapshot = from_simple(body, page.url, page.content_type, wanted.name)
        return snapshot, hashlib.sha256(body).hexdigest()


def _check_fresh(url: str, serial: int | None, required: int | None) -> None:
    if required is None:
        return
    if serial is None or serial < required:
        raise StalePage(f"{url}: serial {serial} is older than the {required} expected")


def is_simple_url(url: str) -> bool:
    """
    Whether C{url} names a simple index itself (its path ends in C{/simple}
    or C{/+simple}) rather than an index's root.
    """
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] in ("simple", "+simple")


async def discover(client: UpstreamClient) -> SerialUpstream | PageUpstream:
    """
    How to follow the upstream: by its pages if it was named by its simple
    index, else by serials if it answers XML-RPC, else by its pages.
    """
    if is_simple_url(client.base_url):
        return PageUpstream(client)
    try:
        serial = await client.xmlrpc("changelog_last_serial")
    except UpstreamError:
        return PageUpstream(client)
    if not isinstance(serial, int):
        return PageUpstream(client)
    return SerialUpstream(client, await replica_batch(client))


async def replica_batch(client: UpstreamClient) -> int:
    """
    How many projects to ask the upstream's C{/+replica/} for at once, or 0
    if it is not a twistedindex that serves them.
    """
    try:
        page = await client.page("+replica/", accept="application/json")
        answer = json.loads(page.body or b"null")
    except (UpstreamError, ValueError):
        return 0
    if not isinstance(answer, dict):
        return 0
    if answer.get("version") != 2 or not isinstance(answer.get("projects"), int):
        # Another release of twistedindex: the JSON API serves it too, less
        # fully (no roles, uploaders or full metadata records).
        log.warn(
            "{url}/+replica/ answers version {version}, not 2: following its JSON API instead",
            url=client.base_url,
            version=answer.get("version"),
        )
        return 0
    return max(0, min(REPLICA_BATCH, answer["projects"]))
