"""
A mirror's project writes: what one applies, and how those that arrive
together are applied in one transaction, after their files' fsyncs are
paid together, where a project that fails fails alone.  Run on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList

from twistedindex.filestore import FileStore
from twistedindex.mirror import replica
from twistedindex.mirror.snapshot import from_replica
from twistedindex.storage import Transaction

from .test_snapshot import replica_document


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
    results = await DeferredList([writes.apply((name, False), []) for name in names], consumeErrors=True)
    assert [result for _, result in results] == [(5, None)] * 5
    assert transactions == [replica._pay_and_apply, replica._apply_all]  # the first alone, then the rest
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
    results = await DeferredList([writes.apply(arguments, []) for arguments in arriving], consumeErrors=True)
    outcomes = {name: (ok, value) for (name, _), (ok, value) in zip(arriving, results, strict=True)}
    assert outcomes["good"] == (True, (4, None)) and outcomes["also-good"] == (True, (9, None))
    ok, failure = outcomes["bad"]
    assert not ok and failure.check(ValueError) and str(failure.value) == "bad is bad"
    assert await store.read(users, [name for name, _ in arriving]) == ["first", "good", "also-good"]


RELEASE = {
    "created": 1767323045000000,
    "yanked": False,
    "yanked_reason": None,
    "summary": "A demo",
    "description": "text",
    "description_content_type": "text/plain",
    "requires_python": None,
    "metadata": {},
}


@pytest_twisted.ensureDeferred
async def test_roles_follow_the_upstream_when_a_release_arrives(store: Any, tmp_path: Any) -> None:
    """
    A role the upstream dropped is dropped here too, in the same write as
    a new release of the project.
    """
    files = FileStore(str(tmp_path / "files"))

    async def roles(tx: Transaction) -> list[tuple[str, str]]:
        project = await tx.get_project("demo-pkg")
        assert project is not None
        return await tx.roles_for_project(project.id)

    pages = [
        replica_document(
            serial=1, releases={"1.0": RELEASE}, files=[], roles=[["Owner", "alice"], ["Maintainer", "bob"]]
        ),
        replica_document(serial=2, releases={"1.0": RELEASE, "2.0": RELEASE}, files=[], roles=[["Owner", "alice"]]),
    ]
    for serial, page in enumerate(pages, start=1):
        snapshot = from_replica(page, "https://upstream/+replica/?project=demo-pkg", "https://upstream")
        await store.write(replica._apply, files, snapshot, [], {}, serial, None, None, None, 5)
        if serial == 1:
            assert await store.read(roles) == [("Owner", "alice"), ("Maintainer", "bob")]
    assert await store.read(roles) == [("Owner", "alice")]


@pytest_twisted.ensureDeferred
async def test_removals_planned_in_a_failed_group_are_settled(
    store: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The removals that projects planned in a group's failed transaction are
    settled (their records go; their files stay, their rows being there),
    leaving only those of the transactions that committed.
    """
    files = FileStore(str(tmp_path / "files"))

    async def planning(tx: Transaction, name: str, fails: bool) -> tuple[int, Any]:
        await tx.insert_user(name, None, None, 1)
        if fails:
            raise ValueError(f"{name} is bad")
        return 1, await tx.blocking(files.plan_removal, [("ab" * 32, f"{name}-1.0.tar.gz")])

    monkeypatch.setattr(replica, "_apply", planning)
    writes = replica._GroupedWrites(store)
    arriving = [("first", False), ("good", False), ("bad", True), ("also-good", False)]
    results = await DeferredList([writes.apply(arguments, []) for arguments in arriving], consumeErrors=True)
    committed = {os.path.basename(value[1].record) for ok, value in results if ok}
    assert len(committed) == 3
    instance = os.path.join(files.tmp, files.instance_name)
    assert {name for name in os.listdir(instance) if name.startswith("remove-")} == committed


@pytest.mark.parametrize("payment_fails", [False, True])
@pytest_twisted.ensureDeferred
async def test_a_groups_fsyncs_are_paid_in_its_write(
    store: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, payment_fails: bool
) -> None:
    """
    The batches a group's projects owe are paid once, in the group's write
    before any project is applied; if paying fails (a write-back error),
    no project of the group commits, not even when each is tried alone.
    """
    files = FileStore(str(tmp_path / "files"))
    payments: list[tuple[list[Any], list[str]]] = []
    written: list[str] = []
    real_pay_all = replica.pay_all

    def pay_all(batches: list[Any]) -> None:
        payments.append((list(batches), list(written)))
        if payment_fails and len(batches) > 1:
            for batch in batches:
                batch.failure = batch.failure or OSError(5, "write-back error")
        real_pay_all(batches)

    async def add_user_noted(tx: Transaction, name: str, fails: bool) -> tuple[int, None]:
        written.append(name)
        return await add_user(tx, name, fails)

    monkeypatch.setattr(replica, "_apply", add_user_noted)
    monkeypatch.setattr(replica, "pay_all", pay_all)
    writes = replica._GroupedWrites(store)
    names = ["one", "two", "three"]
    owed = {name: [files.batch() for _ in range(2 if name == "two" else 1)] for name in names}
    results = await DeferredList([writes.apply((name, False), owed[name]) for name in names], consumeErrors=True)
    # The first is written alone; the other two wait for it, then pay
    # together, in their write, before either is applied.
    assert payments[0] == (owed["one"], [])
    assert payments[1] == (owed["two"] + owed["three"], ["one"])
    if payment_fails:
        assert results[0] == (True, (3, None))
        assert all(not ok and failure.check(OSError) for ok, failure in results[1:])
        assert await store.read(users, names) == ["one"] and written == ["one"]
    else:
        assert len(payments) == 2
        assert [ok for ok, _ in results] == [True, True, True]
        assert await store.read(users, names) == names
    assert all(batch.paid is not (payment_fails and name != "one") for name in names for batch in owed[name])
