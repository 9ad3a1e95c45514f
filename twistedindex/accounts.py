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

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "cheeseshop-"

# Passwords shorter than this are refused, as PyPI refuses them.
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()


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
