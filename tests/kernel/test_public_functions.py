"""``facepipe.verify`` & co. stay functions however many submodules get imported.

Importing a submodule binds it as an attribute of its parent package, so a submodule named like
one of the lazy functions (the old ``facepipe/find.py``) silently replaced ``facepipe.find``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from importlib import metadata

import pytest

import facepipe

PUBLIC_FUNCTIONS = ("verify", "represent", "analyze", "find", "extract_faces", "build_model")


def _package_roots() -> set[str]:
    """``facepipe`` plus the packages of the built-in plugin modules.

    An editable install maps ``facepipe.plugins.<family>`` to folders outside ``core/`` with an
    import hook that ``pkgutil`` cannot list, so those packages are walked on their own.
    """
    roots = {"facepipe"}
    for ep in metadata.entry_points(group="facepipe"):
        if ep.dist is not None and ep.dist.metadata["Name"] == "facepipe":
            roots.add(ep.value.partition(":")[0].rpartition(".")[0])
    return roots


def _import_every_module() -> list[str]:
    """Import every module under ``facepipe``; those whose optional dependencies are missing are skipped."""
    skipped = []

    def note_error(name: str) -> None:  # walk_packages calls this when a package fails to import
        skipped.append(name)

    for root in sorted(_package_roots()):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{root}.", onerror=note_error):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an extra that is not installed (ModuleNotFoundError included)
                skipped.append(info.name)
    return skipped


@pytest.mark.parametrize("first", ["functions", "submodules"])
def test_public_functions_survive_importing_every_submodule(first: str) -> None:
    if first == "functions":  # resolve the lazy names before the submodules are imported
        for name in PUBLIC_FUNCTIONS:
            getattr(facepipe, name)
    _import_every_module()
    for name in PUBLIC_FUNCTIONS:
        value = getattr(facepipe, name)
        assert not inspect.ismodule(value), f"facepipe.{name} is the module {value.__name__}"
        assert callable(value), f"facepipe.{name} is {value!r}"


def test_every_module_was_walked() -> None:
    _import_every_module()
    imported = {name for name in sys.modules if name.startswith("facepipe.plugins.")}
    assert {"facepipe.plugins.detectors.skip", "facepipe.plugins.recognizers.dlib"} <= imported


def test_no_submodule_is_named_like_a_public_function() -> None:
    children = {info.name for info in pkgutil.iter_modules(facepipe.__path__)}
    assert not children & set(PUBLIC_FUNCTIONS)
