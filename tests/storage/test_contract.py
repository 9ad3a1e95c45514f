"""
The storage contract, run on SQLite and on PostgreSQL: every query of
L{twistedindex.storage.transaction.Transaction} and the transaction
guarantees of L{twistedindex.storage.interfaces.IStore}.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults
from zope.interface.verify import verifyObject

from twistedindex.storage import IStore, Transaction, open_store, transaction
from twistedindex.storage.rows import NewFile, Project, Release


async def seed_release(tx: Transaction, name: str = "Demo.Pkg", version: str = "1.0") -> tuple[Project, Release]:
    """
    A project with one release, journaled as an upload would journal it.
    """
    normalized = name.lower().replace(".", "-").replace("_", "-")
    project = await tx.get_project(normalized)
    if project is None:
        project = await tx.insert_project(name, normalized, 1_000)
        await tx.append_journal(name, normalized, None, "create", 1_000, "alice")
    release = await tx.insert_release(
        project.id, version, version, 2_000, summary="A demo", requires_python=">=3.8", metadata={"keywords": "a,b"}
    )
    await tx.append_journal(name, normalized, version, "new release", 2_000, "alice")
    return project, release


async def seed_file(tx: Transaction, release: Release, filename: str, digest: str = "ab" * 32) -> int:
    return await tx.insert_file(
        release.id, filename, "sdist", "source", 10, "11" * 32, digest, "22" * 16, 3_000, requires_python=">=3.8"
    )


@pytest_twisted.ensureDeferred
async def test_store_provides_interface(store: Any) -> None:
    """
    Both backends provide the whole L{IStore} interface.
    """
    assert verifyObject(IStore, store)
    assert store.dialect in ("sqlite", "postgres")


@pytest_twisted.ensureDeferred
async def test_users_are_found_without_regard_to_case(store: Any) -> None:
    """
    A user stored as C{Alice} is found as C{alice} and keeps its spelling.
    """

    async def body(tx: Transaction) -> Any:
        created = await tx.insert_user("Alice", "alice@example.org", "hash", 5)
        return created, await tx.get_user("alice"), await tx.get_user("nobody")

    created, found, missing = await store.write(body)
    assert found == created
    assert found.name == "Alice" and found.email == "alice@example.org" and found.password_hash == "hash"
    assert missing is None


@pytest_twisted.ensureDeferred
async def test_write_that_raises_leaves_nothing(store: Any) -> None:
    """
    A transaction body that raises is rolled back: none of its writes remain.
    """

    async def body(tx: Transaction) -> None:
        await tx.insert_user("bob", None, None, 5)
        await seed_release(tx)
        raise ValueError("changed my mind")

    with pytest.raises(ValueError):
        await store.write(body)

    async def check(tx: Transaction) -> Any:
        return await tx.get_user("bob"), await tx.list_projects(), await tx.last_serial()

    assert await store.read(check) == (None, [], 0)


@pytest_twisted.ensureDeferred
async def test_journal_serials_increase_and_projects_keep_their_last(store: Any) -> None:
    """
    Each journal entry gets the next serial, and each project's last serial
    follows its newest entry.
    """

    async def body(tx: Transaction) -> Any:
        await seed_release(tx, "one", "1.0")
        await seed_release(tx, "two", "1.0")
        await seed_release(tx, "one", "2.0")
        return await tx.journal_since(0), await tx.project_serials(), await tx.last_serial()

    entries, serials, last = await store.write(body)
    assert [(e.serial, e.name, e.normalized_name, e.version, e.action, e.submitted_by) for e in entries] == [
        (1, "one", "one", None, "create", "alice"),
        (2, "one", "one", "1.0", "new release", "alice"),
        (3, "two", "two", None, "create", "alice"),
        (4, "two", "two", "1.0", "new release", "alice"),
        (5, "one", "one", "2.0", "new release", "alice"),
    ]
    assert serials == {"one": 5, "two": 4}
    assert last == 5


@pytest_twisted.ensureDeferred
async def test_journal_since_pages_with_a_limit(store: Any) -> None:
    """
    C{journal_since} returns entries after a serial, oldest first, at most
    C{limit} of them.
    """

    async def body(tx: Transaction) -> None:
        for version in ("1", "2", "3", "4"):
            await seed_release(tx, "paged", version)

    await store.write(body)

    async def read(tx: Transaction) -> Any:
        return await tx.journal_since(2, limit=2), await tx.journal_since(5)

    page, tail = await store.read(read)
    assert [e.serial for e in page] == [3, 4]
    assert [(e.serial, e.version) for e in tail] == []

    async def read_tail(tx: Transaction) -> Any:
        return await tx.journal_since(4)

    assert [(e.serial, e.version) for e in await store.read(read_tail)] == [(5, "4")]


@pytest_twisted.ensureDeferred
async def test_mirror_serials_are_kept(store: Any) -> None:
    """
    A journal entry given an explicit serial (as a mirror replays its
    upstream) keeps it, and the next local serial follows the highest.
    """

    async def body(tx: Transaction) -> Any:
        project = await tx.insert_project("m", "m", 1)
        await tx.append_journal("m", "m", None, "create", 1, None, serial=40)
        await tx.append_journal("m", "m", "1.0", "new release", 1, None, serial=45)
        next_serial = await tx.append_journal("m", "m", "1.0", "yank release", 1, None)
        return project, next_serial, await tx.get_project("m")

    _, next_serial, project = await store.write(body)
    assert next_serial == 46
    assert project.last_serial == 46


@pytest_twisted.ensureDeferred
async def test_concurrent_writes_get_distinct_ordered_serials(store: Any) -> None:
    """
    Many write transactions started at once each get their own serial, and
    the journal holds them all in order with no gaps.
    """

    def add(n: int) -> Deferred[int]:
        async def body(tx: Transaction) -> int:
            if n == 0:
                await tx.insert_project("busy", "busy", 1)
            return await tx.append_journal("busy", "busy", str(n), "new release", n, None)

        return store.write(body)

    first = await add(0)
    serials = await gatherResults([add(n) for n in range(1, 30)])
    assert sorted(serials) == list(range(first + 1, first + 30))

    async def read(tx: Transaction) -> Any:
        return await tx.journal_since(0)

    assert [e.serial for e in await store.read(read)] == list(range(1, 31))


@pytest_twisted.ensureDeferred
async def test_files_and_the_registry(store: Any) -> None:
    """
    Files are listed per release and project; a deleted file's name stays in
    the registry, and so do the names of a deleted project's files.
    """

    async def body(tx: Transaction) -> Any:
        project, release = await seed_release(tx, "files-demo", "1.0")
        await seed_file(tx, release, "files_demo-1.0.tar.gz", "aa" * 32)
        second = await seed_file(tx, release, "files_demo-1.0-py3-none-any.whl", "bb" * 32)
        listed = await tx.files_for_release(release.id)
        by_hash = await tx.file_with_blake2b_256("bb" * 32)
        await tx.delete_file(second)
        return project, listed, by_hash

    project, listed, by_hash = await store.write(body)
    assert [f.filename for f in listed] == ["files_demo-1.0-py3-none-any.whl", "files_demo-1.0.tar.gz"]
    assert listed[1].version == "1.0" and listed[1].requires_python == ">=3.8" and listed[1].yanked is False
    assert by_hash.filename == "files_demo-1.0-py3-none-any.whl"

    async def after(tx: Transaction) -> Any:
        return (
            await tx.get_file("files_demo-1.0-py3-none-any.whl"),
            await tx.filename_registered("files_demo-1.0-py3-none-any.whl"),
            await tx.file_is_stored("files_demo-1.0.tar.gz", "aa" * 32),
            await tx.file_is_stored("files_demo-1.0.tar.gz", "cc" * 32),
        )

    assert await store.read(after) == (None, True, True, False)

    async def drop(tx: Transaction) -> Any:
        await tx.delete_project(project.id)
        return (
            await tx.get_project("files-demo"),
            await tx.get_file("files_demo-1.0.tar.gz"),
            await tx.filename_registered("files_demo-1.0.tar.gz"),
            [e.action for e in await tx.journal_for_project("files-demo")],
        )

    assert await store.write(drop) == (None, None, True, ["create", "new release"])


@pytest_twisted.ensureDeferred
async def test_files_inserted_together(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    insert_files stores every row it is given, with all their values, in
    statements of a bounded number of rows, and registers every name.
    """
    monkeypatch.setattr(transaction, "_ROWS_PER_INSERT", 2)
    names = [f"together-1.0-py3{n}-none-any.whl" for n in range(5)]

    async def body(tx: Transaction) -> Any:
        project, release = await seed_release(tx, "together", "1.0")
        await tx.insert_files(
            [
                NewFile(
                    release.id,
                    name,
                    "bdist_wheel",
                    f"py3{n}",
                    100 + n,
                    f"{n}1" * 32,
                    f"{n}2" * 32,
                    f"{n}3" * 16,
                    3_000 + n,
                    requires_python=">=3.9" if n == 1 else None,
                    metadata_sha256=f"{n}4" * 32 if n == 2 else None,
                    comment_text="built" if n == 3 else None,
                    uploaded_by="alice" if n == 4 else None,
                    yanked=n == 4,
                    yanked_reason="bad" if n == 4 else None,
                )
                for n, name in enumerate(names)
            ]
        )
        await tx.insert_files([])
        return await tx.files_for_project(project.id), [await tx.filename_registered(name) for name in names]

    files, registered = await store.write(body)
    assert registered == [True] * 5
    by_name = {f.filename: f for f in files}
    assert sorted(by_name) == names
    for n, name in enumerate(names):
        file = by_name[name]
        assert (file.version, file.packagetype, file.python_version, file.size, file.upload_time) == (
            "1.0",
            "bdist_wheel",
            f"py3{n}",
            100 + n,
            3_000 + n,
        )
        assert (file.sha256, file.blake2b_256, file.md5) == (f"{n}1" * 32, f"{n}2" * 32, f"{n}3" * 16)
    assert by_name[names[1]].requires_python == ">=3.9" and by_name[names[0]].requires_python is None
    assert by_name[names[2]].metadata_sha256 == "24" * 32
    assert by_name[names[3]].comment_text == "built"
    assert by_name[names[4]].uploaded_by == "alice"
    assert (by_name[names[4]].yanked, by_name[names[4]].yanked_reason) == (True, "bad")
    assert (by_name[names[0]].yanked, by_name[names[0]].yanked_reason) == (False, None)


