# -*- test-case-name: tests.test_admin -*-
"""
C{cheeseshop-admin}: the administrator's tool.

It opens the same database and data directory as the daemon (same
C{--config}, C{--data-dir} and C{--database} options) and makes every change
through L{twistedindex.index.PackageIndex}, so its changes are checked and
journaled exactly like the web's.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from twisted.internet.task import react
from twisted.python import usage

from .config import STORAGE_OPTIONS
from .errors import CheeseshopError
from .index import PackageIndex
from .storage import open_store
from .tap import SettingsOptions, setting_parameters
from .wiring import StartupError, prepare_storage


class _Command(usage.Options):
    """
    A leaf command whose options may come before or after its arguments, as
    in C{adduser NAME --email E} (Twisted's parser stops at the first
    argument otherwise).
    """

    def parseOptions(self, options: list[str] | None = None) -> None:
        flags: list[str] = []
        arguments: list[str] = []
        words = iter(sys.argv[1:] if options is None else options)
        for word in words:
            if word == "--":
                arguments.extend(words)
            elif word.startswith("--") and len(word) > 2:
                flags.append(word)
                if "=" not in word and f"{word[2:]}=" in self.longOpt:
                    flags.append(next(words, ""))
            else:
                arguments.append(word)
        super().parseOptions([*flags, "--", *arguments])


class _PasswordOptions(_Command):
    optFlags = [["password-stdin", None, "Read the password from the first line of standard input."]]

    def read_password(self) -> str:
        if self["password-stdin"]:
            line = sys.stdin.readline()
            return line[:-1] if line.endswith("\n") else line
        if not sys.stdin.isatty():
            raise usage.UsageError("no terminal to ask for the password on; use --password-stdin")
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != first:
            raise usage.UsageError("the passwords do not match")
        return first


class AdduserOptions(_PasswordOptions):
    synopsis = "NAME [--email E] [--password-stdin]"
    description = "Create a user account."
    optParameters = [["email", None, None, "The user's e-mail address."]]

    def parseArgs(self, name: str) -> None:
        self["name"] = name

    async def run(self, index: PackageIndex) -> None:
        user = await index.add_user(self["name"], self["email"], self["password"])
        print(f"created user {user.name}")


class PasswdOptions(_PasswordOptions):
    synopsis = "NAME [--password-stdin]"
    description = "Set a user's password."

    def parseArgs(self, name: str) -> None:
        self["name"] = name

    async def run(self, index: PackageIndex) -> None:
        await index.set_password(self["name"], self["password"])
        print(f"password changed for {self['name']}")


class TokenCreateOptions(_Command):
    synopsis = "USER [--project P] [--description D]"
    description = "Create an API token; it is printed alone on the last line, once."
    optParameters = [
        ["project", None, None, "Limit the token to this project."],
        ["description", None, "", "What the token is for."],
    ]

    def parseArgs(self, user: str) -> None:
        self["user"] = user

    async def run(self, index: PackageIndex) -> None:
        token, secret = await index.create_token(self["user"], self["project"], self["description"])
        scope = f"project {token.project_name}" if token.project_name else "all projects"
        print(f"created API token {token.id} for {token.user_name} ({scope}); it is shown only now:")
        print(secret)


def _time(micros: int | None) -> str:
    if micros is None:
        return "-"
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


class TokenListOptions(_Command):
    synopsis = "USER"
    description = "List a user's API tokens."

    def parseArgs(self, user: str) -> None:
        self["user"] = user

    async def run(self, index: PackageIndex) -> None:
        tokens = await index.list_tokens(self["user"])
        print(f"{'id':>5}  {'scope':<24} {'created':<19}  {'last used':<19}  {'state':<7}  description")
        for token in tokens:
            scope = token.project_name or "all projects"
            state = "revoked" if token.revoked else "active"
            print(
                f"{token.id:>5}  {scope:<24} {_time(token.created):<19}  "
                f"{_time(token.last_used):<19}  {state:<7}  {token.description}"
            )


class TokenRevokeOptions(_Command):
    synopsis = "ID"
    description = "Revoke an API token."

    def parseArgs(self, token_id: str) -> None:
        try:
            self["id"] = int(token_id)
        except ValueError:
            raise usage.UsageError(f"{token_id!r} is not a token id (a number)") from None

    async def run(self, index: PackageIndex) -> None:
        token = await index.revoke_token(self["id"])
        print(f"revoked API token {token.id} of {token.user_name}")


class TokenOptions(usage.Options):
    synopsis = "create|list|revoke ..."
    description = "Manage API tokens."
    subCommands = [
        ["create", None, TokenCreateOptions, TokenCreateOptions.description],
        ["list", None, TokenListOptions, TokenListOptions.description],
        ["revoke", None, TokenRevokeOptions, TokenRevokeOptions.description],
    ]

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("token needs one of: create, list, revoke")

    async def run(self, index: PackageIndex) -> None:
        await self.subOptions.run(index)


class YankOptions(_Command):
    synopsis = "PROJECT VERSION [--reason R]"
    description = "Yank a release (PEP 592)."
    optParameters = [["reason", None, None, "Why, shown to installers."]]

    def parseArgs(self, project: str, version: str) -> None:
        self["project"], self["version"] = project, version

    async def run(self, index: PackageIndex) -> None:
        release = await index.set_yanked(self["project"], self["version"], True, self["reason"])
        print(f"yanked {self['project']} {release.version}")


class UnyankOptions(_Command):
    synopsis = "PROJECT VERSION"
    description = "Undo a yank."

    def parseArgs(self, project: str, version: str) -> None:
        self["project"], self["version"] = project, version

    async def run(self, index: PackageIndex) -> None:
        release = await index.set_yanked(self["project"], self["version"], False)
        print(f"unyanked {self['project']} {release.version}")


class RemoveOptions(_Command):
    synopsis = "PROJECT [VERSION [FILENAME]]"
    description = "Remove a project, a release or a file; removed filenames can never be reused."

    def parseArgs(self, project: str, version: str | None = None, filename: str | None = None) -> None:
        self["project"], self["version"], self["filename"] = project, version, filename

    async def run(self, index: PackageIndex) -> None:
        removed = await index.remove(self["project"], self["version"], self["filename"])
        what = self["filename"] or (f"release {self['version']}" if self["version"] else "project")
        print(f"removed {what} of {removed.project}: {removed.releases} release(s), {removed.files} file(s)")


class AdminOptions(SettingsOptions):
    synopsis = "[--config F] [--data-dir D] [--database URL] COMMAND ..."
    longdesc = "Administer a twistedindex package index."
    programName = "cheeseshop-admin"
    settingNames = STORAGE_OPTIONS
    optParameters = setting_parameters(STORAGE_OPTIONS)
    subCommands = [
        ["adduser", None, AdduserOptions, AdduserOptions.description],
        ["passwd", None, PasswdOptions, PasswdOptions.description],
        ["token", None, TokenOptions, TokenOptions.description],
        ["yank", None, YankOptions, YankOptions.description],
        ["unyank", None, UnyankOptions, UnyankOptions.description],
        ["remove", None, RemoveOptions, RemoveOptions.description],
    ]

    def postOptions(self) -> None:
        super().postOptions()
        if self.subCommand is None:
            raise usage.UsageError("a command is needed: adduser, passwd, token, yank, unyank or remove")
        if isinstance(self.subOptions, _PasswordOptions):
            self.subOptions["password"] = self.subOptions.read_password()


async def _run(reactor: Any, options: AdminOptions) -> None:
    try:
        files = prepare_storage(options.settings)
    except StartupError as e:
        raise SystemExit(f"cheeseshop-admin: error: {e}") from None
    store = open_store(options.settings, reactor)
    await store.start()
    index = PackageIndex(store, files, reactor)
    try:
        command: Callable[[PackageIndex], Coroutine[Any, Any, None]] = options.subOptions.run
        await command(index)
    except CheeseshopError as e:
        print(f"cheeseshop-admin: error: {e.message}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        index.stop()
        await store.stop()


def main(argv: list[str] | None = None) -> None:
    """
    The console script.
    """
    options = AdminOptions()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    react(_run, (options,))
