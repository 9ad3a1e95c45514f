"""
Password and token secrets.
"""

from __future__ import annotations

from twistedindex import accounts


def test_passwords_verify_against_their_hash_only() -> None:
    """
    A password matches its own hash; a wrong one, or a missing hash (an
    unknown user, checked just as slowly), never matches.
    """
    stored = accounts.hash_password("correct horse")
    assert accounts.verify_password(stored, "correct horse")
    assert not accounts.verify_password(stored, "wrong horse")
    assert not accounts.verify_password("not a hash", "correct horse")
    for missing in (None, ""):
        assert not accounts.verify_password(missing, "")
        assert not accounts.verify_password(missing, "correct horse")


def test_tokens_are_found_by_digest() -> None:
    """
    A token carries the prefix, and its digest is stable and not the token.
    """
    token = accounts.new_token()
    assert accounts.looks_like_token(token) and token.startswith(accounts.TOKEN_PREFIX)
    assert accounts.token_digest(token) == accounts.token_digest(token) != token
    assert accounts.new_token() != token