@pytest_twisted.ensureDeferred
async def test_classifiers_are_browsed(store: Any) -> None:
    """
    A release's classifiers (given twice or not) are stored with it, and
    set_release_classifiers replaces them: browse finds releases carrying
    every classifier asked for.
    """

    async def body(tx: Transaction) -> Any:
        project = await tx.insert_project("Browsed", "browsed", 1_000)
        first = await tx.insert_release(
            project.id, "1.0", "1", 2_000, metadata={"classifiers": ["B :: b", "A :: a", "B :: b"]}
        )
        await tx.insert_release(project.id, "2.0", "2", 2_000, metadata={"classifiers": ["A :: a"]})
        before = (await tx.browse(["A :: a", "B :: b"]), await tx.browse(["A :: a"]))
        await tx.set_release_classifiers(first.id, ["C :: c"])
        return before, (await tx.browse(["A :: a"]), await tx.browse(["C :: c"]), await tx.browse(["B :: b"]))

    before, after = await store.write(body)
    assert before == ([("Browsed", "1.0")], [("Browsed", "1.0"), ("Browsed", "2.0")])
    assert after == ([("Browsed", "2.0")], [("Browsed", "1.0")], [])


@pytest_twisted.ensureDeferred
async def test_release_metadata_and_yanking(store: Any) -> None:
    """
    Release metadata round-trips (JSON included), and yanking a release
    yanks its files with the reason; unyanking clears both.
    """

    async def body(tx: Transaction) -> Any:
        project, release = await seed_release(tx, "yanky", "2.0")
        await seed_file(tx, release, "yanky-2.0.tar.gz")
        await tx.set_release_yanked(release.id, True, "broken build")
        return (
            project,
            await tx.get_release(project.id, "2.0"),
            await tx.files_for_project(project.id),
            await tx.releases_with_canonical_version(project.id, "2"),
        )

    project, release, files, canonical = await store.write(body)
    assert release.yanked is True and release.yanked_reason == "broken build"
    assert release.metadata == {"keywords": "a,b"} and release.summary == "A demo"
    assert [(f.yanked, f.yanked_reason) for f in files] == [(True, "broken build")]
    assert canonical == []

    async def unyank(tx: Transaction) -> Any:
        await tx.set_release_yanked(release.id, False, "ignored")
        await tx.update_release_metadata(release.id, "New summary", "Text", "text/plain", None, {"x": [1]})
        return await tx.get_release(project.id, "2.0"), await tx.files_for_release(release.id)

    release, files = await store.write(unyank)
    assert (release.yanked, release.yanked_reason, release.summary, release.metadata) == (
        False,
        None,
        "New summary",
        {"x": [1]},
    )
    assert [(f.yanked, f.yanked_reason) for f in files] == [(False, None)]


