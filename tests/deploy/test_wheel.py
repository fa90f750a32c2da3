"""The installed package holds every file the code reads at run time.

The Docker image installs the project non-editably (``pip install .``), so a data file that
``[tool.setuptools.package-data]`` does not name is missing there while every test on a
checkout passes: the WordNet senses (``cache/artifacts/synonyms.json.gz``) were, until the
eleventh session. This builds the wheel and compares it with the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cache", "gateway")


def _data_files() -> set[str]:
    """Every file under the packages that is not Python source or a compiled cache."""
    out = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if (
                path.is_file()
                and path.suffix not in (".py", ".pyc")
                and "__pycache__" not in path.parts
            ):
                out.add(path.relative_to(ROOT).as_posix())
    return out


def test_the_wheel_holds_every_data_file(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build reuses build/lib, whose stale files would pass.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")]
    subprocess.run(
        [sys.executable, "-m", "pip", *build, str(source)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("tiergate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = _data_files()
    assert "cache/artifacts/synonyms.json.gz" in wanted  # the case that was missed
    assert wanted - names == set()
