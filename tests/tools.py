"""
Other programs the tests run against the daemon (bandersnatch, pypiserver),
each installed from PyPI into a virtual environment of its own under
C{.test-tools/} the first time it is needed, and kept for later runs.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .daemon import ROOT

TOOLS = Path(ROOT) / ".test-tools"


def find_python(version: str) -> str | None:
    """
    A working C{python<version>} on this machine, or C{None}.  A pyenv shim
    on the path may stand for a version it cannot run, so each candidate is
    tried.
    """
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            result = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode == 0 and result.stdout.startswith(f"Python {version}"):
            return candidate
    return None


def tool_venv(name: str, python: str, *requirements: str) -> Path:
    """
    A virtual environment made with C{python} holding C{requirements},
    installed from PyPI (the machine's own pip settings apply: these are
    tools, not clients under test).
    """
    venv = TOOLS / name
    marker = venv / "twistedindex-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return venv
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"installing {' '.join(requirements)} failed:\n{result.stdout}\n{result.stderr}")
    marker.write_text(wanted)
    return venv
