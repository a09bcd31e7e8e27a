"""Plugin registry: discovery, lookup, suggestions, isolation of broken plugins, conflicts."""

from __future__ import annotations

import types

import pytest

from facepipe import DetectorSpec, PluginRegistry, hookimpl
from facepipe.errors import PluginConflictError, PluginNotFoundError, PluginUnavailableError
from facepipe.types import PluginConfig


def _module(name: str, **hooks: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))  # type: ignore[arg-type]
    return mod


def test_builtins_are_discovered_through_entry_points() -> None:
    registry = PluginRegistry()
    names = {(p.kind, p.name) for p in registry.plugins()}
    assert ("detector", "skip") in names
    assert ("recognizer", "Dlib") in names
    assert ("metric", "cosine") in names
    assert all(p.distribution == "facepipe" for p in registry.plugins() if p.name in ("skip", "Dlib"))


def test_unknown_name_suggests_close_match_and_lists_choices() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginNotFoundError) as info:
        registry.get("recognizer", "Dlbi")
    message = str(info.value)
    assert "Did you mean 'Dlib'" in message
    assert "Installed recognizers:" in message


def test_lookup_is_case_insensitive_and_knows_aliases() -> None:
    registry = PluginRegistry()
    assert registry.get("recognizer", "dlib").name == "Dlib"
    assert registry.get("recognizer", "dlib-resnet").name == "Dlib"


def test_hermetic_registry_starts_empty() -> None:
    registry = PluginRegistry(autoload=False)
    assert registry.plugins() == []


def test_missing_extra_is_reported_with_pip_command() -> None:
    def register_detectors(register):  # type: ignore[no-untyped-def]
        register(DetectorSpec(name="needs-missing", factory="nowhere:Nothing", config=PluginConfig,
                              requires=("a_module_that_is_not_installed",), extra="imaginary"))

    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("m1", facepipe_register_detectors=register_detectors), distribution="demo")
    (row,) = registry.plugins()
    assert row.status == "missing extra"
    assert row.install == "pip install 'facepipe[imaginary]'"
    with pytest.raises(PluginUnavailableError, match=r"facepipe\[imaginary\]"):
        registry.create("detector", "needs-missing")


def test_a_hook_that_raises_is_listed_as_broken_and_others_survive() -> None:
    def broken(register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    def fine(register):  # type: ignore[no-untyped-def]
        register(DetectorSpec(name="fine", factory="x:y"))

    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("bad", facepipe_register_detectors=broken), distribution="bad-dist")
    registry.register_module(_module("good", facepipe_register_detectors=fine), distribution="good-dist")
    rows = {r.name: r for r in registry.plugins()}
    assert rows["fine"].status == "ok"
    assert rows["bad"].status == "error" and "boom" in (rows["bad"].error or "")


def test_same_name_from_two_distributions_is_an_error_naming_both() -> None:
    def one(register):  # type: ignore[no-untyped-def]
        register(DetectorSpec(name="twin", factory="a:A"))

    def two(register):  # type: ignore[no-untyped-def]
        register(DetectorSpec(name="twin", factory="b:B"))

    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("one", facepipe_register_detectors=one), distribution="dist-one")
    registry.register_module(_module("two", facepipe_register_detectors=two), distribution="dist-two")
    with pytest.raises(PluginConflictError) as info:
        registry.get("detector", "twin")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)
    assert {r.status for r in registry.plugins()} == {"conflict"}


def test_blocklist_and_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = PluginRegistry(block=["detectors.skip"])
    assert "skip" not in blocked.names("detector")
    allowed = PluginRegistry(allow=["detectors.skip"])
    assert allowed.names("detector") == ["skip"]
    assert allowed.names("recognizer") == []


def test_autoload_switch_keeps_only_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPIPE_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = PluginRegistry()
    assert {p.distribution for p in registry.plugins() if p.kind != "unknown"} == {"facepipe"}
