"""
A mirror's project writes: those that arrive together are applied in one
transaction, and a project that fails there fails alone.  Run on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList

from twistedindex.mirror import replica
from twistedindex.storage import Transaction


async def add_user(tx: Transaction, name: str, fails: bool) -> tuple[int, None]:
    """
    Stands in for a project's apply: it writes a row, then fails if told.
    """
    await tx.insert_user(name, None, None, 1)
    if fails:
        raise ValueError(f"{name} is bad")
    return len(name), None


async def users(tx: Transaction, names: list[str]) -> list[str]:
    return [name for name in names if await tx.get_user(name) is not None]


@pytest_twisted.ensureDeferred
async def test_writes_arriving_together_share_a_transaction(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    While one write runs, the projects that arrive wait for it, then go in
    one transaction together.
    """
    monkeypatch.setattr(replica, "_apply", add_user)
    transactions: list[Any] = []
    real_write = store.write

    def counted(body: Any, *args: Any) -> Any:
        transactions.append(body)
        return real_write(body, *args)

    monkeypatch.setattr(store, "write", counted)
    writes = replica._GroupedWrites(store)
    names = [f"user{n}" for n in range(5)]
    results = await DeferredList([writes.apply((name, False)) for name in names], consumeErrors=True)
    assert [result for _, result in results] == [(5, None)] * 5
    assert transactions == [replica._apply, replica._apply_all]  # the first alone, then the rest
    assert await store.read(users, names) == names


@pytest_twisted.ensureDeferred
async def test_a_project_failing_in_a_group_fails_alone(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    When one project of a group fails, the group's transaction is rolled
    back and each of its projects applied on its own: the others commit,
    and only the bad one sees its error.
    """
    monkeypatch.setattr(replica, "_apply", add_user)
    writes = replica._GroupedWrites(store)
    arriving = [("first", False), ("good", False), ("bad", True), ("also-good", False)]
    results = await DeferredList([writes.apply(arguments) for arguments in arriving], consumeErrors=True)
    outcomes = {name: (ok, value) for (name, _), (ok, value) in zip(arriving, results, strict=True)}
    assert outcomes["good"] == (True, (4, None)) and outcomes["also-good"] == (True, (9, None))
    ok, failure = outcomes["bad"]
    assert not ok and failure.check(ValueError) and str(failure.value) == "bad is bad"
    assert await store.read(users, [name for name, _ in arriving]) == ["first", "good", "also-good"]