@pytest_twisted.ensureDeferred
async def test_roles(store: Any) -> None:
    """
    Roles are set, replaced, listed Owners first, and removed.
    """

    async def body(tx: Transaction) -> Any:
        alice = await tx.insert_user("alice", None, None, 1)
        bob = await tx.insert_user("Bob", None, None, 1)
        project, _ = await seed_release(tx, "shared")
        await tx.set_role(project.id, bob.id, "Maintainer")
        await tx.set_role(project.id, alice.id, "Maintainer")
        await tx.set_role(project.id, alice.id, "Owner")
        listed = await tx.roles_for_project(project.id)
        mine = await tx.projects_of_user(bob.id)
        removed = await tx.delete_role(project.id, bob.id)
        return listed, mine, removed, await tx.role_of(project.id, bob.id), await tx.role_of(project.id, alice.id)

    assert await store.write(body) == (
        [("Owner", "alice"), ("Maintainer", "Bob")],
        [("Maintainer", "shared")],
        True,
        None,
        "Owner",
    )


@pytest_twisted.ensureDeferred
async def test_tokens(store: Any) -> None:
    """
    Tokens are found by digest, listed per user with their project, and
    revoked once.
    """

    async def body(tx: Transaction) -> Any:
        user = await tx.insert_user("carol", None, None, 1)
        project, _ = await seed_release(tx, "carols")
        everything = await tx.insert_token(user.id, None, "laptop", "d1" * 32, 10)
        scoped = await tx.insert_token(user.id, project.id, "ci", "d2" * 32, 11)
        return user, everything, scoped

    user, everything, scoped = await store.write(body)

    async def use(tx: Transaction) -> Any:
        found = await tx.token_by_digest("d2" * 32)
        await tx.touch_token(found.id, 99)
        first = await tx.revoke_token(everything, 100)
        again = await tx.revoke_token(everything, 101)
        return found, first, again, await tx.tokens_for_user(user.id), await tx.token_by_digest("ff" * 32)

    found, first, again, listed, missing = await store.write(use)
    assert (found.id, found.project_name, found.user_name, found.description) == (scoped, "carols", "carol", "ci")
    assert (first, again, missing) == (True, False, None)
    assert [(t.id, t.revoked, t.last_used, t.project_name) for t in listed] == [
        (everything, 100, None, None),
        (scoped, None, 99, "carols"),
    ]


