"""The wheel holds every module of ``core/`` and ``plugins/``, and the web page's static files.

pyproject.toml lists the packages by hand (``package-dir`` maps two source roots, which makes
setuptools' discovery awkward), so a new sub-package could be left out of the wheel while every
test still passes against the editable install.  These tests catch that.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = {"core": "facepipe", "plugins": "facepipe.plugins"}
#: Folders of non-Python files the package needs at run time ([tool.setuptools.package-data]).
DATA_FOLDERS = ("core/apps/static",)


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _python_files() -> list[Path]:
    return sorted(p for root in SOURCE_ROOTS for p in (REPO / root).rglob("*.py") if "__pycache__" not in p.parts)


def _data_files() -> list[Path]:
    return sorted(p for folder in DATA_FOLDERS for p in (REPO / folder).rglob("*") if p.is_file())


def _package_of(folder: Path) -> str:
    """The import name of a source folder: ``core/x`` is ``facepipe.x``, ``plugins/x`` is ``facepipe.plugins.x``."""
    root, *rest = folder.relative_to(REPO).parts
    return ".".join([SOURCE_ROOTS[root], *rest])


def _wheel_path(source: Path) -> str:
    """Where a source file lands inside the wheel."""
    module = _package_of(source.parent).split(".")
    return "/".join([*module, source.name])


def _folder_of(package: str, package_dir: dict[str, str]) -> Path:
    """Resolve a package to its folder the way setuptools does: the longest ``package-dir`` prefix wins."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return REPO / package_dir[prefix] / Path(*parts[cut:])
    return REPO / Path(*parts)


def test_every_source_folder_is_a_listed_package() -> None:
    setuptools_table = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_table["packages"])
    folders = {p.parent for p in _python_files()}
    expected = {_package_of(folder) for folder in folders}
    assert sorted(expected - listed) == [], "add these to [tool.setuptools] packages in pyproject.toml"
    assert sorted(listed - expected) == [], "these listed packages hold no .py file"
    wrong = {pkg: str(_folder_of(pkg, setuptools_table["package-dir"]).relative_to(REPO))
             for pkg in listed if _folder_of(pkg, setuptools_table["package-dir"]) not in folders}
    assert wrong == {}, "[tool.setuptools] package-dir sends these packages to the wrong folder"


def test_built_wheel_holds_every_module(tmp_path: Path) -> None:
    # Build from a copy, so the build/ and egg-info folders never land in the shared checkout.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for root in SOURCE_ROOTS:
        shutil.copytree(REPO / root, source / root, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("facepipe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        inside = set(archive.namelist())
    missing = sorted(str(p.relative_to(REPO)) for p in _python_files() if _wheel_path(p) not in inside)
    assert missing == [], "not in the wheel: " + ", ".join(missing)
    data = _data_files()
    assert any(p.name == "index.html" for p in data), "the web page's files are not where DATA_FOLDERS says"
    missing_data = sorted(str(p.relative_to(REPO)) for p in data if _wheel_path(p) not in inside)
    assert missing_data == [], "add to [tool.setuptools.package-data]: " + ", ".join(missing_data)
    entry_points = next(n for n in inside if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "[facepipe]" in archive.read(entry_points).decode()
