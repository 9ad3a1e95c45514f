# -*- test-case-name: tests.test_config -*-
"""
Settings for the daemon and the admin tool.

Every setting has one row in L{OPTIONS}: its command-line name, where it sits
in the ini file given with C{--config}, its default and its parser.  The
command line wins over the ini file, which wins over the default.  The result
is one frozen L{Settings} value that the rest of the program reads.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import field, frozen
from hyperlink import URL

from .names import PROJECT_NAME_RE, normalize

MiB = 1024 * 1024


class ConfigError(Exception):
    """
    A setting is missing, unknown or malformed.  The message is one line that
    names the setting and says what is wrong with it.
    """


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if number <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return number


def _http_url(value: str) -> str:
    try:
        url = URL.from_text(value)
    except Exception:
        raise ValueError(f"{value!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{value!r} is not an http or https URL")
    return value.rstrip("/")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _text(value: str) -> str:
    return value


def _project_name(value: str) -> str:
    if not PROJECT_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a project name")
    return normalize(value)


@frozen
class Option:
    """
    One setting.

    :ivar name: the long command-line name, as in C{--data-dir}.
    :ivar section: the ini section holding it.
    :ivar key: the ini key within that section.
    :ivar default: the value when neither the command line nor the file sets it.
    :ivar parse: turns the text form into the value; raises C{ValueError}.
    :ivar help: one line for C{--help}.
    :ivar repeatable: the option may be given several times (one value per
        line in the ini file); its value is a tuple.
    """

    name: str
    section: str
    key: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    repeatable: bool = False

    @property
    def attribute(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option(
        "listen",
        "server",
        "listen",
        ("tcp:8080:interface=127.0.0.1",),
        _text,
        "Endpoint to serve HTTP on, e.g. tcp:8080:interface=127.0.0.1 (repeatable).",
        repeatable=True,
    ),
    Option(
        "base-url",
        "server",
        "base_url",
        None,
        _http_url,
        "Public URL of the index, used where an absolute URL is needed.",
    ),
    Option(
        "max-upload-size",
        "server",
        "max_upload_size",
        100 * MiB,
        _positive_int,
        "Largest upload accepted, in bytes.",
    ),
    Option(
        "registration",
        "server",
        "registration",
        "closed",
        _choice("open", "closed"),
        "Whether anyone may create an account through the upload API (open|closed).",
    ),
    Option(
        "access-log",
        "server",
        "access_log",
        None,
        _text,
        "Write an access log (combined format) to this file; '-' logs through twistd's log. Default: none.",
    ),
    Option(
        "data-dir",
        "storage",
        "data_dir",
        "./cheeseshop-data",
        _text,
        "Directory for the SQLite database, the package files and the server keys.",
    ),
    Option(
        "database",
        "storage",
        "database",
        None,
        _text,
        "Database URL: postgresql://user@host:port/db (any libpq form) or "
        "sqlite:PATH. Default: SQLite in the data directory.",
    ),
    Option(
        "mirror-of",
        "mirror",
        "upstream",
        None,
        _http_url,
        "Make this index a read-only mirror of the index at this URL. Default: none (a master).",
    ),
    Option(
        "mirror-interval",
        "mirror",
        "interval",
        60.0,
        _positive_float,
        "Seconds between the starts of two mirror rounds.",
    ),
    Option(
        "mirror-project",
        "mirror",
        "projects",
        (),
        _project_name,
        "Mirror only this project (repeatable). Default: every project.",
        repeatable=True,
    ),
    Option(
        "mirror-workers",
        "mirror",
        "workers",
        8,
        _positive_int,
        "How many requests a mirror round makes to its upstream at once.",
    ),
    Option(
        "ring-mirror",
        "pep381",
        "ring_mirrors",
        (),
        _http_url,
        "A mirror of this index to list at /mirrors, with its age (repeatable).",
        repeatable=True,
    ),
)

OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}

# The settings the admin tool shares with the daemon.
STORAGE_OPTIONS: tuple[str, ...] = ("data-dir", "database")


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class Settings:
    """
    The settings of one daemon or admin run, after the command line, the ini
    file and the defaults have been merged.
    """

    data_dir: str
    database: str | None = None
    listen: tuple[str, ...] = field(default=("tcp:8080:interface=127.0.0.1",), converter=_tuple)
    base_url: str | None = None
    max_upload_size: int = 100 * MiB
    registration: str = "closed"
    access_log: str | None = None
    mirror_of: str | None = None
    mirror_interval: float = 60.0
    mirror_project: tuple[str, ...] = field(default=(), converter=_tuple)
    mirror_workers: int = 8
    ring_mirror: tuple[str, ...] = field(default=(), converter=_tuple)

    @property
    def sqlite_path(self) -> str:
        """
        The SQLite database file used when no PostgreSQL database is set.
        """
        if self.database and self.database.startswith("sqlite:"):
            return self.database[len("sqlite:") :]
        return os.path.join(self.data_dir, "cheeseshop.sqlite")

    @property
    def uses_postgres(self) -> bool:
        return self.database is not None and not self.database.startswith("sqlite:")


def _read_ini(path: str) -> configparser.ConfigParser:
    # Interpolation is off so that '%' in DSNs and passwords survives.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except configparser.Error as e:
        first_line = str(e).splitlines()[0]
        raise ConfigError(f"config file {path} is not a valid ini file: {first_line}") from None
    return parser


def _check_known_keys(parser: configparser.ConfigParser, path: str) -> None:
    """
    Refuse keys no setting has, so a typo is not silently ignored.  Keys of
    settings that this program (the admin tool, say) does not use are
    accepted, because one file serves both programs.
    """
    known = {(option.section, option.key) for option in OPTIONS}
    for section in parser.sections():
        for key in parser[section]:
            if (section, key) not in known:
                raise ConfigError(f"config file {path}: unknown setting [{section}] {key}")


def _parse(option: Option, text: str, origin: str) -> Any:
    try:
        return option.parse(text.strip())
    except ValueError as e:
        raise ConfigError(f"{origin}: {e}") from None


def load_settings(given: Mapping[str, Any], config_path: str | None, names: Iterable[str] | None = None) -> Settings:
    """
    Merge command-line values, the ini file and the defaults into L{Settings}.

    :param given: command-line values by option name; C{None} (or an empty
        list for a repeatable option) means "not given".
    :param config_path: the ini file, or C{None}.
    :param names: the option names this program takes (all by default).
    :raises ConfigError: for any bad value, file or key.
    """
    names = tuple(names if names is not None else OPTIONS_BY_NAME)
    parser = _read_ini(config_path) if config_path else None
    if parser is not None:
        _check_known_keys(parser, config_path or "")
    values: dict[str, Any] = {}
    for name in names:
        option = OPTIONS_BY_NAME[name]
        cli = given.get(name)
        if option.repeatable:
            if cli:
                value: Any = tuple(_parse(option, v, f"--{name}") for v in cli)
            elif parser is not None and parser.has_option(option.section, option.key):
                lines = parser.get(option.section, option.key).split("\n")
                origin = f"[{option.section}] {option.key}"
                value = tuple(_parse(option, v, origin) for v in lines if v.strip())
            else:
                value = option.default
        elif cli is not None:
            value = _parse(option, str(cli), f"--{name}")
        elif parser is not None and parser.has_option(option.section, option.key):
            text = parser.get(option.section, option.key)
            value = _parse(option, text, f"[{option.section}] {option.key}") if text.strip() else option.default
        else:
            value = option.default
        values[option.attribute] = value
    if "listen" in values and not values["listen"]:
        raise ConfigError("at least one --listen endpoint is needed")
    return Settings(**values)