@pytest_twisted.ensureDeferred
async def test_deleting_a_project_takes_its_scoped_tokens(store: Any) -> None:
    """
    A token scoped to a project goes with the project, so a new project of
    the same name cannot inherit it.
    """

    async def body(tx: Transaction) -> Any:
        user = await tx.insert_user("dave", None, None, 1)
        project, _ = await seed_release(tx, "gone")
        await tx.insert_token(user.id, project.id, "", "e1" * 32, 1)
        await tx.delete_project(project.id)
        return await tx.token_by_digest("e1" * 32)

    assert await store.write(body) is None


@pytest_twisted.ensureDeferred
async def test_reads_do_not_see_uncommitted_writes(settings: Any, store: Any) -> None:
    """
    A read running while a write is open sees the state from before it.
    """
    if store.dialect == "sqlite":
        pytest.skip("the SQLite store runs a transaction body in one go, so none is ever open between awaits")
    started: Deferred[None] = Deferred()
    release: Deferred[None] = Deferred()

    async def slow_write(tx: Transaction) -> None:
        await tx.insert_user("eve", None, None, 1)
        started.callback(None)
        await release

    writing = store.write(slow_write)
    await started

    async def read(tx: Transaction) -> Any:
        return await tx.get_user("eve")

    assert await store.read(read) is None
    release.callback(None)
    await writing
    assert (await store.read(read)).name == "eve"


