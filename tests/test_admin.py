"""
C{cheeseshop-admin}, run as an administrator runs it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from twistedindex import accounts

from .daemon import run, tool


def admin(data_dir: Any, *args: str, password: str | None = None) -> Any:
    return run(
        [tool("cheeseshop-admin"), "--data-dir", str(data_dir), *args],
        input=None if password is None else password + "\n",
    )


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def failure(result: Any) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_adduser_and_passwd(tmp_path: Any) -> None:
    """
    adduser stores an argon2 hash of the password read from stdin, and
    passwd replaces it.
    """
    assert ok(
        admin(tmp_path, "adduser", "Alice", "--email", "a@example.org", "--password-stdin", password="first-password")
    ) == ("created user Alice\n")
    database = sqlite3.connect(str(tmp_path / "cheeseshop.sqlite"))
    name, email, stored = database.execute("SELECT name, email, password_hash FROM users").fetchone()
    assert (name, email) == ("Alice", "a@example.org")
    assert stored.startswith("$argon2") and accounts.verify_password(stored, "first-password")
    assert ok(admin(tmp_path, "passwd", "alice", "--password-stdin", password="second-password")) == (
        "password changed for alice\n"
    )
    stored = database.execute("SELECT password_hash FROM users").fetchone()[0]
    assert accounts.verify_password(stored, "second-password")
    assert not accounts.verify_password(stored, "first-password")


@pytest.mark.parametrize(
    "args, password, message",
    [
        (
            ["adduser", "-bad-", "--password-stdin"],
            "long-enough-pw",
            "cheeseshop-admin: error: The username '-bad-' is invalid. Usernames must be composed of letters, "
            "numbers, or the characters '.', '_' or '-', must start and finish with a letter or number, and may be "
            "at most 50 characters long.",
        ),
        (
            ["adduser", "bob", "--password-stdin"],
            "short",
            "cheeseshop-admin: error: Password too short: use at least 8 characters.",
        ),
        (
            ["passwd", "nobody", "--password-stdin"],
            "long-enough-pw",
            "cheeseshop-admin: error: No user named 'nobody'.",
        ),
        (["token", "create", "nobody"], None, "cheeseshop-admin: error: No user named 'nobody'."),
        (["token", "revoke", "x"], None, "cheeseshop-admin: error: 'x' is not a token id (a number)"),
        (["token", "revoke", "42"], None, "cheeseshop-admin: error: No API token with id 42."),
        (["token"], None, "cheeseshop-admin: error: token needs one of: create, list, revoke"),
        ([], None, "cheeseshop-admin: error: a command is needed: adduser, passwd, token, yank, unyank or remove"),
        (["yank", "nothing", "1.0"], None, "cheeseshop-admin: error: No project named 'nothing'."),
        (["remove", "nothing"], None, "cheeseshop-admin: error: No project named 'nothing'."),
        (
            ["adduser", "carol"],
            None,
            "cheeseshop-admin: error: no terminal to ask for the password on; use --password-stdin",
        ),
    ],
)
def test_errors_are_one_line(tmp_path: Any, args: list[str], password: str | None, message: str) -> None:
    """
    Every refusal is one line on stderr and a non-zero status.
    """
    assert failure(admin(tmp_path, *args, password=password)) == message


def test_duplicate_user_is_refused(tmp_path: Any) -> None:
    """
    A second account whose name differs only in case is refused.
    """
    ok(admin(tmp_path, "adduser", "dora", "--password-stdin", password="long-enough-pw"))
    assert failure(admin(tmp_path, "adduser", "DORA", "--password-stdin", password="long-enough-pw")) == (
        "cheeseshop-admin: error: User 'DORA' already exists."
    )


def test_tokens(tmp_path: Any) -> None:
    """
    token create prints the token alone on its last line and stores only its
    hash; token list shows it; token revoke revokes it once.
    """
    ok(admin(tmp_path, "adduser", "erin", "--password-stdin", password="long-enough-pw"))
    output = ok(admin(tmp_path, "token", "create", "erin", "--description", "laptop"))
    token = output.splitlines()[-1]
    assert accounts.looks_like_token(token) and token.startswith("cheeseshop-")
    assert "created API token 1 for erin (all projects)" in output
    database = sqlite3.connect(str(tmp_path / "cheeseshop.sqlite"))
    assert database.execute("SELECT digest FROM tokens").fetchall() == [(accounts.token_digest(token),)]
    assert token not in (tmp_path / "cheeseshop.sqlite").read_bytes().decode("latin-1")
    listing = ok(admin(tmp_path, "token", "list", "erin")).splitlines()
    assert listing[0].split() == ["id", "scope", "created", "last", "used", "state", "description"]
    assert listing[1].split()[:3] == ["1", "all", "projects"] and listing[1].split()[-2:] == ["active", "laptop"]
    assert ok(admin(tmp_path, "token", "revoke", "1")) == "revoked API token 1 of erin\n"
    assert (
        failure(admin(tmp_path, "token", "revoke", "1")) == "cheeseshop-admin: error: API token 1 is already revoked."
    )
    assert ok(admin(tmp_path, "token", "list", "erin")).splitlines()[1].split()[-2:] == ["revoked", "laptop"]
