# -*- test-case-name: tests.test_tap -*-
"""
The C{cheeseshop} twistd plugin: its options and its service.

C{twistd -n cheeseshop --help} lists the options.  Every option can also sit
in an ini file given with C{--config}; the command line wins.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from .config import OPTIONS, ConfigError, Settings, load_settings


def _describe(option_help: str, default: Any) -> str:
    if default is None:
        return option_help
    if isinstance(default, tuple):
        default = ", ".join(default)
    return f"{option_help} [default: {default}]"


def setting_parameters(names: tuple[str, ...]) -> list[list[Any]]:
    """
    C{optParameters} for the single-valued settings among C{names}, plus
    C{--config}.  Defaults are C{None} here so that L{load_settings} can tell
    "not given" from "given"; the help text shows the real default.
    """
    parameters: list[list[Any]] = [["config", "c", None, "An ini file with settings (see etc/cheeseshop.ini)."]]
    for option in OPTIONS:
        if option.name in names and not option.repeatable:
            parameters.append([option.name, None, None, _describe(option.help, option.default)])
    return parameters


class SettingsOptions(usage.Options):
    """
    Options built from L{twistedindex.config.OPTIONS}, merged with an ini file
    into L{Settings}.  Subclasses name the settings they take in
    C{settingNames} and set C{optParameters = setting_parameters(...)}.

    Errors come out as one line on stderr and exit status 1 (twistd would
    otherwise print the whole usage text to stdout).
    """

    settingNames: tuple[str, ...] = ()
    programName = "cheeseshop"
    settings: Settings

    def __init__(self) -> None:
        super().__init__()
        for option in OPTIONS:
            if option.name in self.settingNames and option.repeatable:
                self[option.name] = []

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            raise SystemExit(f"{self.programName}: error: {e}") from None

    def postOptions(self) -> None:
        try:
            self.settings = load_settings(self, self["config"], self.settingNames)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


class Options(SettingsOptions):
    synopsis = "[options]"
    longdesc = (
        "Run a Python package index: uploads (twine, uv, distutils), the simple "
        "and JSON APIs for pip and uv, XML-RPC, web pages and mirroring."
    )
    settingNames = tuple(option.name for option in OPTIONS)
    optParameters = setting_parameters(settingNames)

    def opt_listen(self, endpoint: str) -> None:
        self["listen"].append(endpoint)

    opt_listen.__doc__ = _describe("Endpoint to serve HTTP on (repeatable).", "tcp:8080:interface=127.0.0.1")

    def opt_mirror_project(self, name: str) -> None:
        self["mirror-project"].append(name)

    opt_mirror_project.__doc__ = "Mirror only this project (repeatable). Default: every project."

    def opt_ring_mirror(self, url: str) -> None:
        self["ring-mirror"].append(url)

    opt_ring_mirror.__doc__ = "A mirror of this index to list at /mirrors, with its age (repeatable)."

    def postOptions(self) -> None:
        super().postOptions()
        from twisted.internet import reactor
        from twisted.internet.endpoints import serverFromString

        for description in self.settings.listen:
            try:
                serverFromString(reactor, description)
            except (ValueError, TypeError, KeyError) as e:
                raise usage.UsageError(f"--listen {description}: not a valid endpoint ({e})") from None


def makeService(options: Options) -> IService:
    """
    Build the daemon's service tree.  Start-up problems (an unreachable
    database, an unwritable data directory, a schema newer than the code)
    end the process with one line on stderr.
    """
    from twisted.internet import reactor

    from .wiring import StartupError, build_service

    try:
        service = build_service(options.settings, reactor)
        service.bind()
    except StartupError as e:
        raise SystemExit(f"cheeseshop: error: {e}") from None
    return service