@pytest_twisted.ensureDeferred
async def test_two_stores_on_one_database_share_one_serial_sequence(settings: Any, store: Any) -> None:
    """
    Two stores on the same database (two daemons) writing at once hand out
    distinct serials, committed in order.
    """
    from twisted.internet import reactor

    other = open_store(settings, reactor)
    await other.start()
    try:

        async def setup(tx: Transaction) -> None:
            await tx.insert_project("race", "race", 1)

        await store.write(setup)

        def add(target: Any, n: int) -> Deferred[int]:
            async def body(tx: Transaction) -> int:
                return await tx.append_journal("race", "race", str(n), "new release", n, None)

            return target.write(body)

        serials = await gatherResults([add(store if n % 2 else other, n) for n in range(40)])
        assert sorted(serials) == list(range(1, 41))

        async def read(tx: Transaction) -> Any:
            return await tx.journal_since(0), await tx.get_project("race")

        entries, project = await other.read(read)
        assert [e.serial for e in entries] == list(range(1, 41))
        assert project.last_serial == 40
    finally:
        await other.stop()


@pytest_twisted.ensureDeferred
async def test_index_state_and_published_serial(store: Any) -> None:
    """
    State keys are set and replaced; the published serial is the journal's
    until a mirror serial is set, and then that one.
    """

    async def body(tx: Transaction) -> Any:
        await seed_release(tx)
        before = (await tx.get_state("mirror_of"), await tx.published_serial())
        await tx.set_state("mirror_of", "http://a.example")
        await tx.set_state("mirror_of", "http://b.example")
        await tx.set_state("mirror_serial", "41")
        return before, await tx.get_state("mirror_of"), await tx.published_serial()

    assert await store.write(body) == ((None, 2), "http://b.example", 41)


@pytest_twisted.ensureDeferred
async def test_mirror_bookkeeping(store: Any) -> None:
    """
    A project's failures add up until it is applied, which records its
    serial and fingerprint and clears them.
    """

    async def body(tx: Transaction) -> Any:
        await tx.mirror_project_failed("demo", "upstream said 500")
        await tx.mirror_project_failed("demo", "stale page")
        failed = await tx.mirror_project("demo")
        await tx.set_mirror_project("demo", 12, "abc")
        return failed, await tx.mirror_project("demo"), await tx.mirror_projects(), await tx.mirror_project("none")

    failed, applied, everything, missing = await store.write(body)
    assert (failed.serial, failed.failures, failed.last_error) == (0, 2, "stale page")
    assert (applied.serial, applied.fingerprint, applied.failures, applied.last_error) == (12, "abc", 0, None)
    assert everything == {"demo": applied} and missing is None


