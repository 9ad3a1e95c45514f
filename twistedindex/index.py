# -*- test-case-name: tests.test_index -*-
"""
The package index's domain: every change and question about users, tokens,
projects, releases and files, with the rules that go with them.

L{PackageIndex} knows no HTTP.  The web app, the XML-RPC resource, the mirror
and the admin tool all call it, so a change made by any of them goes through
the same checks and writes the same journal entries, in the same transaction
as the change itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from attrs import evolve, frozen
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from . import accounts, dists
from . import metadata as core_metadata
from .errors import CheeseshopError, FileExists, Forbidden, InvalidRequest, NotFound, Unauthenticated
from .filestore import Digests, FileStore, Placement, Removal, StagedFile
from .names import check_project_name, check_username, normalize
from .storage import IStore, Transaction
from .storage.rows import Counts, File, JournalEntry, Project, RecentRelease, Release, SearchHit, Token, User
from .storage.search import Query
from .upload import FileFields, UploadForm, check_file_fields, check_filename, valid_platform_tag

log = Logger()

T = TypeVar("T")

OWNER = "Owner"
MAINTAINER = "Maintainer"

ROLES = (OWNER, MAINTAINER)

WORKER_THREADS = 4

# How long a browser stays logged in.
SESSION_SECONDS = 14 * 24 * 3600

HELP = "https://pypi.org/help/"
INVALID_AUTH = f"Invalid or non-existent authentication information. See {HELP}#invalid-auth for more information."


@frozen
class Actor:
    """
    Who is making a change.

    :ivar name: the user's name, or C{None} for the administrator's tool.
    :ivar user_id: the user's id, or C{None} for the administrator's tool.
    :ivar token_project_id: when the user came in with a project-scoped
        token, the one project it is good for.
    """

    name: str | None
    user_id: int | None
    token_project_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.user_id is None


# The administrator's tool (cheeseshop-admin) acts with every permission.
ADMIN = Actor(None, None)


@frozen
class WebSession:
    """
    A browser's login: who it is, and the token its forms must carry.
    """

    actor: Actor
    csrf_token: str
    digest: str
    expires: int


@frozen
class ProjectDetail:
    """
    One project as its pages show it, read in one consistent snapshot.
    """

    project: Project
    releases: list[Release]
    files: list[File]
    roles: list[tuple[str, str]]


@frozen
class ReplicaSource:
    """
    What a downstream mirror copies of one project: its detail (C{None} if
    there is no such project), whether this index is itself a mirror, and
    (if so) the signature copied from upstream with the serial it signs.
    """

    detail: ProjectDetail | None
    mirror: bool
    copied_signature: tuple[int, bytes] | None


@frozen
class ProjectList:
    """
    Every project, and the journal's last serial, read in one snapshot.
    """

    last_serial: int
    projects: list[Project]


@frozen
class UploadResult:
    """
    What an upload did.

    :ivar stored: C{False} when the very same file was already there (an
        identical re-upload changes nothing).
    """

    project: str
    version: str
    filename: str
    stored: bool


@frozen
class _CheckedUpload:
    """
    An upload that passed every check made before the database is written.
    """

    fields: FileFields
    filename: str
    metadata: Any
    wheel_metadata: bytes | None
    digests: Digests


@frozen
class Removed:
    """
    What a removal took away, for the caller to report.
    """

    project: str
    releases: int
    files: int


def now_micros(clock: Any) -> int:
    return int(clock.seconds() * 1_000_000)


class PackageIndex:
    """
    The index.

    :param store: the database.
    :param files: the package files.
    :param reactor: provides the clock and the thread pool for slow work
        (password hashing, disk flushes).
    """

    def __init__(self, store: IStore, files: FileStore, reactor: Any) -> None:
        self.store = store
        self.files = files
        self._reactor = reactor
        self._change_observers: list[Callable[[str, int], None]] = []
        # The journal serial up to which changes are known, from any process.
        self._followed_serial = 0
        self._catch_up_waiters: list[Deferred[None]] = []
        self._catching_up = False
        # Until start() knows where the journal stands, nothing is trusted:
        # requests wait for it, and no page is cached.
        self._following = False
        self._started = now_micros(reactor)
        # A catch-up failed (the database was out of reach): a change may not
        # have reached the observers yet, so requests ask again.
        self._behind = False
        self._verified_passwords = accounts.VerifiedPasswords()
        # Slow work (archive checks, description rendering, fsync) runs here.
        # The archive checks hold the GIL, the fsyncs wait on the disk: a few
        # threads more than a small machine's cores keep both busy.
        self._workers = ThreadPool(minthreads=0, maxthreads=WORKER_THREADS, name="cheeseshop-work")
        # argon2 on a thread of its own: a flood of password checks costs 64
        # MiB at most and never queues uploads' work behind it.
        self._password_worker = ThreadPool(minthreads=0, maxthreads=1, name="cheeseshop-passwords")

    # Plumbing

    @property
    def reactor(self) -> Any:
        """
        The clock (and reactor) the index runs on.
        """
        return self._reactor

    def now(self) -> int:
        return now_micros(self._reactor)

    def blocking(self, function: Callable[..., T], *args: Any) -> Any:
        """
        Run slow, blocking work on the index's worker threads.
        """
        return _in_pool(self._reactor, self._workers, function, *args)

    async def check_writable(self) -> None:
        """
        :raises Forbidden: when the index is a mirror, which takes no changes.
        """
        await self.store.read(_unless_mirror, _nothing)

    def _change(self, body: Callable[..., Awaitable[T]], *args: Any) -> Deferred[T]:
        """
        Run a change to the index as a write transaction, refused on a
        mirror: its content is its upstream's alone.
        """
        return self.store.write(_unless_mirror, body, *args)

    def _argon2(self, function: Callable[..., T], *args: Any) -> Any:
        return _in_pool(self._reactor, self._password_worker, function, *args)

    def stop(self) -> None:
        """
        Stop the worker threads (after the work in hand).
        """
        for pool in (self._workers, self._password_worker):
            if pool.started:
                pool.stop()

    def observe_changes(self, observer: Callable[[str, int], None]) -> None:
        """
        Call C{observer(normalized_name, serial)} after each committed change
        to a project.
        """
        self._change_observers.append(observer)

    def announce(self, normalized_name: str, serial: int) -> None:
        """
        Tell the observers of a change committed outside this class's own
        methods (a mirror applying its upstream's).
        """
        self._changed(normalized_name, serial)

    def _changed(self, normalized_name: str, serial: int) -> None:
        for observer in self._change_observers:
            try:
                observer(normalized_name, serial)
            except Exception:
                log.failure("change observer failed for {project}", project=normalized_name)

    # Following changes made by other processes

    async def start(self) -> None:
        """
        Begin following the journal, so that changes committed by other
        processes (the admin tool, other daemons) reach the observers too.
        """
        # Watch first, then read where the journal stands: a change committed
        # in between is both counted and announced, never missed.
        self.store.watch(self._external_change)
        self._followed_serial = await self._journal_serial()
        self._following = True
        # Answers the requests that waited for this, after one more look.
        self._external_change()

    def _external_change(self) -> None:
        self.catch_up().addErrback(lambda failure: None)  # logged by _catch_up

    def pending_changes(self) -> Deferred[None] | None:
        """
        For the request path: C{None} when cached pages can be trusted as
        they are (a cheap check), else a Deferred that fires once the changes
        other processes committed have reached the observers.
        """
        # While a catch-up runs, changes are known to be on their way: wait
        # for them rather than trust the cache.
        if not self._following or self._behind or self.store.may_have_changed() or self._catching_up:
            return self.catch_up()
        return None

    def catch_up(self) -> Deferred[None]:
        """
        Read the journal past the last serial seen and tell the observers of
        each change.  The Deferred fires once a read that started after this
        call has been applied.
        """
        waiter: Deferred[None] = Deferred()
        self._catch_up_waiters.append(waiter)
        if self._following and not self._catching_up:
            self._catching_up = True
            Deferred.fromCoroutine(self._catch_up())
        return waiter

    async def _catch_up(self) -> None:
        while self._catch_up_waiters:
            waiters, self._catch_up_waiters = self._catch_up_waiters, []
            try:
                entries = await self.store.read(_journal_since, self._followed_serial)
                for entry in entries:
                    self._changed(entry.normalized_name, entry.serial)
                    self._followed_serial = max(self._followed_serial, entry.serial)
            except Exception:
                failure = Failure()
                if not self._behind:
                    log.failure("catching up with the journal failed; trying again at the next request", failure)
                # Cached pages may be stale now: every request asks again
                # until a catch-up succeeds.
                self._behind = True
                for waiter in waiters:
                    waiter.errback(failure)
            else:
                if self._behind:
                    log.info("caught up with the journal again, at serial {serial}", serial=self._followed_serial)
                self._behind = False
                for waiter in waiters:
                    waiter.callback(None)
        self._catching_up = False

    # Reading projects

    async def project_detail(self, name: str) -> ProjectDetail | None:
        """
        A project with its releases and files, or C{None} if there is none by
        that (normalized) name.
        """

        return await self.store.read(_read_detail, normalize(name))

    async def project_of_file(self, filename: str, blake2b_256: str) -> str | None:
        """
        The project of a file a committed row holds, or C{None}.
        """

        async def read(tx: Transaction) -> str | None:
            return await tx.project_of_file(filename, blake2b_256)

        return await self.store.read(read)

    async def mirror_of(self) -> str | None:
        """
        The upstream this index mirrors, or C{None} for a master.
        """
        return await self.store.read(_state, "mirror_of")

    async def state(self, key: str) -> str | None:
        return await self.store.read(_state, key)

    async def search(self, query: Query, limit: int, offset: int = 0) -> list[SearchHit]:
        """
        Projects matching C{query}, best first (see L{twistedindex.storage.search}).
        """
        return await self.store.read(_ask, "search", query, limit, offset)

    async def browse(self, classifiers: list[str]) -> list[tuple[str, str]]:
        """
        C{(project, version)} of the releases carrying all C{classifiers}.
        """
        return await self.store.read(_ask, "browse", classifiers)

    async def changelog_since_serial(self, serial: int, limit: int) -> list[tuple[str, str | None, int, str, int]]:
        """
        C{(name, version, seconds, action, serial)} after C{serial}.
        """
        return await self.store.read(_ask, "changelog_rows", serial, limit)

    async def journal_since_time(self, seconds: float, limit: int) -> list[JournalEntry]:
        return await self.store.read(_ask, "journal_after_time", int(seconds * 1_000_000), limit)

    async def releases_added_since(self, seconds: float) -> list[tuple[str, str]]:
        return await self.store.read(_ask, "releases_added_after", int(seconds * 1_000_000))

    async def names_changed_since(self, seconds: float) -> list[str]:
        return await self.store.read(_ask, "names_changed_after", int(seconds * 1_000_000))

    async def counts(self) -> Counts:
        """
        How many projects, releases and files the index holds.
        """
        return await self.store.read(_ask, "counts")

    async def recent_releases(self, limit: int) -> list[RecentRelease]:
        return await self.store.read(_ask, "recent_releases", limit)

    async def user_projects(self, name: str) -> list[tuple[str, str]]:
        """
        C{(role, project)} for each project of the user C{name} (none for an
        unknown user).
        """

        async def read(tx: Transaction) -> list[tuple[str, str]]:
            user = await tx.get_user(name)
            return await tx.projects_of_user(user.id) if user is not None else []

        return await self.store.read(read)

    async def replica_sources(self, names: list[str]) -> dict[str, ReplicaSource]:
        """
        What a downstream mirror copies of each of the projects C{names}
        (normalized), read in one snapshot.
        """

        async def read(tx: Transaction) -> dict[str, ReplicaSource]:
            mirror = await tx.get_state("mirror_of") is not None
            return {
                name: ReplicaSource(await _read_detail(tx, name), mirror, await tx.serversig(name) if mirror else None)
                for name in names
            }

        return await self.store.read(read)

    async def project_list(self) -> ProjectList:
        """
        Every project with its serial, and the index's published serial.  A
        mirror part-way through a round may hold projects newer than its
        mirror serial: their serials are shown capped at it, so that a
        downstream mirror that takes the largest listed serial as its own
        never skips a change that the round has not applied yet.
        """

        async def read(tx: Transaction) -> ProjectList:
            published = await tx.published_serial()
            projects = await tx.list_projects()
            if await tx.get_state("mirror_serial") is not None:
                projects = [p if p.last_serial <= published else evolve(p, last_serial=published) for p in projects]
            return ProjectList(published, projects)

        return await self.store.read(read)

    async def last_modified(self) -> int | None:
        """
        PEP 381's last-modified time (microseconds): a mirror's last complete
        round (C{None} before its first); a master's newest change, or its
        start.
        """

        async def read(tx: Transaction) -> int | None:
            if await tx.get_state("mirror_of") is not None:
                synced = await tx.get_state("mirror_synced")
                return int(synced) if synced is not None else None
            return await tx.last_change_time() or self._started

        return await self.store.read(read)

    # Users and passwords

    async def add_user(self, name: str, email: str | None, password: str | None) -> User:
        """
        Create an account.  Without a password, the account can only use API
        tokens.
        """
        check_username(name)
        if email is not None and "@" not in email:
            raise InvalidRequest(f"{email!r} is not a valid email address.")
        password_hash = None
        if password is not None:
            _check_password_rules(password)
            password_hash = await self._argon2(accounts.hash_password, password)
        now = self.now()

        async def create(tx: Transaction) -> User:
            if await tx.get_user(name) is not None:
                raise InvalidRequest(f"User {name!r} already exists.")
            return await tx.insert_user(name, email, password_hash, now)

        user = await self._change(create)
        log.info("created user {user}", user=user.name)
        return user

    async def set_password(self, name: str, password: str) -> None:
        _check_password_rules(password)
        password_hash = await self._argon2(accounts.hash_password, password)

        async def update(tx: Transaction) -> None:
            user = await _user(tx, name)
            await tx.set_password_hash(user.id, password_hash)
            # A new password (an admin's reset after a compromise, say) ends
            # every web session of the user.
            await tx.delete_sessions_of_user(user.id)

        await self._change(update)

    async def get_user(self, name: str) -> User:
        async def find(tx: Transaction) -> User:
            return await _user(tx, name)

        return await self.store.read(find)

    # API tokens

    async def create_token(
        self, user_name: str, project_name: str | None = None, description: str = ""
    ) -> tuple[Token, str]:
        """
        Make an API token for a user, scoped to all their projects or to one.

        :return: the token's record and the token itself, which is shown once
            and never stored.
        """
        secret = accounts.new_token()
        digest = accounts.token_digest(secret)
        now = self.now()

        async def create(tx: Transaction) -> Token:
            user = await _user(tx, user_name)
            project_id = None
            if project_name is not None:
                project = await _project(tx, project_name)
                if await tx.role_of(project.id, user.id) is None:
                    raise Forbidden(f"The user {user.name!r} has no role on project {project.name!r}.")
                project_id = project.id
            token_id = await tx.insert_token(user.id, project_id, description, digest, now)
            token = await tx.get_token(token_id)
            assert token is not None
            return token

        token = await self._change(create)
        log.info("created API token {id} for {user}", id=token.id, user=token.user_name)
        return token, secret

    async def list_tokens(self, user_name: str) -> list[Token]:
        async def find(tx: Transaction) -> list[Token]:
            return await tx.tokens_for_user((await _user(tx, user_name)).id)

        return await self.store.read(find)

    async def revoke_token(self, token_id: int, actor: Actor = ADMIN) -> Token:
        now = self.now()

        async def revoke(tx: Transaction) -> Token:
            token = await tx.get_token(token_id)
            if token is None or (not actor.is_admin and token.user_id != actor.user_id):
                raise NotFound(f"No API token with id {token_id}.")
            if token.revoked is not None:
                raise InvalidRequest(f"API token {token_id} is already revoked.")
            await tx.revoke_token(token_id, now)
            return token

        token = await self._change(revoke)
        log.info("revoked API token {id} of {user}", id=token.id, user=token.user_name)
        return token

    # Authentication

    async def authenticate_password(self, username: str, password: str, challenge: bool = False) -> Actor:
        """
        The user whose name and password these are.

        :raises Unauthenticated: when they identify nobody.
        """
        user = await self.store.read(_find_user, username)
        now = self._reactor.seconds()
        if user is None or not user.password_hash:
            # As slow as a wrong password: the answer's timing does not say
            # whether the name exists.
            await self._argon2(accounts.verify_password, None, password)
            raise Unauthenticated(INVALID_AUTH, challenge)
        if not self._verified_passwords.known(user.id, user.password_hash, password, now):
            if not await self._argon2(accounts.verify_password, user.password_hash, password):
                log.info("failed password for {user}", user=username)
                raise Unauthenticated(INVALID_AUTH, challenge)
            self._verified_passwords.remember(user.id, user.password_hash, password, now)
        return Actor(user.name, user.id)

    async def authenticate_token(self, token: str, challenge: bool = False) -> Actor:
        """
        The user (and project scope) of an API token.

        :raises Unauthenticated: for an unknown or revoked token.
        """
        if not accounts.looks_like_token(token.strip()):
            raise Unauthenticated(INVALID_AUTH, challenge)
        found = await self.store.read(_find_token, accounts.token_digest(token))
        if found is None or found.revoked is not None:
            raise Unauthenticated(INVALID_AUTH, challenge)
        now = self.now()
        self.store.write(_touch_token, found.id, now).addErrback(
            lambda f: log.failure("recording the use of token {id} failed", f, id=found.id)
        )
        return Actor(found.user_name, found.user_id, found.project_id)

    # Web sessions: not the index's content, so a mirror keeps them too.

    async def start_session(self, actor: Actor) -> tuple[str, WebSession]:
        """
        Log a user in for a browser.

        :return: the session id, for the browser's cookie alone (only its
            digest is stored), and the session.
        """
        assert actor.user_id is not None
        session_id = secrets.token_urlsafe(32)
        digest = accounts.token_digest(session_id)
        csrf_token = secrets.token_urlsafe(32)
        now = self.now()
        expires = now + SESSION_SECONDS * 1_000_000

        async def start(tx: Transaction) -> None:
            # Expired sessions are swept as new ones start: no timer needed.
            await tx.delete_expired_sessions(now)
            await tx.insert_session(digest, actor.user_id, csrf_token, now, expires)

        await self.store.write(start)
        log.info("{user} logged in", user=actor.name)
        return session_id, WebSession(actor, csrf_token, digest, expires)

    async def find_session(self, session_id: str) -> WebSession | None:
        """
        The live session with this id, or C{None}.
        """
        found = await self.store.read(_ask, "session_by_digest", accounts.token_digest(session_id), self.now())
        if found is None:
            return None
        return WebSession(Actor(found.user_name, found.user_id), found.csrf_token, found.digest, found.expires)

    async def end_session(self, session: WebSession) -> None:
        await self.store.write(_ask, "delete_session", session.digest)
        log.info("{user} logged out", user=session.actor.name)

    async def change_password(self, session: WebSession, old: str, new: str) -> None:
        """
        Change a logged-in user's password, given the old one, and end the
        user's other sessions.
        """
        name = session.actor.name
        assert name is not None
        await self.authenticate_password(name, old)
        _check_password_rules(new)
        password_hash = await self._argon2(accounts.hash_password, new)

        async def update(tx: Transaction) -> None:
            user = await _user(tx, name)
            await tx.set_password_hash(user.id, password_hash)
            await tx.delete_sessions_of_user(user.id, keep=session.digest)

        await self._change(update)
        log.info("{user} changed their password", user=name)

    # Roles

    async def role_of(self, project_name: str, actor: Actor) -> str | None:
        """
        The actor's role on a project (C{None} for none, or no such project).
        """

        async def read(tx: Transaction) -> str | None:
            project = await tx.get_project(normalize(project_name))
            if project is None or actor.user_id is None:
                return None
            return await tx.role_of(project.id, actor.user_id)

        return await self.store.read(read)

    async def add_role(self, project_name: str, user_name: str, role: str, actor: Actor = ADMIN) -> None:
        """
        Give a user a role on a project (or change the role they have), as
        an Owner does on PyPI's collaborators page.
        """
        if role not in ROLES:
            raise InvalidRequest(f"Unknown role {role!r}: choose {' or '.join(ROLES)}.")
        await self._change_role(project_name, user_name, role, actor)

    async def remove_role(self, project_name: str, user_name: str, actor: Actor = ADMIN) -> None:
        """
        Take a user's role on a project away; the last Owner stays.
        """
        await self._change_role(project_name, user_name, None, actor)

    async def _change_role(self, project_name: str, user_name: str, role: str | None, actor: Actor) -> None:
        now = self.now()

        async def change(tx: Transaction) -> tuple[Project, int]:
            project = await _project(tx, project_name)
            await _require_owner(tx, project, actor)
            user = await _user(tx, user_name)
            current = await tx.role_of(project.id, user.id)
            if current == role:
                if role is None:
                    raise NotFound(f"{user.name} has no role on {project.name}.")
                raise InvalidRequest(
                    f"{user.name} is already a{'n' if role == OWNER else ''} {role} of {project.name}."
                )
            if current == OWNER:
                await _keep_an_owner(tx, project)
            # PyPI's journal words (Warehouse's manage views).
            if role is None:
                await tx.delete_role(project.id, user.id)
                action = f"remove {current} {user.name}"
            else:
                await tx.set_role(project.id, user.id, role)
                action = f"add {role} {user.name}" if current is None else f"change {current} {user.name} to {role}"
            serial = await tx.append_journal(project.name, project.normalized_name, None, action, now, actor.name)
            return project, serial

        project, serial = await self._change(change)
        log.info("{project}: {user} has the role {role}", project=project.name, user=user_name, role=role or "none")
        self._changed(project.normalized_name, serial)

    # Publishing

    def upload(self, actor: Actor, form: UploadForm) -> Deferred[UploadResult]:
        """
        Store an uploaded distribution: check it as PyPI does, place it, and
        record it with its journal entries, creating the project (with the
        uploader as Owner) and the release as needed.

        The staged file in C{form} is taken into the store or discarded.
        Cancelling the Deferred (a client gone away) does not stop the work:
        a file half-way into the store is settled either way.
        """
        return shielded(Deferred.fromCoroutine(self._upload(actor, form)))

    async def _upload(self, actor: Actor, form: UploadForm) -> UploadResult:
        # Take the staged file before the first wait: the web layer discards
        # the form of a request whose client went away, and must not delete a
        # file this upload is still reading.
        content = form.content
        staged = content.staged if content is not None else None
        if content is not None:
            content.staged = None
        try:
            checked = await self._check_upload(actor, form, staged)
            if checked is None:
                assert content is not None
                return UploadResult(
                    normalize(form.get("name") or ""), form.get("version") or "", content.filename, False
                )
            assert staged is not None
            return await self._store_upload(actor, checked, staged)
        finally:
            if staged is not None:
                staged.discard()  # nothing, once prepared for the store
            form.discard()

    async def _check_upload(self, actor: Actor, form: UploadForm, staged: StagedFile | None) -> _CheckedUpload | None:
        form.sanitize()
        fields = check_file_fields(form)
        content = form.content
        if content is None or staged is None:
            raise InvalidRequest("Upload payload does not have a file.")
        await self.store.read(_check_upload_permission, actor, normalize(fields.name))
        filename = content.filename
        check_filename(filename, fields.filetype)
        if content.content_type is not None and (
            not content.content_type.strip() or content.content_type.startswith("image/")
        ):
            raise InvalidRequest("Invalid distribution file.")
        digests = await self.blocking(staged.finish)
        if not await self._digests_match(fields, staged):
            raise InvalidRequest("The digest supplied does not match a digest calculated from the uploaded file.")
        # Asked again under the write lock; here it spares the archive checks.
        if await self.store.read(_already_stored, filename, digests):
            log.info("identical re-upload of {filename}: nothing to do", filename=filename)
            return None
        contents, metadata = await self.blocking(_inspect_distribution, staged.path, filename)
        _check_form_matches(form, fields, metadata)
        _check_distribution_filename(filename, fields.filetype, metadata, contents)
        return _CheckedUpload(fields, filename, metadata, contents.metadata if contents.is_wheel else None, digests)

    async def _digests_match(self, fields: FileFields, staged: StagedFile) -> bool:
        digests = staged.digests
        assert digests is not None
        expected = [(fields.md5_digest, digests.md5), (fields.sha256_digest, digests.sha256)]
        if fields.blake2_digest is not None:
            if len(fields.blake2_digest) == 128:
                # stdlib distutils: a BLAKE2b-512 under the BLAKE2b-256 name.
                expected.append((fields.blake2_digest, await self.blocking(staged.blake2b_512)))
            else:
                expected.append((fields.blake2_digest, digests.blake2b_256))
        return all(hmac.compare_digest(given, actual) for given, actual in expected if given is not None)

    async def _store_upload(self, actor: Actor, checked: _CheckedUpload, staged: StagedFile) -> UploadResult:
        placement = await self.blocking(self.files.prepare, staged, checked.filename, checked.wheel_metadata)
        now = self.now()
        try:
            recorded = await self._change(_record_upload, actor, checked, placement, now)
        except CheeseshopError:
            # Refused inside the transaction, which rolled back.
            await self._abandon(placement, checked)
            raise
        except BaseException:
            # The commit's outcome may be unknown (a PostgreSQL connection
            # lost at COMMIT): the database decides.
            if await self._abandon(placement, checked):
                log.info("{filename} was recorded although the write reported a failure", filename=checked.filename)
                self._external_change()
                return UploadResult(
                    normalize(checked.metadata.name), str(checked.metadata.version), checked.filename, True
                )
            raise
        placement.done()
        if recorded is None:
            log.info("identical re-upload of {filename}: nothing to do", filename=checked.filename)
            return UploadResult(
                normalize(checked.metadata.name), str(checked.metadata.version), checked.filename, False
            )
        project, version, serial = recorded
        log.info(
            "stored {filename} for {project} {version} (uploaded by {user})",
            filename=checked.filename,
            project=project.name,
            version=version,
            user=actor.name,
        )
        self._changed(project.normalized_name, serial)
        return UploadResult(project.name, version, checked.filename, True)

    async def _abandon(self, placement: Placement, checked: _CheckedUpload) -> bool:
        """
        Settle a placement whose transaction failed, under the write lock so
        that no other upload links the same path meanwhile.

        :return: whether a committed row holds the file after all.  If even
            this cannot be asked, the record stays for the next start's
            recovery.
        """
        try:
            return await self.store.write(settle_placement, placement, checked.filename, checked.digests.blake2b_256)
        except Exception:
            log.failure("could not settle the placement of {filename}; recovery will", filename=checked.filename)
            return False

    async def _settle_removal(self, removal: Removal) -> None:
        """
        Settle a removal whose transaction failed: delete only the files
        whose rows are gone (none, unless the commit happened after all).
        """
        try:
            await self.store.write(settle_removal, removal)
        except Exception:
            log.failure("could not settle a removal; recovery will")

    async def register(self, actor: Actor, form: UploadForm) -> Release:
        """
        C{setup.py register}: create the project (the caller becomes its
        Owner) and the release, or update the release's metadata.
        """
        form.sanitize()
        metadata = core_metadata.from_form(form)
        await self.blocking(core_metadata.check_description, metadata)
        now = self.now()
        project, release, serial = await self._change(_record_registration, actor, metadata, now)
        if serial is not None:
            self._changed(project.normalized_name, serial)
        log.info("registered {project} {version}", project=project.name, version=release.version)
        return release

    async def verify(self, form: UploadForm) -> None:
        """
        C{setup.py register --dry-run}: only check the metadata.
        """
        form.sanitize()
        metadata = core_metadata.from_form(form)
        await self.blocking(core_metadata.check_description, metadata)

    # Yanking and removal

    async def set_yanked(
        self, project_name: str, version: str, yanked: bool, reason: str | None = None, actor: Actor = ADMIN
    ) -> Release:
        """
        Yank (or unyank) a whole release: installers skip its files unless a
        requirement pins it with C{==} (PEP 592).
        """
        now = self.now()
        reason = (reason or "").strip() or None

        async def change(tx: Transaction) -> tuple[Project, Release, int]:
            project = await _project(tx, project_name)
            await _require_owner(tx, project, actor)
            release = await _release(tx, project, version)
            if release.yanked == yanked and (not yanked or release.yanked_reason == reason):
                raise InvalidRequest(f"{project.name} {release.version} is {'already' if yanked else 'not'} yanked.")
            await tx.set_release_yanked(release.id, yanked, reason)
            await tx.refresh_search_document(project.id)
            action = "yank release" if yanked else "unyank release"
            serial = await tx.append_journal(
                project.name, project.normalized_name, release.version, action, now, actor.name
            )
            return project, release, serial

        project, release, serial = await self._change(change)
        log.info(
            "{action} {project} {version}",
            action="yanked" if yanked else "unyanked",
            project=project.name,
            version=release.version,
        )
        self._changed(project.normalized_name, serial)
        return release

    def remove(
        self, project_name: str, version: str | None = None, filename: str | None = None, actor: Actor = ADMIN
    ) -> Deferred[Removed]:
        """
        Remove a project, one release of it, or one file of a release.  The
        filenames removed stay in the registry: they can never be used again.
        Cancelling the Deferred does not stop the work.
        """
        return shielded(Deferred.fromCoroutine(self._remove(project_name, version, filename, actor)))

    async def _remove(self, project_name: str, version: str | None, filename: str | None, actor: Actor) -> Removed:
        now = self.now()

        planned: list[Removal] = []

        async def plan(tx: Transaction, files: list[File]) -> None:
            # Recorded before the rows go: a crash between the commit and the
            # unlinking leaves a record for recovery, not unowned files.
            planned.append(await tx.blocking(self.files.plan_removal, [(f.blake2b_256, f.filename) for f in files]))

        async def remove(tx: Transaction) -> tuple[Project, list[File], int, int]:
            project = await _project(tx, project_name)
            await _require_owner(tx, project, actor)
            if version is None:
                files = await tx.files_for_project(project.id)
                releases = len(await tx.releases_for_project(project.id))
                await plan(tx, files)
                await tx.delete_project(project.id)
                serial = await tx.append_journal(
                    project.name, project.normalized_name, None, "remove project", now, actor.name
                )
                return project, files, releases, serial
            release = await _release(tx, project, version)
            files = await tx.files_for_release(release.id)
            if filename is None:
                await plan(tx, files)
                await tx.delete_release(release.id)
                await tx.refresh_search_document(project.id)
                serial = await tx.append_journal(
                    project.name, project.normalized_name, release.version, "remove release", now, actor.name
                )
                return project, files, 1, serial
            matching = [f for f in files if f.filename == filename]
            if not matching:
                raise NotFound(f"No file {filename!r} in {project.name} {release.version}.")
            await plan(tx, matching)
            await tx.delete_file(matching[0].id)
            serial = await tx.append_journal(
                project.name, project.normalized_name, release.version, f"remove file {filename}", now, actor.name
            )
            return project, matching, 0, serial

        try:
            project, files, releases, serial = await self._change(remove)
        except BaseException:
            if planned:
                await self._settle_removal(planned[0])
            raise
        await self.blocking(planned[0].done)
        log.info(
            "removed {what} of {project}: {releases} releases, {files} files",
            what="all" if version is None else (version if filename is None else filename),
            project=project.name,
            releases=releases,
            files=len(files),
        )
        self._changed(project.normalized_name, serial)
        return Removed(project.name, releases, len(files))

    # Journal

    async def last_serial(self) -> int:
        """
        The index's published serial (see L{Transaction.published_serial}).
        """

        async def read(tx: Transaction) -> int:
            return await tx.published_serial()

        return await self.store.read(read)

    async def _journal_serial(self) -> int:
        async def read(tx: Transaction) -> int:
            return await tx.last_serial()

        return await self.store.read(read)


def shielded(work: Deferred[T]) -> Deferred[T]:
    """
    A Deferred for C{work}'s result that can be cancelled without cancelling
    C{work}: twisted.web's clients cancel when their connection drops, and
    a cancel reaching a transaction or a file placement half-way would leave
    it for recovery (or interrupt a PostgreSQL query mid-flight).
    """
    result: Deferred[T] = Deferred()

    def passed(outcome: Any) -> None:
        if not result.called:
            result.callback(outcome)
        elif isinstance(outcome, Failure):
            log.failure("work finished after its caller went away", outcome)

    work.addBoth(passed)
    return result


def _in_pool(reactor: Any, pool: ThreadPool, function: Callable[..., T], *args: Any) -> Deferred[T]:
    if not pool.started:
        pool.start()
    return deferToThreadPool(reactor, pool, function, *args)


async def _find_user(tx: Transaction, name: str) -> User | None:
    return await tx.get_user(name)


async def _find_token(tx: Transaction, digest: str) -> Token | None:
    return await tx.token_by_digest(digest)


async def _touch_token(tx: Transaction, token_id: int, now: int) -> None:
    await tx.touch_token(token_id, now)


def _file_exists(filename: str, blake2b_256: str) -> FileExists:
    # twine --skip-existing looks for the words "File already exists".
    return FileExists(
        f"File already exists ({filename!r}, with blake2_256 hash {blake2b_256!r}). "
        f"See {HELP}#file-name-reuse for more information."
    )


def _filename_reused() -> InvalidRequest:
    return InvalidRequest(
        "This filename was previously used by a file that has since been deleted. "
        f"Use a different version. See {HELP}#file-name-reuse for more information."
    )


async def _already_stored(tx: Transaction, filename: str, digests: Digests) -> bool:
    """
    Whether this very file (name and bytes) is stored already: uploading it
    again succeeds and changes nothing, as on PyPI.

    :raises FileExists: when the name or the bytes belong to another file.
    :raises InvalidRequest: when the name belonged to a removed file.
    """
    existing = await tx.get_file(filename)
    if existing is not None and (existing.sha256, existing.blake2b_256) == (digests.sha256, digests.blake2b_256):
        return True
    if existing is not None or await tx.file_with_blake2b_256(digests.blake2b_256) is not None:
        raise _file_exists(filename, digests.blake2b_256)
    if await tx.filename_registered(filename):
        raise _filename_reused()
    return False


async def settle_removal(tx: Transaction, removal: Removal) -> None:
    stored = {
        (blake2b_256, filename)
        for blake2b_256, filename in removal.files
        if await tx.file_is_stored(filename, blake2b_256)
    }
    await tx.blocking(removal.done, lambda filename, blake2b_256: (blake2b_256, filename) in stored)


async def settle_placement(tx: Transaction, placement: Placement, filename: str, blake2b_256: str) -> bool:
    if await tx.file_is_stored(filename, blake2b_256):
        await tx.blocking(placement.done)
        return True
    await tx.blocking(placement.undo)
    return False


async def _may_upload(tx: Transaction, actor: Actor, project: Project) -> None:
    """
    Owners and Maintainers may upload; a project-scoped token only to its
    project.
    """
    if actor.is_admin:
        return
    assert actor.user_id is not None
    if actor.token_project_id is not None and actor.token_project_id != project.id:
        raise Forbidden(
            f"The given token isn't allowed to upload to project '{project.name}'. "
            f"See {HELP}#project-name for more information."
        )
    if await tx.role_of(project.id, actor.user_id) not in (OWNER, MAINTAINER):
        raise Forbidden(
            f"The user '{actor.name}' isn't allowed to upload to project '{project.name}'. "
            f"See {HELP}#project-name for more information."
        )


def _may_create(actor: Actor, name: str) -> None:
    if actor.token_project_id is not None:
        raise Forbidden(
            f"The given token isn't allowed to upload to project '{name}'. "
            f"See {HELP}#project-name for more information."
        )


def read_only(upstream: str) -> Forbidden:
    return Forbidden(f"This index is a read-only mirror of {upstream}")


async def _read_detail(tx: Transaction, normalized: str) -> ProjectDetail | None:
    project = await tx.get_project(normalized)
    if project is None:
        return None
    return ProjectDetail(
        project,
        await tx.releases_for_project(project.id),
        await tx.files_for_project(project.id),
        await tx.roles_for_project(project.id),
    )


async def _unless_mirror(tx: Transaction, body: Callable[..., Awaitable[T]], *args: Any) -> T:
    upstream = await tx.get_state("mirror_of")
    if upstream is not None:
        raise read_only(upstream)
    return await body(tx, *args)


async def _state(tx: Transaction, key: str) -> str | None:
    return await tx.get_state(key)


async def _nothing(tx: Transaction) -> None:
    return None


async def _check_upload_permission(tx: Transaction, actor: Actor, normalized_name: str) -> None:
    upstream = await tx.get_state("mirror_of")
    if upstream is not None:
        raise read_only(upstream)  # before the archive checks: nothing here is kept
    project = await tx.get_project(normalized_name)
    if project is None:
        _may_create(actor, normalized_name)
    else:
        await _may_upload(tx, actor, project)


def _inspect_distribution(path: str, filename: str) -> tuple[dists.DistContents, Any]:
    """
    On a thread: the archive's contents, and its metadata, checked (the
    description included).
    """
    contents = dists.inspect(path, filename)
    metadata = core_metadata.from_file(contents.metadata)
    core_metadata.check_description(metadata)
    return contents, metadata


def _check_form_matches(form: UploadForm, fields: FileFields, metadata: Any) -> None:
    """
    The form's name and version must be those of the file's own metadata.
    """
    if normalize(fields.name) != normalize(metadata.name):
        raise InvalidRequest(
            f"The name in the upload form ({fields.name!r}) is not the name in the "
            f"distribution's metadata ({metadata.name!r})."
        )
    version = form.get("version")
    if version is not None:
        try:
            matches = Version(version) == metadata.version
        except InvalidVersion:
            matches = False
        if not matches:
            raise InvalidRequest(
                f"The version in the upload form ({version!r}) is not the version in the "
                f"distribution's metadata ('{metadata.version}')."
            )


def _check_distribution_filename(filename: str, filetype: str, metadata: Any, contents: dists.DistContents) -> None:
    """
    PyPI's rules tying a distribution's filename to its metadata, with one
    exception for stdlib distutils: its sdists are named after the project
    as written (C{my-pkg-1.0.tar.gz}, C{My.Pkg-1.0.zip}), not by PEP 625,
    and are accepted when the name and version agree once normalized.
    """
    normalized = normalize(metadata.name)
    underscored = normalized.replace("-", "_")
    if filetype == "sdist":
        try:
            name, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            raise InvalidRequest(f"Invalid source distribution filename: {filename}") from None
        if name != normalized:
            raise InvalidRequest(f"Start filename for {metadata.name!r} with {underscored!r}.")
        if version != metadata.version:
            raise InvalidRequest(f"Version in filename should be {str(metadata.version)!r} not {str(version)!r}.")
        top = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename[: -len(".zip")]
        license_prefix = f"{top}/"
    else:
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion) as e:
            raise InvalidRequest(str(e)) from None
        for tag in tags:
            if not valid_platform_tag(tag.platform):
                raise InvalidRequest(f"Binary wheel '{filename}' has an unsupported platform tag '{tag.platform}'.")
        if name != normalized:
            raise InvalidRequest(f"Start filename for {metadata.name!r} with {underscored!r}.")
        name_in_filename = filename.split("-", 1)[0]
        if name_in_filename != underscored:
            raise InvalidRequest(
                f"Filename {filename!r} should contain the normalized project name {underscored!r}, "
                f"not {name_in_filename!r}."
            )
        if version != metadata.version:
            raise InvalidRequest(f"Version in filename should be {str(metadata.version)!r} not {str(version)!r}.")
        dist_name, dist_version, _ = filename.split("-", 2)
        license_prefix = f"{dist_name}-{dist_version}.dist-info/licenses/"
    for license_file in metadata.license_files or []:
        target = f"{license_prefix}{license_file}"
        if target not in contents.names:
            raise InvalidRequest(
                f"License-File {license_file} does not exist in distribution file {filename} at {target}"
            )


def _release_values(metadata: Any) -> dict[str, Any]:
    return {
        "summary": metadata.summary,
        "description": metadata.description,
        "description_content_type": metadata.description_content_type,
        "requires_python": str(metadata.requires_python) if metadata.requires_python else None,
        "metadata": core_metadata.as_record(metadata),
    }


async def _project_for_change(tx: Transaction, actor: Actor, name: str, now: int) -> tuple[Project, int | None]:
    """
    The project called C{name}, created (first come, first served, the
    actor becoming its Owner) if it does not exist; checks the actor may
    upload to it.

    :return: the project and the serial of the last journal entry written.
    """
    normalized = normalize(name)
    project = await tx.get_project(normalized)
    if project is not None:
        await _may_upload(tx, actor, project)
        if project.name == name:
            return project, None
        # The display name follows the newest metadata, as on PyPI; the
        # journal says so (pypi-legacy's words), so that other daemons and
        # mirrors learn of it even when nothing else changed.
        await tx.rename_project(project.id, name)
        serial = await tx.append_journal(name, normalized, None, f"rename from {project.name}", now, actor.name)
        return evolve(project, name=name), serial
    check_project_name(name)
    _may_create(actor, name)
    project = await tx.insert_project(name, normalized, now)
    serial = await tx.append_journal(name, normalized, None, "create", now, actor.name)
    if actor.user_id is not None:
        await tx.set_role(project.id, actor.user_id, OWNER)
        serial = await tx.append_journal(name, normalized, None, f"add {OWNER} {actor.name}", now, actor.name)
    return project, serial


async def _find_release(tx: Transaction, project: Project, version: str) -> Release | None:
    """
    The release of this version: by PEP 440 equality, or the exact string
    where several releases are equal under PEP 440.
    """
    candidates = await tx.releases_with_canonical_version(project.id, canonicalize_version(version))
    if len(candidates) > 1:
        return next((r for r in candidates if r.version == version), candidates[0])
    return candidates[0] if candidates else None


async def _record_upload(
    tx: Transaction, actor: Actor, checked: _CheckedUpload, placement: Placement, now: int
) -> tuple[Project, str, int] | None:
    """
    Record an upload and link its file into place, under the write lock.

    :return: C{None} when the identical file was stored meanwhile.
    """
    metadata = checked.metadata
    digests = checked.digests
    if await _already_stored(tx, checked.filename, digests):
        return None
    project, project_serial = await _project_for_change(tx, actor, metadata.name, now)
    version = str(metadata.version)
    release = await _find_release(tx, project, version)
    if release is None:
        release = await tx.insert_release(
            project.id, version, canonicalize_version(version), now, **_release_values(metadata)
        )
        await tx.append_journal(metadata.name, project.normalized_name, version, "new release", now, actor.name)
        await tx.refresh_search_document(project.id)
    elif project_serial is not None:  # renamed
        await tx.refresh_search_document(project.id)
    if checked.fields.filetype == "sdist" and any(
        f.packagetype == "sdist" for f in await tx.files_for_release(release.id)
    ):
        raise InvalidRequest("Only one sdist may be uploaded per release.")
    # No committed row has this file, and no other writer runs: whatever is
    # at its path is left over, and linking replaces it.
    await tx.blocking(placement.link)
    metadata_sha256 = hashlib.sha256(checked.wheel_metadata).hexdigest() if checked.wheel_metadata else None
    await tx.insert_file(
        release.id,
        checked.filename,
        checked.fields.filetype,
        checked.fields.pyversion,
        digests.size,
        digests.sha256,
        digests.blake2b_256,
        digests.md5,
        now,
        requires_python=release.requires_python,
        metadata_sha256=metadata_sha256,
        comment_text=checked.fields.comment,
        uploaded_by=actor.name,
    )
    serial = await tx.append_journal(
        metadata.name,
        project.normalized_name,
        release.version,
        f"add {checked.fields.pyversion} file {checked.filename}",
        now,
        actor.name,
    )
    return project, release.version, serial


async def _record_registration(
    tx: Transaction, actor: Actor, metadata: Any, now: int
) -> tuple[Project, Release, int | None]:
    project, serial = await _project_for_change(tx, actor, metadata.name, now)
    version = str(metadata.version)
    values = _release_values(metadata)
    release = await _find_release(tx, project, version)
    if release is None:
        release = await tx.insert_release(project.id, version, canonicalize_version(version), now, **values)
        serial = await tx.append_journal(
            metadata.name, project.normalized_name, version, "new release", now, actor.name
        )
        await tx.refresh_search_document(project.id)
        return project, release, serial
    old = {
        "summary": release.summary,
        "description": release.description,
        "description_content_type": release.description_content_type,
        "requires_python": release.requires_python,
    }
    changed = sorted(
        [k for k in old if old[k] != values[k]]
        + [
            k
            for k in set(release.metadata) | set(values["metadata"])
            if release.metadata.get(k) != values["metadata"].get(k)
        ]
    )
    renamed = serial is not None
    if changed:
        await tx.update_release_metadata(release.id, **values)
        # pypi-legacy's word for a re-registration that changed metadata.
        serial = await tx.append_journal(
            metadata.name, project.normalized_name, release.version, f"update {', '.join(changed)}", now, actor.name
        )
    if changed or renamed:
        await tx.refresh_search_document(project.id)
    return project, release, serial


async def _journal_since(tx: Transaction, serial: int) -> list[Any]:
    return await tx.journal_since(serial)


async def _ask(tx: Transaction, query: str, *args: Any) -> Any:
    """
    A transaction of one query, by its name.
    """
    return await getattr(tx, query)(*args)


def _check_password_rules(password: str) -> None:
    if len(password) < accounts.MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"Password too short: use at least {accounts.MIN_PASSWORD_LENGTH} characters.")


async def _user(tx: Transaction, name: str) -> User:
    user = await tx.get_user(name)
    if user is None:
        raise NotFound(f"No user named {name!r}.")
    return user


async def _project(tx: Transaction, name: str) -> Project:
    project = await tx.get_project(normalize(name))
    if project is None:
        raise NotFound(f"No project named {name!r}.")
    return project


async def _release(tx: Transaction, project: Project, version: str) -> Release:
    """
    The release whose version is exactly C{version}, else the one release
    whose version is equal to it under PEP 440 (C{1.0} finds C{1.0.0}).
    """
    release = await tx.get_release(project.id, version)
    if release is not None:
        return release
    candidates = await tx.releases_with_canonical_version(project.id, canonicalize_version(version))
    if len(candidates) == 1:
        return candidates[0]
    raise NotFound(f"No release {version} of {project.name}.")


async def _require_owner(tx: Transaction, project: Project, actor: Actor) -> None:
    if actor.is_admin:
        return
    assert actor.user_id is not None
    if actor.token_project_id is not None and actor.token_project_id != project.id:
        raise Forbidden(f"The given token isn't allowed to manage project {project.name!r}.")
    if await tx.role_of(project.id, actor.user_id) != OWNER:
        raise Forbidden(f"The user {actor.name!r} isn't an Owner of project {project.name!r}.")


async def _keep_an_owner(tx: Transaction, project: Project) -> None:
    """
    :raises InvalidRequest: when the project has only one Owner, who is
        about to lose that role: a project always keeps one.
    """
    owners = [name for role, name in await tx.roles_for_project(project.id) if role == OWNER]
    if len(owners) <= 1:
        raise InvalidRequest(f"{project.name} must keep at least one Owner.")
