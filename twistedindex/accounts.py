# -*- test-case-name: tests.test_accounts -*-
"""
Passwords and API tokens: how secrets are made, stored and checked.

Passwords are kept as argon2 hashes (argon2-cffi).  An API token is 32 random
bytes behind a recognisable prefix; only its SHA-256 is stored, which is
enough for a secret with that much entropy and lets a token be found by its
hash without a slow comparison per row.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import DeferredLock
from twisted.internet.task import deferLater

from .errors import Unauthenticated

TOKEN_PREFIX = "cheeseshop-"

# Passwords shorter than this are refused, as PyPI refuses them.
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()

T = TypeVar("T")


def hash_password(password: str) -> str:
    """
    An argon2 hash of C{password}.  Slow on purpose: call it off the reactor
    thread.
    """
    return _hasher.hash(password)


# A hash no password is checked against in earnest: users without one (or
# unknown names) cost the same check, so timing tells nobody which names exist.
_nobody_hash: str | None = None


def verify_password(password_hash: str | None, password: str) -> bool:
    """
    Whether C{password} matches the stored hash.  Slow on purpose, and as
    slow when there is no hash.
    """
    global _nobody_hash
    if not password_hash:
        if _nobody_hash is None:
            _nobody_hash = _hasher.hash(secrets.token_urlsafe(16))
        password_hash, password = _nobody_hash, ""  # can never match
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """
    A fresh API token, shown to its owner once.
    """
    raw = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    return TOKEN_PREFIX + raw


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_PREFIX) and len(text) > len(TOKEN_PREFIX) + 20


def token_digest(token: str) -> str:
    """
    What is stored for a token: its SHA-256, in hex.
    """
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


class VerifiedPasswords:
    """
    Remembers, for a few minutes, which (user, password) pairs verified, so a
    client that sends its password with every upload (twine, distutils) pays
    for argon2 once, not per file.

    Entries are keyed by a keyed hash of the password, never the password, and
    hold the stored hash they were checked against: a changed password misses.
    """

    def __init__(self, lifetime: float = 300.0, size: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._lifetime = lifetime
        self._size = size
        self._entries: dict[tuple[int, bytes], tuple[str, float]] = {}

    def _fingerprint(self, password: str) -> bytes:
        return hashlib.blake2b(password.encode("utf-8"), key=self._key, digest_size=32).digest()

    def known(self, user_id: int, password_hash: str | None, password: str, now: float) -> bool:
        entry = self._entries.get((user_id, self._fingerprint(password)))
        return entry is not None and entry[0] == password_hash and entry[1] > now

    def remember(self, user_id: int, password_hash: str, password: str, now: float) -> None:
        if len(self._entries) >= self._size:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= self._size:
                self._entries.clear()
        self._entries[(user_id, self._fingerprint(password))] = (password_hash, now + self._lifetime)


class LoginThrottle:
    """
    Slows down guessing: each failed login for a user name from one address
    doubles the wait before the next attempt is checked (from C{base}
    seconds up to C{cap}); a success, or C{forget} seconds of quiet, resets it.
    Attempts for one name and address are checked one at a time, so guesses
    sent in parallel wait longer each, not all the same (and parallel
    uploads with the right password are not slowed).

    The web login form and the upload API's Basic passwords share one.
    Kept in each daemon's memory, for the C{size} names most recently tried:
    behind a load balancer, an attacker spread over several daemons is
    slowed by each.
    """

    def __init__(self, base: float = 0.25, cap: float = 30.0, forget: float = 900.0, size: int = 10_000) -> None:
        self._base = base
        self._cap = cap
        self._forget = forget
        self._size = size
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()
        self._turns: dict[tuple[str, str], DeferredLock] = {}

    def delay(self, key: tuple[str, str], now: float) -> float:
        failures, last = self._failures.get(key, (0, 0.0))
        if failures == 0 or now - last > self._forget:
            return 0.0
        return min(self._base * 2 ** (failures - 1), self._cap)

    def failed(self, key: tuple[str, str], now: float) -> None:
        failures, last = self._failures.pop(key, (0, 0.0))
        if now - last > self._forget:
            failures = 0
        self._failures[key] = (failures + 1, now)
        while len(self._failures) > self._size:
            self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)

    async def check(self, reactor: Any, key: tuple[str, str], authenticate: Callable[[], Awaitable[T]]) -> T:
        """
        Run C{authenticate}, which raises L{Unauthenticated} for a wrong
        password, in C{key}'s turn and after the wait its failures earned.
        """
        turn = self._turns.setdefault(key, DeferredLock())
        await turn.acquire()
        try:
            wait = self.delay(key, reactor.seconds())
            if wait:
                await deferLater(reactor, wait)
            try:
                result = await authenticate()
            except Unauthenticated:
                self.failed(key, reactor.seconds())
                raise
            self.succeeded(key)
            return result
        finally:
            turn.release()
            if not turn.locked and not turn.waiting:
                del self._turns[key]


def client_host(request: Any) -> str:
    """
    The peer's address, for throttling (a daemon on a UNIX socket has no
    peer host: C{""}).
    """
    return str(getattr(request.getClientAddress(), "host", ""))
