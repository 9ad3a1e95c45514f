# -*- test-case-name: tests.storage.test_contract -*-
"""
Every query the index runs, written once for both backends.

A L{Transaction} wraps a cursor whose C{execute} returns something awaitable:
a txpostgres cursor's Deferred on PostgreSQL, and on SQLite an already
finished value (the whole transaction body runs on the SQLite thread; see
L{twistedindex.storage.sqlite}).  The SQL uses C{%s} placeholders; the SQLite
cursor turns them into C{?}.  Where the dialects differ, the query asks
L{Transaction.dialect}.

Storage knows no domain rules: these methods read and write rows and keep the
journal's bookkeeping (serials, each project's last serial), nothing more.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, TypeVar

from attrs import astuple, fields

from ..names import latest_release, version_key
from .rows import (
    Counts,
    File,
    JournalEntry,
    MirrorProject,
    NewFile,
    Project,
    RecentRelease,
    Release,
    SearchHit,
    Session,
    Token,
    User,
)
from .search import Query, compile_query


class Cursor(Protocol):
    """
    What a L{Transaction} needs from a backend's cursor.
    """

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[object]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    @property
    def rowcount(self) -> int: ...

    def call(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """
        Run blocking work (file system calls) inside the transaction.
        """


T = TypeVar("T")


class TransactionBodyError(RuntimeError):
    """
    A transaction body run synchronously awaited something other than its
    transaction's queries.
    """


class Ready:
    """
    An awaitable that is already finished: awaiting it gives C{value} at once.

    A cursor that executes synchronously returns these, so that a transaction
    body (an C{async def}) runs to its end in one call of L{run_to_end}.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __await__(self) -> Generator[None, None, object]:
        return self.value
        yield  # pragma: no cover  (makes this a generator)


def run_to_end(awaitable: Awaitable[T]) -> T:
    """
    Run a transaction body whose cursor executes synchronously.

    :raises TransactionBodyError: if it awaited anything unfinished.
    """
    coroutine = awaitable.__await__()
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise TransactionBodyError("a transaction body awaited something other than its own queries")