@pytest_twisted.ensureDeferred
async def test_serversigs_and_downloads(store: Any) -> None:
    """
    Signatures are kept as bytes by project; download counts add up per
    day, file and user agent.
    """

    async def body(tx: Transaction) -> Any:
        await tx.set_serversig("demo", 3, b"\x30\x2c\x00\xff")
        await tx.set_serversig("demo", 4, b"\x30\x2d")
        await tx.set_serversig("gone", 1, b"x")
        await tx.delete_serversig("gone")
        await tx.add_downloads([("2026-11-20", "demo", "demo-1.0.tar.gz", "pip/25", 2)])
        await tx.add_downloads(
            [("2026-11-20", "demo", "demo-1.0.tar.gz", "pip/25", 3), ("2026-11-21", "demo", "demo-1.0.tar.gz", "uv", 1)]
        )
        return (
            await tx.serversig("demo"),
            await tx.serversig("gone"),
            await tx.downloads_on("2026-11-20"),
            await tx.download_days(),
        )

    signature, gone, counts, days = await store.write(body)
    assert signature == (4, b"\x30\x2d") and gone is None
    assert counts == [("demo", "demo-1.0.tar.gz", "pip/25", 5)]
    assert days == ["2026-11-20", "2026-11-21"]


@pytest_twisted.ensureDeferred
async def test_sessions_are_found_by_digest_until_they_expire(store: Any) -> None:
    """
    A session is found by its digest, with its user's name and CSRF token,
    until its expiry; deleting it, its user's others, or the expired ones
    removes exactly those.
    """

    async def body(tx: Transaction) -> Any:
        alice = await tx.insert_user("Alice", None, "hash", 1)
        bob = await tx.insert_user("bob", None, "hash", 1)
        await tx.insert_session("a1", alice.id, "csrf-a1", 10, 100)
        await tx.insert_session("a2", alice.id, "csrf-a2", 10, 200)
        await tx.insert_session("a3", alice.id, "csrf-a3", 10, 200)
        await tx.insert_session("b1", bob.id, "csrf-b1", 10, 50)
        return alice

    alice = await store.write(body)

    async def find(tx: Transaction, digest: str, now: int) -> Any:
        return await tx.session_by_digest(digest, now)

    found = await store.read(find, "a1", 99)
    assert (found.digest, found.user_id, found.user_name, found.csrf_token, found.created, found.expires) == (
        "a1",
        alice.id,
        "Alice",
        "csrf-a1",
        10,
        100,
    )
    assert await store.read(find, "a1", 100) is None  # expired
    assert await store.read(find, "nope", 0) is None

    async def clean(tx: Transaction) -> Any:
        return (
            await tx.delete_expired_sessions(60),
            await tx.delete_sessions_of_user(alice.id, keep="a2"),
            await tx.delete_session("a2"),
            await tx.delete_session("a2"),
        )

    assert await store.write(clean) == (1, 2, True, False)  # b1 expired; a1, a3 ended; a2 once
    for digest in ("a1", "a2", "a3", "b1"):
        assert await store.read(find, digest, 0) is None


@pytest_twisted.ensureDeferred
async def test_sessions_go_with_their_user(store: Any) -> None:
    """
    Deleting a user deletes the user's sessions (ON DELETE CASCADE).
    """

    async def body(tx: Transaction) -> Any:
        carol = await tx.insert_user("carol", None, None, 1)
        await tx.insert_session("c1", carol.id, "t", 1, 10**12)
        await tx._run("DELETE FROM users WHERE id = %s", (carol.id,))
        return await tx.session_by_digest("c1", 0)

    assert await store.write(body) is None


@pytest_twisted.ensureDeferred
async def test_counts_and_recent_releases(store: Any) -> None:
    """
    The index's counts of projects, releases and files, and its releases by
    their newest file, newest first (releases without files left out).
    """

    async def body(tx: Transaction) -> Any:
        _, one = await seed_release(tx, "one", "1.0")
        _, two = await seed_release(tx, "two", "1.0")
        await seed_release(tx, "one", "2.0")  # no files
        await seed_file(tx, one, "one-1.0.tar.gz", "aa" * 32)
        await seed_file(tx, two, "two-1.0.tar.gz", "bb" * 32)
        return await tx.counts(), await tx.recent_releases(10), await tx.recent_releases(1)

    counts, recent, first = await store.write(body)
    assert (counts.projects, counts.releases, counts.files) == (2, 3, 2)
    assert [(r.name, r.version, r.summary, r.uploaded) for r in recent] == [
        ("two", "1.0", "A demo", 3_000),
        ("one", "1.0", "A demo", 3_000),
    ]
    assert first == recent[:1]
