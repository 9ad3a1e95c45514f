"""
Publishing with the clients authors use, against a running daemon, each
followed by an install with pip from this index alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .daemon import RunningIndex, environment, run, tool
from .distributions import sdist, wheel
from .http import get

PASSWORD = "publisher-password"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("publish"))).start()
    running.add_user("pat", PASSWORD)
    yield running
    running.stop()


def pip_install(index: RunningIndex, target: Path, *requirements: str) -> subprocess.CompletedProcess[str]:
    """
    pip, isolated from the machine's configuration, installing from this
    index alone into C{target}.  An sdist is built with the build tools of
    the test environment (no build isolation), since this index holds no
    setuptools.
    """
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-build-isolation",
            "--index-url",
            index.simple_url,
            "--target",
            str(target),
            *requirements,
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def installed_version(target: Path, module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.VERSION)"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        check=True,
    )
    return result.stdout.strip()


def twine(*args: str, executable: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(
        [executable or tool("twine"), "upload", "--non-interactive", "--disable-progress-bar", *args], timeout=120
    )


def test_twine_with_a_password(index: RunningIndex, tmp_path: Path) -> None:
    """
    twine uploads a wheel and an sdist with a user name and password; the
    uploader becomes the project's Owner, and pip installs the result.
    """
    files = [wheel(tmp_path, "twine-password", "1.0"), sdist(tmp_path, "twine-password", "1.0")]
    result = twine("--repository-url", index.upload_url, "-u", "pat", "-p", PASSWORD, *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    page = get(index.simple_url + "twine-password/").text
    assert "twine_password-1.0-py3-none-any.whl" in page and "twine_password-1.0.tar.gz" in page
    pip_install(index, tmp_path / "target", "twine-password")
    assert installed_version(tmp_path / "target", "twine_password") == "1.0"
    roles = index.admin("token", "create", "pat", "--project", "twine-password").stdout
    assert "project twine-password" in roles


def test_twine_with_a_token(index: RunningIndex, tmp_path: Path) -> None:
    """
    twine uploads with an API token as the password of C{__token__}.
    """
    token = index.token("pat")
    result = twine(
        "--repository-url", index.upload_url, "-u", "__token__", "-p", token, str(wheel(tmp_path, "twine-token"))
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pip_install(index, tmp_path / "target", "twine-token==1.0")
    assert installed_version(tmp_path / "target", "twine_token") == "1.0"


@pytest.fixture(scope="session")
def twine_with_skip_existing(tmp_path_factory: pytest.TempPathFactory) -> str:
    """
    twine 6.1, the last release whose --skip-existing works with indexes
    other than PyPI (twine 6.2 refuses the option for them).
    """
    directory = tmp_path_factory.mktemp("twine61")
    env = environment()
    subprocess.run([tool("uv"), "venv", "-q", str(directory / "venv")], check=True, env=env)
    subprocess.run(
        [tool("uv"), "pip", "install", "-q", "--python", str(directory / "venv" / "bin" / "python"), "twine==6.1.0"],
        check=True,
        env=env,
    )
    return str(directory / "venv" / "bin" / "twine")


def test_twine_skip_existing(index: RunningIndex, tmp_path: Path, twine_with_skip_existing: str) -> None:
    """
    A second twine run with --skip-existing skips the files already there,
    including a rebuilt file whose bytes differ, and uploads the new one.
    """
    first = wheel(tmp_path, "skipper", "1.0")
    credentials = ["--repository-url", index.upload_url, "-u", "pat", "-p", PASSWORD]
    assert twine(*credentials, str(first), executable=twine_with_skip_existing).returncode == 0
    rebuilt_dir = tmp_path / "rebuilt"
    rebuilt_dir.mkdir()
    rebuilt = wheel(rebuilt_dir, "skipper", "1.0", summary="Rebuilt, different bytes")
    second = wheel(rebuilt_dir, "skipper", "1.1")
    without = twine(*credentials, str(rebuilt), executable=twine_with_skip_existing)
    assert without.returncode != 0 and "File already exists" in without.stdout + without.stderr
    result = twine(*credentials, "--skip-existing", str(rebuilt), str(second), executable=twine_with_skip_existing)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Skipping skipper-1.0-py3-none-any.whl because it appears to already exist" in " ".join(
        (result.stdout + result.stderr).split()
    )
    page = get(index.simple_url + "skipper/").text
    assert "skipper-1.1-py3-none-any.whl" in page


def test_uv_publish(index: RunningIndex, tmp_path: Path) -> None:
    """
    uv publish uploads with a token; publishing the same files again is a
    no-op that succeeds.
    """
    token = index.token("pat")
    files = [str(wheel(tmp_path, "uv-published", "2.0")), str(sdist(tmp_path, "uv-published", "2.0"))]
    for _ in range(2):
        result = run([tool("uv"), "publish", "--publish-url", index.upload_url, "--token", token, *files], timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    page = get(index.simple_url + "uv-published/").text
    assert page.count("<a ") == 2
    pip_install(index, tmp_path / "target", "uv-published")
    assert installed_version(tmp_path / "target", "uv_published") == "2.0"


SETUP_PY = """\
from distutils.core import setup
setup(
    name="{name}",
    version="{version}",
    description="Published with stdlib distutils",
    long_description="Title\\n=====\\n\\nSome *text*.\\n",
    url="https://example.org/{name}",
    author="Pat",
    author_email="pat@example.org",
    keywords=["distutils", "test"],
    classifiers=["Programming Language :: Python :: 3"],
    py_modules=["{module}"],
)
"""


def distutils_project(directory: Path, name: str, version: str, index: RunningIndex) -> dict[str, str]:
    module = name.replace("-", "_")
    directory.mkdir(parents=True)
    (directory / "setup.py").write_text(SETUP_PY.format(name=name, version=version, module=module))
    (directory / f"{module}.py").write_text(f"VERSION = {version!r}\n")
    home = directory / "home"
    home.mkdir()
    (home / ".pypirc").write_text(
        textwrap.dedent(
            f"""\
            [distutils]
            index-servers = local
            [local]
            repository = {index.url}pypi
            username = pat
            password = {PASSWORD}
            """
        )
    )
    return environment(HOME=str(home), SETUPTOOLS_USE_DISTUTILS="stdlib")


def check_distutils_output(output: str) -> None:
    assert "Registering" in output and output.count("Server response (200): OK") == 2, output


def test_distutils_register_and_upload(index: RunningIndex, tmp_path: Path) -> None:
    """
    Python 3.11's stdlib distutils registers (after the 401 challenge) and
    uploads an sdist (metadata 1.0 with 1.1 fields, repeated keywords, a
    BLAKE2b-512 digest, no part Content-Type); pip installs it.
    """
    project = tmp_path / "project"
    env = distutils_project(project, "du-three", "1.0", index)
    result = run(
        [sys.executable, "-W", "ignore", "setup.py", "register", "-r", "local", "sdist", "upload", "-r", "local"],
        cwd=str(project),
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_distutils_output(result.stdout + result.stderr)
    assert "du-three-1.0.tar.gz" in get(index.simple_url + "du-three/").text
    pip_install(index, tmp_path / "target", "du-three")
    assert installed_version(tmp_path / "target", "du_three") == "1.0"


def python27() -> list[str] | None:
    if shutil.which("python2.7") is None:
        return None
    probe = subprocess.run(
        ["python2.7", "-c", "import distutils"], capture_output=True, env={**os.environ, "PYENV_VERSION": "2.7.18"}
    )
    return ["python2.7"] if probe.returncode == 0 else None


@pytest.mark.skipif(python27() is None, reason="no Python 2.7 on this machine")
def test_python27_distutils_register_and_upload(index: RunningIndex, tmp_path: Path) -> None:
    """
    Python 2.7's distutils registers and uploads too.
    """
    project = tmp_path / "project"
    env = distutils_project(project, "du-two", "1.0", index)
    env["PYENV_VERSION"] = "2.7.18"
    command = python27()
    assert command is not None
    result = run(
        [*command, "setup.py", "register", "-r", "local", "sdist", "upload", "-r", "local"], cwd=str(project), env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    check_distutils_output(result.stdout + result.stderr)
    pip_install(index, tmp_path / "target", "du-two")
    assert installed_version(tmp_path / "target", "du_two") == "1.0"
