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

from collections.abc import Callable
from typing import Any, TypeVar

from attrs import frozen
from packaging.utils import canonicalize_version
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from . import accounts
from .errors import Forbidden, InvalidRequest, NotFound
from .filestore import FileStore
from .names import check_username, normalize
from .storage import IStore, Transaction
from .storage.rows import File, Project, Release, Token, User

log = Logger()

T = TypeVar("T")

OWNER = "Owner"
MAINTAINER = "Maintainer"


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
class ProjectDetail:
    """
    One project as its pages show it, read in one consistent snapshot.
    """

    project: Project
    releases: list[Release]
    files: list[File]


@frozen
class ProjectList:
    """
    Every project, and the journal's last serial, read in one snapshot.
    """

    last_serial: int
    projects: list[Project]


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

    # Plumbing

    def _now(self) -> int:
        return now_micros(self._reactor)

    def blocking(self, function: Callable[..., T], *args: Any) -> Any:
        """
        Run slow, blocking work on the reactor's thread pool.
        """
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), function, *args)

    def observe_changes(self, observer: Callable[[str, int], None]) -> None:
        """
        Call C{observer(normalized_name, serial)} after each committed change
        to a project.
        """
        self._change_observers.append(observer)

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
        self._followed_serial = await self.last_serial()
        self.store.watch(self._external_change)

    def _external_change(self) -> None:
        self.catch_up().addErrback(lambda f: log.failure("following the journal failed", f))

    def may_have_changed(self) -> bool:
        """
        Cheap check for the request path: whether L{catch_up} is needed before
        cached pages can be trusted.
        """
        return self.store.may_have_changed()

    def catch_up(self) -> Deferred[None]:
        """
        Read the journal past the last serial seen and tell the observers of
        each change.  The Deferred fires once a read that started after this
        call has been applied.
        """
        waiter: Deferred[None] = Deferred()
        self._catch_up_waiters.append(waiter)
        if not self._catching_up:
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
                for waiter in waiters:
                    waiter.errback(failure)
            else:
                for waiter in waiters:
                    waiter.callback(None)
        self._catching_up = False

    # Reading projects

    async def project_detail(self, name: str) -> ProjectDetail | None:
        """
        A project with its releases and files, or C{None} if there is none by
        that (normalized) name.
        """

        async def read(tx: Transaction) -> ProjectDetail | None:
            project = await tx.get_project(normalize(name))
            if project is None:
                return None
            return ProjectDetail(
                project, await tx.releases_for_project(project.id), await tx.files_for_project(project.id)
            )

        return await self.store.read(read)

    async def file_is_stored(self, filename: str, blake2b_256: str) -> bool:
        """
        Whether a committed row holds this file.
        """

        async def read(tx: Transaction) -> bool:
            return await tx.file_is_stored(filename, blake2b_256)

        return await self.store.read(read)

    async def project_list(self) -> ProjectList:
        async def read(tx: Transaction) -> ProjectList:
            return ProjectList(await tx.last_serial(), await tx.list_projects())

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
            password_hash = await self.blocking(accounts.hash_password, password)
        now = self._now()

        async def create(tx: Transaction) -> User:
            if await tx.get_user(name) is not None:
                raise InvalidRequest(f"User {name!r} already exists.")
            return await tx.insert_user(name, email, password_hash, now)

        user = await self.store.write(create)
        log.info("created user {user}", user=user.name)
        return user

    async def set_password(self, name: str, password: str) -> None:
        _check_password_rules(password)
        password_hash = await self.blocking(accounts.hash_password, password)

        async def update(tx: Transaction) -> None:
            user = await _user(tx, name)
            await tx.set_password_hash(user.id, password_hash)

        await self.store.write(update)

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
        now = self._now()

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

        token = await self.store.write(create)
        log.info("created API token {id} for {user}", id=token.id, user=token.user_name)
        return token, secret

    async def list_tokens(self, user_name: str) -> list[Token]:
        async def find(tx: Transaction) -> list[Token]:
            return await tx.tokens_for_user((await _user(tx, user_name)).id)

        return await self.store.read(find)

    async def revoke_token(self, token_id: int, actor: Actor = ADMIN) -> Token:
        now = self._now()

        async def revoke(tx: Transaction) -> Token:
            token = await tx.get_token(token_id)
            if token is None or (not actor.is_admin and token.user_id != actor.user_id):
                raise NotFound(f"No API token with id {token_id}.")
            if token.revoked is not None:
                raise InvalidRequest(f"API token {token_id} is already revoked.")
            await tx.revoke_token(token_id, now)
            return token

        token = await self.store.write(revoke)
        log.info("revoked API token {id} of {user}", id=token.id, user=token.user_name)
        return token

    # Yanking and removal

    async def set_yanked(
        self, project_name: str, version: str, yanked: bool, reason: str | None = None, actor: Actor = ADMIN
    ) -> Release:
        """
        Yank (or unyank) a whole release: installers skip its files unless a
        requirement pins it with C{==} (PEP 592).
        """
        now = self._now()
        reason = (reason or "").strip() or None

        async def change(tx: Transaction) -> tuple[Project, Release, int]:
            project = await _project(tx, project_name)
            await _require_owner(tx, project, actor)
            release = await _release(tx, project, version)
            if release.yanked == yanked and (not yanked or release.yanked_reason == reason):
                raise InvalidRequest(f"{project.name} {release.version} is {'already' if yanked else 'not'} yanked.")
            await tx.set_release_yanked(release.id, yanked, reason)
            action = "yank release" if yanked else "unyank release"
            serial = await tx.append_journal(
                project.name, project.normalized_name, release.version, action, now, actor.name
            )
            return project, release, serial

        project, release, serial = await self.store.write(change)
        log.info(
            "{action} {project} {version}",
            action="yanked" if yanked else "unyanked",
            project=project.name,
            version=release.version,
        )
        self._changed(project.normalized_name, serial)
        return release

    async def remove(
        self, project_name: str, version: str | None = None, filename: str | None = None, actor: Actor = ADMIN
    ) -> Removed:
        """
        Remove a project, one release of it, or one file of a release.  The
        filenames removed stay in the registry: they can never be used again.
        """
        now = self._now()

        async def remove(tx: Transaction) -> tuple[Project, list[File], int, int]:
            project = await _project(tx, project_name)
            await _require_owner(tx, project, actor)
            if version is None:
                files = await tx.files_for_project(project.id)
                releases = len(await tx.releases_for_project(project.id))
                await tx.delete_project(project.id)
                serial = await tx.append_journal(
                    project.name, project.normalized_name, None, "remove project", now, actor.name
                )
                return project, files, releases, serial
            release = await _release(tx, project, version)
            files = await tx.files_for_release(release.id)
            if filename is None:
                await tx.delete_release(release.id)
                serial = await tx.append_journal(
                    project.name, project.normalized_name, release.version, "remove release", now, actor.name
                )
                return project, files, 1, serial
            matching = [f for f in files if f.filename == filename]
            if not matching:
                raise NotFound(f"No file {filename!r} in {project.name} {release.version}.")
            await tx.delete_file(matching[0].id)
            serial = await tx.append_journal(
                project.name, project.normalized_name, release.version, f"remove file {filename}", now, actor.name
            )
            return project, matching, 0, serial

        project, files, releases, serial = await self.store.write(remove)
        for file in files:
            await self.blocking(self.files.remove, file.blake2b_256, file.filename)
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
        async def read(tx: Transaction) -> int:
            return await tx.last_serial()

        return await self.store.read(read)


async def _journal_since(tx: Transaction, serial: int) -> list[Any]:
    return await tx.journal_since(serial)


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