class SyncCursor:
    """
    The L{Cursor} shape over a blocking DB-API cursor (sqlite3 or psycopg2),
    for work done synchronously: migrations, and SQLite's own thread.
    """

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self.dialect = dialect
        self._translate = dialect == "sqlite"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[object]:
        self._cursor.execute(to_qmark(sql) if self._translate else sql, params)
        return Ready(self)

    def call(self, function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        # Already on a thread of our own: run it here.
        return Ready(function(*args))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()  # type: ignore[no-any-return]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()  # type: ignore[no-any-return]

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


_PLACEHOLDER = re.compile(r"%(s|%)")


@functools.lru_cache(maxsize=1024)
def to_qmark(sql: str) -> str:
    """
    C{%s} placeholders as SQLite's C{?}; C{%%} as a literal C{%}.
    """
    return _PLACEHOLDER.sub(lambda m: "?" if m.group(1) == "s" else "%", sql)


# PostgreSQL: every journal append is announced on this channel (delivered at
# commit), so that every daemon on the database learns of it at once.
JOURNAL_CHANNEL = "cheeseshop_journal"

# PostgreSQL: every write transaction takes this transaction-level advisory
# lock first.  Writers across all daemons on the database therefore run one at
# a time, and a journal serial is handed out and committed before the next
# writer starts: a mirror that has read serial N will never later find a new
# N-1.  Start-up file recovery holds it too.
WRITE_LOCK = 0x7477_6973_7465_6402

_RELEASE_COLUMNS = (
    "r.id, r.project_id, r.version, r.canonical_version, r.created, r.yanked, "
    "r.yanked_reason, r.summary, r.description, r.description_content_type, "
    "r.requires_python, r.metadata"
)
_FILE_COLUMNS = (
    "f.id, f.release_id, r.version, f.filename, f.packagetype, f.python_version, "
    "f.size, f.sha256, f.blake2b_256, f.md5, f.upload_time, f.yanked, "
    "f.yanked_reason, f.requires_python, f.metadata_sha256, f.comment_text, "
    "f.uploaded_by"
)
_TOKEN_COLUMNS = "t.id, t.user_id, u.name, t.project_id, p.name, t.description, t.created, t.last_used, t.revoked"


def _release(row: Sequence[Any]) -> Release:
    values = list(row)
    values[5] = bool(values[5])
    values[11] = json.loads(values[11]) if values[11] else {}
    return Release(*values)


def _file(row: Sequence[Any]) -> File:
    values = list(row)
    values[11] = bool(values[11])
    return File(*values)


class Transaction:
    """
    The queries of one database transaction.

    Instances come from a store's C{read} or C{write}; a transaction body
    receives one and awaits its methods, and nothing else.
    """

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor
        self.dialect = cursor.dialect

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        await self._cursor.execute(sql, params)
        return self._cursor.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        await self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    async def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        await self._cursor.execute(sql, params)
        return self._cursor.rowcount

    async def blocking(self, function: Callable[..., T], *args: Any) -> T:
        """
        Run blocking file work while the transaction (and, in a write, the
        write lock) is held: placing an upload's file is ordered with the
        checks before it and the commit after it.
        """
        result: T = await self._cursor.call(function, *args)
        return result

    # Users

    async def get_user(self, name: str) -> User | None:
        """
        The user called C{name}, compared without regard to case.
        """
        row = await self._one(
            "SELECT id, name, email, password_hash, created FROM users WHERE normalized_name = %s",
            (name.lower(),),
        )
        return User(*row) if row else None

    async def insert_user(self, name: str, email: str | None, password_hash: str | None, now: int) -> User:
        row = await self._one(
            "INSERT INTO users (name, normalized_name, email, password_hash, created) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (name, name.lower(), email, password_hash, now),
        )
        assert row is not None
        return User(row[0], name, email, password_hash, now)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._run("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))

    async def list_users(self) -> list[User]:
        rows = await self._all("SELECT id, name, email, password_hash, created FROM users ORDER BY normalized_name")
        return [User(*row) for row in rows]

    # API tokens

    async def insert_token(self, user_id: int, project_id: int | None, description: str, digest: str, now: int) -> int:
        row = await self._one(
            "INSERT INTO tokens (user_id, project_id, description, digest, created) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (user_id, project_id, description, digest, now),
        )
        assert row is not None
        return int(row[0])

    _TOKEN_FROM = (
        f"SELECT {_TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id "
        "LEFT JOIN projects p ON p.id = t.project_id "
    )

    async def get_token(self, token_id: int) -> Token | None:
        row = await self._one(self._TOKEN_FROM + "WHERE t.id = %s", (token_id,))
        return Token(*row) if row else None

    async def token_by_digest(self, digest: str) -> Token | None:
        row = await self._one(self._TOKEN_FROM + "WHERE t.digest = %s", (digest,))
        return Token(*row) if row else None

    async def tokens_for_user(self, user_id: int) -> list[Token]:
        rows = await self._all(self._TOKEN_FROM + "WHERE t.user_id = %s ORDER BY t.id", (user_id,))
        return [Token(*row) for row in rows]

    async def revoke_token(self, token_id: int, now: int) -> bool:
        """
        Mark a token revoked; C{False} if it was revoked already or is unknown.
        """
        count = await self._run("UPDATE tokens SET revoked = %s WHERE id = %s AND revoked IS NULL", (now, token_id))
        return count > 0

    async def touch_token(self, token_id: int, now: int) -> None:
        await self._run("UPDATE tokens SET last_used = %s WHERE id = %s", (now, token_id))

    # Web sessions

    async def insert_session(self, digest: str, user_id: int, csrf_token: str, now: int, expires: int) -> None:
        await self._run(
            "INSERT INTO sessions (digest, user_id, csrf_token, created, expires) VALUES (%s, %s, %s, %s, %s)",
            (digest, user_id, csrf_token, now, expires),
        )

    async def session_by_digest(self, digest: str, now: int) -> Session | None:
        """
        The session with this digest, unless it expired by C{now}.
        """
        row = await self._one(
            "SELECT s.digest, s.user_id, u.name, s.csrf_token, s.created, s.expires "
            "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = %s AND s.expires > %s",
            (digest, now),
        )
        return Session(*row) if row else None

    async def delete_session(self, digest: str) -> bool:
        return await self._run("DELETE FROM sessions WHERE digest = %s", (digest,)) > 0

    async def delete_sessions_of_user(self, user_id: int, keep: str | None = None) -> int:
        """
        End every session of a user, but the one whose digest is C{keep}.
        """
        return await self._run("DELETE FROM sessions WHERE user_id = %s AND digest <> %s", (user_id, keep or ""))

    async def delete_expired_sessions(self, now: int) -> int:
        return await self._run("DELETE FROM sessions WHERE expires <= %s", (now,))

    # Projects and roles

    _PROJECT_SELECT = "SELECT id, name, normalized_name, created, last_serial FROM projects "

    async def get_project(self, normalized_name: str) -> Project | None:
        row = await self._one(self._PROJECT_SELECT + "WHERE normalized_name = %s", (normalized_name,))
        return Project(*row) if row else None

    async def get_project_by_id(self, project_id: int) -> Project | None:
        row = await self._one(self._PROJECT_SELECT + "WHERE id = %s", (project_id,))
        return Project(*row) if row else None

    async def list_projects(self) -> list[Project]:
        rows = await self._all(self._PROJECT_SELECT + "ORDER BY normalized_name")
        return [Project(*row) for row in rows]

    async def insert_project(self, name: str, normalized_name: str, now: int) -> Project:
        row = await self._one(
            "INSERT INTO projects (name, normalized_name, created) VALUES (%s, %s, %s) RETURNING id",
            (name, normalized_name, now),
        )
        assert row is not None
        return Project(row[0], name, normalized_name, now, 0)

    async def rename_project(self, project_id: int, name: str) -> None:
        await self._run("UPDATE projects SET name = %s WHERE id = %s", (name, project_id))

    async def delete_project(self, project_id: int) -> None:
        # Releases, files, roles and project tokens go with it (ON DELETE
        # CASCADE); the file registry and the journal stay.  The search
        # document is deleted here, so that SQLite's full-text trigger runs.
        await self._run("DELETE FROM search_documents WHERE project_id = %s", (project_id,))
        await self._run("DELETE FROM projects WHERE id = %s", (project_id,))

    async def roles_for_project(self, project_id: int) -> list[tuple[str, str]]:
        """
        C{(role, user name)} pairs, Owners first, then by user name.
        """
        rows = await self._all(
            "SELECT r.role, u.name FROM roles r JOIN users u ON u.id = r.user_id "
            "WHERE r.project_id = %s ORDER BY r.role DESC, u.normalized_name",
            (project_id,),
        )
        return [(row[0], row[1]) for row in rows]

    async def role_of(self, project_id: int, user_id: int) -> str | None:
        row = await self._one("SELECT role FROM roles WHERE project_id = %s AND user_id = %s", (project_id, user_id))
        return row[0] if row else None

    async def set_role(self, project_id: int, user_id: int, role: str) -> None:
        await self._run(
            "INSERT INTO roles (project_id, user_id, role) VALUES (%s, %s, %s) "
            "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            (project_id, user_id, role),
        )

    async def delete_role(self, project_id: int, user_id: int) -> bool:
        count = await self._run("DELETE FROM roles WHERE project_id = %s AND user_id = %s", (project_id, user_id))
        return count > 0

    async def projects_of_user(self, user_id: int) -> list[tuple[str, str]]:
        """
        C{(role, project display name)} pairs for one user, by project name.
        """
        rows = await self._all(
            "SELECT r.role, p.name FROM roles r JOIN projects p ON p.id = r.project_id "
            "WHERE r.user_id = %s ORDER BY p.normalized_name",
            (user_id,),
        )
        return [(row[0], row[1]) for row in rows]

    # Releases

    async def get_release(self, project_id: int, version: str) -> Release | None:
        row = await self._one(
            f"SELECT {_RELEASE_COLUMNS} FROM releases r WHERE r.project_id = %s AND r.version = %s",
            (project_id, version),
        )
        return _release(row) if row else None

    async def releases_with_canonical_version(self, project_id: int, canonical_version: str) -> list[Release]:
        rows = await self._all(
            f"SELECT {_RELEASE_COLUMNS} FROM releases r "
            "WHERE r.project_id = %s AND r.canonical_version = %s ORDER BY r.id",
            (project_id, canonical_version),
        )
        return [_release(row) for row in rows]

    async def releases_for_project(self, project_id: int) -> list[Release]:
        rows = await self._all(
            f"SELECT {_RELEASE_COLUMNS} FROM releases r WHERE r.project_id = %s ORDER BY r.id",
            (project_id,),
        )
        return [_release(row) for row in rows]

    async def insert_release(
        self,
        project_id: int,
        version: str,
        canonical_version: str,
        now: int,
        summary: str | None = None,
        description: str | None = None,
        description_content_type: str | None = None,
        requires_python: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Release:
        encoded = json.dumps(metadata or {}, sort_keys=True)
        row = await self._one(
            "INSERT INTO releases (project_id, version, canonical_version, created, summary, "
            "description, description_content_type, requires_python, metadata) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                project_id,
                version,
                canonical_version,
                now,
                summary,
                description,
                description_content_type,
                requires_python,
                encoded,
            ),
        )
        assert row is not None
        await self._add_classifiers(row[0], (metadata or {}).get("classifiers", []))
        return Release(
            row[0],
            project_id,
            version,
            canonical_version,
            now,
            False,
            None,
            summary,
            description,
            description_content_type,
            requires_python,
            dict(metadata or {}),
        )

    async def update_release_metadata(
        self,
        release_id: int,
        summary: str | None,
        description: str | None,
        description_content_type: str | None,
        requires_python: str | None,
        metadata: dict[str, Any],
    ) -> None:
        await self._run(
            "UPDATE releases SET summary = %s, description = %s, description_content_type = %s, "
            "requires_python = %s, metadata = %s WHERE id = %s",
            (
                summary,
                description,
                description_content_type,
                requires_python,
                json.dumps(metadata, sort_keys=True),
                release_id,
            ),
        )
        await self.set_release_classifiers(release_id, metadata.get("classifiers", []))

    async def set_release_classifiers(self, release_id: int, classifiers: Sequence[str]) -> None:
        """
        Record a release's classifiers for L{browse}.
        """
        await self._run("DELETE FROM release_classifiers WHERE release_id = %s", (release_id,))
        await self._add_classifiers(release_id, classifiers)

    async def _add_classifiers(self, release_id: int, classifiers: Sequence[str]) -> None:
        unique = sorted(set(classifiers))
        if unique:
            values = ", ".join(["(%s, %s)"] * len(unique))
            await self._run(
                f"INSERT INTO release_classifiers (release_id, classifier) VALUES {values}",
                [value for classifier in unique for value in (release_id, classifier)],
            )

    async def set_release_yanked(self, release_id: int, yanked: bool, reason: str | None) -> None:
        """
        Yank or unyank a release and every file in it.
        """
        reason = reason if yanked else None
        await self._run(
            "UPDATE releases SET yanked = %s, yanked_reason = %s WHERE id = %s", (yanked, reason, release_id)
        )
        await self._run(
            "UPDATE files SET yanked = %s, yanked_reason = %s WHERE release_id = %s", (yanked, reason, release_id)
        )

    async def delete_release(self, release_id: int) -> None:
        await self._run("DELETE FROM releases WHERE id = %s", (release_id,))

    # Files

    _FILE_FROM = f"SELECT {_FILE_COLUMNS} FROM files f JOIN releases r ON r.id = f.release_id "

    async def get_file(self, filename: str) -> File | None:
        row = await self._one(self._FILE_FROM + "WHERE f.filename = %s", (filename,))
        return _file(row) if row else None

    async def file_with_blake2b_256(self, blake2b_256: str) -> File | None:
        row = await self._one(self._FILE_FROM + "WHERE f.blake2b_256 = %s", (blake2b_256,))
        return _file(row) if row else None

    async def files_for_release(self, release_id: int) -> list[File]:
        rows = await self._all(self._FILE_FROM + "WHERE f.release_id = %s ORDER BY f.filename", (release_id,))
        return [_file(row) for row in rows]

    async def files_for_project(self, project_id: int) -> list[File]:
        rows = await self._all(self._FILE_FROM + "WHERE r.project_id = %s ORDER BY r.id, f.filename", (project_id,))
        return [_file(row) for row in rows]

    async def insert_file(
        self,
        release_id: int,
        filename: str,
        packagetype: str,
        python_version: str,
        size: int,
        sha256: str,
        blake2b_256: str,
        md5: str,
        upload_time: int,
        requires_python: str | None = None,
        metadata_sha256: str | None = None,
        comment_text: str | None = None,
        uploaded_by: str | None = None,
        yanked: bool = False,
        yanked_reason: str | None = None,
    ) -> int:
        """
        Store a file's row and enter its name in the file registry.
        """
        file = NewFile(
            release_id,
            filename,
            packagetype,
            python_version,
            size,
            sha256,
            blake2b_256,
            md5,
            upload_time,
            requires_python,
            metadata_sha256,
            comment_text,
            uploaded_by,
            yanked,
            yanked_reason,
        )
        row = await self._one(_insert_files_sql(1) + " RETURNING id", astuple(file, recurse=False))
        await self._register_filenames([filename])
        assert row is not None
        return int(row[0])

    async def insert_files(self, files: Sequence[NewFile]) -> None:
        """
        Store several files' rows, and enter their names in the file
        registry, in a statement or two (a mirror adds a project's files
        at once).
        """
        for start in range(0, len(files), _ROWS_PER_INSERT):
            chunk = files[start : start + _ROWS_PER_INSERT]
            await self._run(
                _insert_files_sql(len(chunk)), [value for file in chunk for value in astuple(file, recurse=False)]
            )
            await self._register_filenames([file.filename for file in chunk])

    async def _register_filenames(self, filenames: Sequence[str]) -> None:
        values = ", ".join(["(%s)"] * len(filenames))
        await self._run(f"INSERT INTO file_registry (filename) VALUES {values} ON CONFLICT DO NOTHING", filenames)

    async def delete_file(self, file_id: int) -> None:
        await self._run("DELETE FROM files WHERE id = %s", (file_id,))

    async def filename_registered(self, filename: str) -> bool:
        """
        Whether C{filename} was ever stored, even if its file is gone now.
        """
        row = await self._one("SELECT 1 FROM file_registry WHERE filename = %s", (filename,))
        return row is not None

    async def file_is_stored(self, filename: str, blake2b_256: str) -> bool:
        row = await self._one("SELECT 1 FROM files WHERE filename = %s AND blake2b_256 = %s", (filename, blake2b_256))
        return row is not None

    async def existing_filenames(self, filenames: Sequence[str]) -> set[str]:
        """
        Which of C{filenames} are files here now.
        """
        if not filenames:
            return set()
        placeholders = ", ".join(["%s"] * len(filenames))
        rows = await self._all(f"SELECT filename FROM files WHERE filename IN ({placeholders})", tuple(filenames))
        return {row[0] for row in rows}

    async def project_of_file(self, filename: str, blake2b_256: str) -> str | None:
        """
        The name of the project holding this committed file, if any.
        """
        row = await self._one(
            "SELECT p.name FROM files f JOIN releases r ON r.id = f.release_id JOIN projects p ON p.id = r.project_id "
            "WHERE f.filename = %s AND f.blake2b_256 = %s",
            (filename, blake2b_256),
        )
        return None if row is None else str(row[0])

    # The journal

    async def append_journal(
        self,
        name: str,
        normalized_name: str,
        version: str | None,
        action: str,
        now: int,
        submitted_by: str | None = None,
        serial: int | None = None,
    ) -> int:
        """
        Add one journal entry and move the project's last serial to it.

        :param serial: the serial to use, for a mirror replaying its upstream's
            journal; by default the next one.  Serials only ever increase:
            the caller holds the write lock (see the stores), so taking the
            maximum plus one cannot race.
        :return: the entry's serial.
        """
        if serial is None:
            row = await self._one("SELECT COALESCE(MAX(serial), 0) + 1 FROM journal")
            assert row is not None
            serial = int(row[0])
        await self._run(
            "INSERT INTO journal (serial, name, normalized_name, version, timestamp, action, submitted_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (serial, name, normalized_name, version, now, action, submitted_by),
        )
        await self._run(
            "UPDATE projects SET last_serial = %s WHERE normalized_name = %s AND last_serial < %s",
            (serial, normalized_name, serial),
        )
        if self.dialect == "postgres":
            # Delivered at commit to every daemon LISTENing on the database.
            await self._run("SELECT pg_notify(%s, '')", (JOURNAL_CHANNEL,))
        return serial

    _JOURNAL_SELECT = "SELECT serial, name, normalized_name, version, timestamp, action, submitted_by FROM journal "

    async def journal_since(self, serial: int, limit: int | None = None) -> list[JournalEntry]:
        """
        Entries with a serial above C{serial}, oldest first.
        """
        return await self._journal_where("serial > %s", serial, limit)

    async def _journal_where(self, condition: str, value: Any, limit: int | None) -> list[JournalEntry]:
        sql = self._JOURNAL_SELECT + f"WHERE {condition} ORDER BY serial"
        params: tuple[Any, ...] = (value,)
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        return [JournalEntry(*row) for row in await self._all(sql, params)]

    async def changelog_rows(self, serial: int, limit: int) -> list[tuple[str, str | None, int, str, int]]:
        """
        C{(name, version, timestamp in seconds, action, serial)} of the entries
        after C{serial}, oldest first: what mirrors ask for, many at a time, as
        plain tuples.
        """
        rows = await self._all(
            "SELECT name, version, timestamp, action, serial FROM journal WHERE serial > %s ORDER BY serial LIMIT %s",
            (serial, limit),
        )
        return [
            (name, version, timestamp // 1_000_000, action, number) for name, version, timestamp, action, number in rows
        ]

    async def journal_for_project(self, normalized_name: str) -> list[JournalEntry]:
        return await self._journal_where("normalized_name = %s", normalized_name, None)

    async def last_serial(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(serial), 0) FROM journal")
        assert row is not None
        return int(row[0])

    async def last_change_time(self) -> int | None:
        """
        When the newest journal entry was made (microseconds), if any.
        """
        row = await self._one("SELECT timestamp FROM journal ORDER BY serial DESC LIMIT 1")
        return None if row is None else int(row[0])

    async def project_serials(self) -> dict[str, int]:
        """
        Every project's last serial, by normalized name.
        """
        rows = await self._all("SELECT normalized_name, last_serial FROM projects")
        return {row[0]: int(row[1]) for row in rows}

    async def journal_after_time(self, timestamp: int, limit: int | None = None) -> list[JournalEntry]:
        """
        Entries made after C{timestamp} (microseconds), oldest first.
        """
        return await self._journal_where("timestamp > %s", timestamp, limit)

    async def releases_added_after(self, timestamp: int) -> list[tuple[str, str]]:
        """
        C{(project name, version)} of the releases created after C{timestamp}
        that still exist, newest first.
        """
        rows = await self._all(
            "SELECT p.name, r.version FROM journal j "
            "JOIN projects p ON p.normalized_name = j.normalized_name "
            "JOIN releases r ON r.project_id = p.id AND r.version = j.version "
            "WHERE j.action = 'new release' AND j.timestamp > %s ORDER BY j.serial DESC",
            (timestamp,),
        )
        return [(row[0], row[1]) for row in rows]

    async def names_changed_after(self, timestamp: int) -> list[str]:
        """
        The names in journal entries made after C{timestamp}, each once.
        """
        rows = await self._all(
            "SELECT name, MIN(serial) FROM journal WHERE timestamp > %s GROUP BY name ORDER BY MIN(serial)",
            (timestamp,),
        )
        return [row[0] for row in rows]

    # Search

    async def counts(self) -> Counts:
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM projects), (SELECT COUNT(*) FROM releases), (SELECT COUNT(*) FROM files)"
        )
        assert row is not None
        return Counts(*(int(n) for n in row))

    async def recent_releases(self, limit: int) -> list[RecentRelease]:
        """
        The releases with the newest files, newest first.
        """
        rows = await self._all(
            "SELECT p.name, p.normalized_name, r.version, r.summary, MAX(f.upload_time) AS uploaded "
            "FROM files f JOIN releases r ON r.id = f.release_id JOIN projects p ON p.id = r.project_id "
            "GROUP BY r.id, p.name, p.normalized_name, r.version, r.summary ORDER BY uploaded DESC, r.id DESC LIMIT %s",
            (limit,),
        )
        return [RecentRelease(*row) for row in rows]

    async def refresh_search_document(self, project_id: int) -> None:
        """
        Make a project's search document that of its newest release (PyPI's
        "latest": see L{latest_release}), or remove it if there is none.
        """
        await self._run("DELETE FROM search_documents WHERE project_id = %s", (project_id,))
        project = await self.get_project_by_id(project_id)
        releases = await self.releases_for_project(project_id) if project is not None else []
        if project is None or not releases:
            return
        latest = latest_release(releases)
        ordering = sorted(releases, key=lambda r: version_key(r.version)).index(latest)
        metadata = latest.metadata

        def text(name: str) -> str:
            value = metadata.get(name)
            if isinstance(value, list):
                return ", ".join(str(v) for v in value)
            return str(value) if value else ""

        await self._run(
            "INSERT INTO search_documents (project_id, normalized_name, name, version, ordering, summary, "
            "keywords, description, author, author_email, maintainer, maintainer_email, home_page, license, "
            "platform, download_url) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                project_id,
                project.normalized_name,
                project.name,
                latest.version,
                ordering,
                latest.summary or "",
                text("keywords"),
                latest.description or "",
                text("author"),
                text("author_email"),
                text("maintainer"),
                text("maintainer_email"),
                text("home_page"),
                text("license") or text("license_expression"),
                text("platforms"),
                text("download_url"),
            ),
        )

    async def search(self, query: Query, limit: int, offset: int = 0) -> list[SearchHit]:
        """
        The projects matching C{query}, best first.
        """
        where, where_params, rank, rank_params = compile_query(query, self.dialect)
        ranking = f"{rank}, " if rank else ""
        rows = await self._all(
            "SELECT d.name, d.normalized_name, d.version, d.summary, d.ordering FROM search_documents d "
            f"WHERE {where} ORDER BY (d.normalized_name = %s) DESC, {ranking}d.normalized_name LIMIT %s OFFSET %s",
            (*where_params, query.exact_name(), *rank_params, limit, offset),
        )
        return [SearchHit(*row) for row in rows]

    async def browse(self, classifiers: Sequence[str]) -> list[tuple[str, str]]:
        """
        C{(project name, version)} of the releases carrying every one of
        C{classifiers}.
        """
        wanted = sorted(set(classifiers))
        if not wanted:
            return []
        placeholders = ", ".join(["%s"] * len(wanted))
        rows = await self._all(
            "SELECT p.name, r.version FROM releases r JOIN projects p ON p.id = r.project_id "
            "WHERE r.id IN (SELECT release_id FROM release_classifiers "
            f"WHERE classifier IN ({placeholders}) GROUP BY release_id HAVING COUNT(*) = %s) "
            "ORDER BY p.normalized_name, r.id",
            (*wanted, len(wanted)),
        )
        return [(row[0], row[1]) for row in rows]

    # The index's own state (schema version 3)

    async def get_state(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM index_state WHERE key = %s", (key,))
        return None if row is None else str(row[0])

    async def set_state(self, key: str, value: str) -> None:
        await self._run(
            "INSERT INTO index_state (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def published_serial(self) -> int:
        """
        The serial the index vouches for: every change up to it can be read.
        A mirror's is its upstream serial applied in full, which may lag the
        projects it has already brought forward; a master's is its journal's.
        """
        mirrored = await self.get_state("mirror_serial")
        return int(mirrored) if mirrored is not None else await self.last_serial()

    # A mirror's bookkeeping

    async def mirror_project(self, normalized_name: str) -> MirrorProject | None:
        row = await self._one(
            "SELECT normalized_name, serial, fingerprint, failures, last_error FROM mirror_projects "
            "WHERE normalized_name = %s",
            (normalized_name,),
        )
        return None if row is None else MirrorProject(*row)

    async def mirror_projects(self) -> dict[str, MirrorProject]:
        rows = await self._all("SELECT normalized_name, serial, fingerprint, failures, last_error FROM mirror_projects")
        return {row[0]: MirrorProject(*row) for row in rows}

    async def set_mirror_project(self, normalized_name: str, serial: int, fingerprint: str | None) -> None:
        """
        Record a project as applied up to C{serial}, clearing its failures.
        """
        await self._run(
            "INSERT INTO mirror_projects (normalized_name, serial, fingerprint, failures, last_error) "
            "VALUES (%s, %s, %s, 0, NULL) ON CONFLICT (normalized_name) DO UPDATE SET "
            "serial = excluded.serial, fingerprint = excluded.fingerprint, failures = 0, last_error = NULL",
            (normalized_name, serial, fingerprint),
        )

    async def mirror_project_failed(self, normalized_name: str, error: str) -> None:
        await self._run(
            "INSERT INTO mirror_projects (normalized_name, serial, fingerprint, failures, last_error) "
            "VALUES (%s, 0, NULL, 1, %s) ON CONFLICT (normalized_name) DO UPDATE SET "
            "failures = mirror_projects.failures + 1, last_error = excluded.last_error",
            (normalized_name, error),
        )

    async def set_project_serial(self, project_id: int, serial: int) -> None:
        """
        A mirror's: set a project's serial to its upstream's.
        """
        await self._run("UPDATE projects SET last_serial = %s WHERE id = %s", (serial, project_id))

    # PEP 381

    async def serversig(self, normalized_name: str) -> tuple[int, bytes] | None:
        row = await self._one("SELECT serial, signature FROM serversigs WHERE normalized_name = %s", (normalized_name,))
        return None if row is None else (int(row[0]), bytes(row[1]))

    async def set_serversig(self, normalized_name: str, serial: int, signature: bytes) -> None:
        await self._run(
            "INSERT INTO serversigs (normalized_name, serial, signature) VALUES (%s, %s, %s) "
            "ON CONFLICT (normalized_name) DO UPDATE SET serial = excluded.serial, signature = excluded.signature",
            (normalized_name, serial, signature),
        )

    async def delete_serversig(self, normalized_name: str) -> None:
        await self._run("DELETE FROM serversigs WHERE normalized_name = %s", (normalized_name,))

    async def add_downloads(self, counts: Sequence[tuple[str, str, str, str, int]]) -> None:
        """
        Add C{(day, project, filename, user agent, count)} download counts.
        """
        for day, project, filename, user_agent, count in counts:
            await self._run(
                "INSERT INTO downloads (day, project, filename, user_agent, count) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (day, filename, user_agent) DO UPDATE SET count = downloads.count + excluded.count",
                (day, project, filename, user_agent, count),
            )

    async def downloads_on(self, day: str) -> list[tuple[str, str, str, int]]:
        """
        C{(project, filename, user agent, count)} for one day, in that order.
        """
        rows = await self._all(
            "SELECT project, filename, user_agent, count FROM downloads WHERE day = %s "
            "ORDER BY project, filename, user_agent",
            (day,),
        )
        return [(row[0], row[1], row[2], int(row[3])) for row in rows]

    async def download_days(self) -> list[str]:
        rows = await self._all("SELECT DISTINCT day FROM downloads ORDER BY day")
        return [row[0] for row in rows]


# The columns of a new file row, as L{NewFile} orders them.
_NEW_FILE_COLUMNS = ", ".join(field.name for field in fields(NewFile))

# Rows per multi-row INSERT: within SQLite's limit on parameters (32,766)
# at 15 a row.
_ROWS_PER_INSERT = 500


@functools.lru_cache(maxsize=64)
def _insert_files_sql(rows: int) -> str:
    row = "(" + ", ".join(["%s"] * len(fields(NewFile))) + ")"
    return f"INSERT INTO files ({_NEW_FILE_COLUMNS}) VALUES " + ", ".join([row] * rows)
