"""
Settings: defaults, the ini file, the command line, and their order.
"""

from __future__ import annotations

from typing import Any

import pytest

from twistedindex.config import ConfigError, MiB, Settings, load_settings
from twistedindex.tap import Options


def parse(*argv: str) -> Settings:
    options = Options()
    options.parseOptions(list(argv))
    return options.settings


def write_ini(tmp_path: Any, text: str) -> str:
    path = tmp_path / "cheeseshop.ini"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    """
    With no options and no file, every setting has its documented default.
    """
    settings = parse()
    assert settings == Settings(
        data_dir="./cheeseshop-data",
        database=None,
        listen=("tcp:8080:interface=127.0.0.1",),
        base_url=None,
        max_upload_size=100 * MiB,
        registration="closed",
    )
    assert settings.sqlite_path == "./cheeseshop-data/cheeseshop.sqlite"
    assert not settings.uses_postgres


def test_ini_file_sets_values_and_command_line_wins(tmp_path: Any) -> None:
    """
    Values come from the ini file unless the command line gives them.
    """
    ini = write_ini(
        tmp_path,
        "[server]\nlisten = tcp:9001\n  tcp:9002\nmax_upload_size = 1000\n"
        "[storage]\ndata_dir = /srv/index\ndatabase = postgresql://db.example/index\n",
    )
    settings = parse("--config", ini, "--data-dir", "/elsewhere", "--listen", "tcp:7000")
    assert settings.listen == ("tcp:7000",)
    assert settings.data_dir == "/elsewhere"
    assert settings.max_upload_size == 1000
    assert settings.database == "postgresql://db.example/index" and settings.uses_postgres
    assert parse("--config", ini).listen == ("tcp:9001", "tcp:9002")


def test_example_config_holds_every_default(tmp_path: Any) -> None:
    """
    etc/cheeseshop.ini, the commented example, parses to the defaults.
    """
    import os

    example = os.path.join(os.path.dirname(__file__), os.pardir, "etc", "cheeseshop.ini")
    assert parse("--config", example) == parse()
    text = open(example).read()
    from twistedindex.config import OPTIONS

    for option in OPTIONS:
        assert f"[{option.section}]" in text and f"{option.key} =" in text, option.name


@pytest.mark.parametrize(
    "argv, ini, message",
    [
        (["--max-upload-size", "big"], None, "--max-upload-size: 'big' is not a whole number"),
        (["--max-upload-size", "0"], None, "--max-upload-size: '0' must be greater than zero"),
        (["--registration", "maybe"], None, "--registration: 'maybe' is not one of open, closed"),
        (["--base-url", "ftp://x"], None, "--base-url: 'ftp://x' is not an http or https URL"),
        ([], "[server]\nlisten_on = tcp:1\n", "unknown setting [server] listen_on"),
        ([], "[server]\nmax_upload_size = -1\n", "[server] max_upload_size: '-1' must be greater than zero"),
        ([], "not an ini file\n", "is not a valid ini file"),
        (["--listen", "bogus:1"], None, "--listen bogus:1: not a valid endpoint"),
    ],
)
def test_bad_values_are_refused_in_one_line(tmp_path: Any, argv: list[str], ini: str | None, message: str) -> None:
    """
    A bad value, key or file ends parsing with one line that names it.
    """
    if ini is not None:
        argv = argv + ["--config", write_ini(tmp_path, ini)]
    with pytest.raises(SystemExit) as raised:
        parse(*argv)
    text = str(raised.value.code)
    assert text.startswith("cheeseshop: error: ")
    assert message in text
    assert "\n" not in text


def test_missing_config_file_is_named() -> None:
    """
    A config file that cannot be read is named in the error.
    """
    with pytest.raises(ConfigError, match="cannot read config file /no/such.ini"):
        load_settings({}, "/no/such.ini")


def test_mirroring_settings() -> None:
    """
    The mirroring and PEP 381 options parse, repeatable ones included, and
    project names are kept normalized.
    """
    settings = parse(
        "--mirror-of",
        "https://pypi.example.org/",
        "--mirror-interval",
        "2.5",
        "--mirror-project",
        "Zope.Interface",
        "--mirror-project",
        "twisted",
        "--mirror-workers",
        "3",
        "--ring-mirror",
        "http://b.example.org",
        "--ring-mirror",
        "http://c.example.org",
    )
    assert settings.mirror_of == "https://pypi.example.org"
    assert settings.mirror_interval == 2.5
    assert settings.mirror_project == ("zope-interface", "twisted")
    assert settings.mirror_workers == 3
    assert settings.ring_mirror == ("http://b.example.org", "http://c.example.org")
    with pytest.raises(SystemExit, match="--mirror-project: 'not a name!' is not a project name"):
        parse("--mirror-project", "not a name!")
    with pytest.raises(SystemExit, match="--mirror-of: 'ftp://x' is not an http or https URL"):
        parse("--mirror-of", "ftp://x")
