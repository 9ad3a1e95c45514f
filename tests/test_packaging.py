"""
What `pip install .` installs: the wheel built from this tree.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .daemon import ROOT, copy_of_tree, environment


def test_wheel_carries_the_whole_program(tmp_path: Path) -> None:
    """
    The wheel holds every module, schema file and stylesheet of
    twistedindex and the twistd plugin, and no __init__.py that would
    shadow Twisted's plugins.
    """
    tree = copy_of_tree(tmp_path / "tree")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), tree],
        check=True,
        env=environment(),
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("twistedindex-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    source = Path(ROOT)
    expected = {str(p.relative_to(source)) for p in (source / "twistedindex").rglob("*.py")}
    expected |= {str(p.relative_to(source)) for p in (source / "twistedindex").rglob("*.sql")}
    expected |= {str(p.relative_to(source)) for p in (source / "twistedindex").rglob("*.css")}
    expected.add("twisted/plugins/cheeseshop.py")
    assert expected - names == set()
    assert "twisted/__init__.py" not in names and "twisted/plugins/__init__.py" not in names
    assert any(name.endswith("entry_points.txt") for name in names)
