# -*- test-case-name: tests.test_pep381 -*-
"""
PEP 381's master side: the server key and page signatures, the
C{last-modified} stamp, and the daily download statistics.

PEP 464 took C{/serverkey} and C{/serversig} off PyPI in 2014; they are kept
here because a ring of these daemons can still use them: the master signs
the exact bytes of each C{/simple/<project>/} page (DSA over SHA-1, DER), and
since every mirror serves byte-identical pages and copies the signatures, a
signature verifies on every node against the master's key.
"""

from __future__ import annotations

import bz2
import csv
import io
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import treq
from attrs import frozen
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.hazmat.primitives.asymmetric.dsa import DSAPrivateKey, DSAPublicKey
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from .storage import IStore, Transaction

log = Logger()

KEY_FILE = "serverkey.pem"

# The size of the DSA key made on first start, as pypi-legacy's tools/keygen
# made it (openssl dsaparam 2048).
KEY_SIZE = 2048

# PEP 381's /last-modified format: ISO 8601 basic date, extended time, UTC,
# no zone designator.
LAST_MODIFIED_FORMAT = "%Y%m%dT%H:%M:%S"

# The header line of a PEP 381 statistics file.
STATS_HEADER = "# package,filename,useragent,count"

# How many page signatures are remembered.
SIGNATURES_KEPT = 10_000

# User agents are kept to this many characters in the statistics.
USER_AGENT_LENGTH = 200


def load_or_create_key(data_dir: str) -> DSAPrivateKey:
    """
    The server's DSA key from C{<data_dir>/serverkey.pem}, made there first
    if there is none.  This blocks (making a key takes about a second): call
    it off the reactor thread.

    Daemons sharing a data directory may race to make it: the key is written
    under a temporary name and linked into place, so the first one made
    wins and the others read it.
    """
    path = os.path.join(data_dir, KEY_FILE)
    if not os.path.exists(path):
        key = dsa.generate_private_key(key_size=KEY_SIZE)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        temporary = f"{path}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)
                log.info("made the server's DSA key, {path}", path=path)
            except FileExistsError:
                pass  # another daemon's won
        finally:
            os.unlink(temporary)
    with open(path, "rb") as f:
        loaded = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(loaded, DSAPrivateKey):
        raise ValueError(f"{path} does not hold a DSA private key")
    return loaded


def public_key_pem(key: DSAPrivateKey) -> bytes:
    """
    C{/serverkey}: the public key as C{openssl dsa -pubout} writes it
    (SubjectPublicKeyInfo, PEM).
    """
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key: DSAPrivateKey, page: bytes) -> bytes:
    """
    C{/serversig/<project>}: DSA over the SHA-1 of the page's exact bytes,
    as a DER C{Dss-Sig-Value}.
    """
    return key.sign(page, hashes.SHA1())  # noqa: S303  (PEP 381 fixes SHA-1)


def verify(public_pem: bytes, signature: bytes, page: bytes) -> bool:
    """
    Whether C{signature} is the key's over C{page}.
    """
    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, DSAPublicKey):
        return False
    try:
        public.verify(signature, page, hashes.SHA1())  # noqa: S303
    except Exception:
        return False
    return True


def last_modified(micros: int) -> bytes:
    """
    C{/last-modified}'s body for a time in microseconds since the epoch.
    """
    moment = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    return (moment.strftime(LAST_MODIFIED_FORMAT) + "\n").encode("ascii")


def parse_last_modified(text: str) -> datetime:
    return datetime.strptime(text.strip(), LAST_MODIFIED_FORMAT).replace(tzinfo=UTC)


def stats_file(rows: Iterable[tuple[str, str, str, int]]) -> bytes:
    """
    A PEP 381 statistics file: bzip2'd CSV of C{package,filename,useragent,
    count}, under its header line.
    """
    text = io.StringIO()
    text.write(STATS_HEADER + "\n")
    writer = csv.writer(text, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return bz2.compress(text.getvalue().encode("utf-8"))


def today(clock: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if clock is None else clock))


