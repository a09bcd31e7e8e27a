"""Plugin-author mistakes become error rows; FACEPIPE_TRACE_PLUGINS traces hook calls."""

from __future__ import annotations

import types
from typing import Callable

import pytest

from facepipe import DetectorSpec, PluginRegistry, hookimpl
from facepipe.types import PluginConfig


def _hook() -> Callable[..., None]:
    """A fresh function each time: @hookimpl marks the function object itself."""

    def register_one(register) -> None:  # type: ignore[no-untyped-def]
        register(DetectorSpec(name="hygiene-demo", factory="nowhere:Nothing", config=PluginConfig))

    return register_one


def _module(name: str, **functions: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for attr, fn in functions.items():
        setattr(mod, attr, fn)
    return mod


def _error_rows(registry: PluginRegistry) -> list:  # type: ignore[type-arg]
    return [row for row in registry.plugins() if row.status == "error"]


def test_misspelled_hookimpl_is_an_error_row_naming_the_hook() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("typo_plugin", facepipe_register_detector=hookimpl(_hook())),
                             distribution="demo")
    (row,) = _error_rows(registry)
    assert row.name == "typo_plugin"
    assert row.distribution == "demo"
    assert "facepipe_register_detector'" in row.error
    assert "did you mean 'facepipe_register_detectors'" in row.error


def test_misspelled_plain_function_is_an_error_row() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("plain_typo", facepipe_register_recognizer=_hook()))
    (row,) = _error_rows(registry)
    assert "facepipe_register_recognizer'" in row.error
    assert "did you mean 'facepipe_register_recognizers'" in row.error


def test_right_name_without_hookimpl_is_an_error_row() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("unmarked", facepipe_register_detectors=_hook()))
    (row,) = _error_rows(registry)
    assert "lacks the @hookimpl decorator" in row.error
    assert registry.names("detector") == []


def test_good_hooks_still_register_beside_a_bad_one() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("mixed", facepipe_register_detectors=hookimpl(_hook()),
                                     facepipe_register_detector=hookimpl(_hook())))
    assert registry.names("detector") == ["hygiene-demo"]
    assert len(_error_rows(registry)) == 1


def test_registering_the_same_module_twice_reports_once() -> None:
    registry = PluginRegistry(autoload=False)
    module = _module("twice", facepipe_register_detector=hookimpl(_hook()))
    registry.register_module(module)
    registry.register_module(module)
    assert len(_error_rows(registry)) == 1


def test_installed_plugins_have_no_hook_mistakes() -> None:
    registry = PluginRegistry()
    mistakes = [row for row in _error_rows(registry) if "hook" in (row.error or "")]
    assert mistakes == []


def test_trace_env_prints_hook_names(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FACEPIPE_TRACE_PLUGINS", "1")
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("traced", facepipe_register_detectors=hookimpl(_hook())))
    registry._pm.hook.facepipe_register_detectors(register=lambda spec: None)  # a call through pluggy
    err = capsys.readouterr().err
    assert "facepipe_register_detectors of traced registered [hygiene-demo]" in err
    assert "call facepipe_register_detectors -> [traced]" in err


def test_no_trace_by_default(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FACEPIPE_TRACE_PLUGINS", raising=False)
    registry = PluginRegistry(autoload=False)
    registry.register_module(_module("quiet", facepipe_register_detectors=hookimpl(_hook())))
    assert "facepipe trace" not in capsys.readouterr().err