class DownloadCounter:
    """
    Downloads counted in memory, to be written out now and then: a file
    download costs a dictionary update, not a database write.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str, str]] = Counter()

    def count(self, day: str, project: str, filename: str, user_agent: str) -> None:
        self._counts[(day, project, filename, user_agent[:USER_AGENT_LENGTH])] += 1

    def take(self) -> list[tuple[str, str, str, str, int]]:
        """
        The counts so far, which are forgotten here.
        """
        counts, self._counts = self._counts, Counter()
        return [(*key, count) for key, count in counts.items()]

    def give_back(self, counts: Iterable[tuple[str, str, str, str, int]]) -> None:
        """
        Counts that could not be written, to be tried again.
        """
        for day, project, filename, user_agent, count in counts:
            self._counts[(day, project, filename, user_agent)] += count


@frozen
class RingMirror:
    """
    What a ring mirror's C{/last-modified} said when last asked.

    :ivar last_modified: its time, or C{None} if it could not be read.
    :ivar checked: when it was asked (seconds since the epoch).
    """

    url: str
    last_modified: datetime | None
    checked: float
    error: str | None = None


class Pep381:
    """
    The running parts of PEP 381's master side: the server key (made on
    first start, on a thread), the download counts (written out every
    C{FLUSH_INTERVAL} seconds and at stop), and the ring mirrors' ages
    (asked every C{RING_CHECK_INTERVAL} seconds).
    """

    FLUSH_INTERVAL = 30.0
    RING_CHECK_INTERVAL = 60.0
    RING_TIMEOUT = 5.0

    def __init__(self, data_dir: str, ring: tuple[str, ...], store: IStore, reactor: Any) -> None:
        self.data_dir = data_dir
        self.ring = ring
        self.store = store
        self.downloads = DownloadCounter()
        self.mirrors: dict[str, RingMirror] = {}
        self._reactor = reactor
        self._key: DSAPrivateKey | None = None
        self._key_waiters: list[Deferred[DSAPrivateKey]] = []
        self._key_failure: Failure | None = None
        self._signed: dict[tuple[str, int], bytes] = {}
        self._flush = LoopingCall(self.flush)
        self._flush.clock = reactor
        self._watch = LoopingCall(self.check_mirrors)
        self._watch.clock = reactor

    def start(self, signs: bool) -> None:
        """
        :param signs: whether this index signs its pages (a master does; a
            mirror serves its upstream's signatures and needs no key).
        """
        if signs:
            deferToThreadPool(self._reactor, self._reactor.getThreadPool(), load_or_create_key, self.data_dir).addBoth(
                self._key_loaded
            )
        self._flush.start(self.FLUSH_INTERVAL, now=False).addErrback(
            lambda failure: log.failure("writing download counts failed", failure)
        )
        if self.ring:
            self._watch.start(self.RING_CHECK_INTERVAL, now=True).addErrback(
                lambda failure: log.failure("checking the ring mirrors failed", failure)
            )

    async def stop(self) -> None:
        for loop in (self._flush, self._watch):
            if loop.running:
                loop.stop()
        await self.flush()

    def _key_loaded(self, result: DSAPrivateKey | Failure) -> None:
        waiters, self._key_waiters = self._key_waiters, []
        if isinstance(result, Failure):
            log.failure("the server key could not be read or made", result)
            self._key_failure = result
            for waiter in waiters:
                waiter.errback(result)
            return
        self._key = result
        for waiter in waiters:
            waiter.callback(result)

    def key(self) -> Deferred[DSAPrivateKey]:
        """
        The server's key, once it is loaded (or made).
        """
        if self._key is not None:
            return succeed(self._key)
        if self._key_failure is not None:
            return fail(self._key_failure)
        waiter: Deferred[DSAPrivateKey] = Deferred()
        self._key_waiters.append(waiter)
        return waiter

    async def signature(self, project: str, serial: int, page: bytes) -> bytes:
        """
        The signature of a project's simple page at a serial: made once per
        change, then remembered.
        """
        key = (project, serial)
        signature = self._signed.get(key)
        if signature is None:
            signature = sign(await self.key(), page)
            if len(self._signed) >= SIGNATURES_KEPT:
                self._signed.clear()
            self._signed[key] = signature
        return signature

    async def flush(self) -> None:
        counts = self.downloads.take()
        if not counts:
            return
        try:
            await self.store.write(_add_downloads, counts)
        except Exception:
            self.downloads.give_back(counts)
            raise

    async def mirror_ages(self, max_age: float) -> dict[str, RingMirror]:
        """
        The ring mirrors' states, asked again first if older than C{max_age}
        seconds.
        """
        now = self._reactor.seconds()
        if any(url not in self.mirrors or now - self.mirrors[url].checked > max_age for url in self.ring):
            await self.check_mirrors()
        return self.mirrors

    async def check_mirrors(self) -> None:
        results = await DeferredList(
            [Deferred.fromCoroutine(self._check(url)) for url in self.ring], consumeErrors=True
        )
        for succeeded, value in results:
            if succeeded:
                self.mirrors[value.url] = value

    async def _check(self, url: str) -> RingMirror:
        now = self._reactor.seconds()
        try:
            response = await treq.get(f"{url}/last-modified", timeout=self.RING_TIMEOUT, reactor=self._reactor)
            body = await treq.content(response)
            if response.code != 200:
                raise ValueError(f"HTTP {response.code}")
            return RingMirror(url, parse_last_modified(body.decode("ascii")), now)
        except Exception as e:
            return RingMirror(url, None, now, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)


async def _add_downloads(tx: Transaction, counts: list[tuple[str, str, str, str, int]]) -> None:
    await tx.add_downloads(counts)
