"""The process-wide plugin cache: one instance per (registry, kind, name, options, weights),
counted users, closed by the last release or by clear()."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from facepipe.model_cache import ModelCache
from facepipe.registry import PluginRegistry
from facepipe.testing import hermetic_registry


class Spy:
    """Counts what the registry builds and which instances get closed."""

    def __init__(self, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
        self.built: list[Any] = []
        self.closed: list[Any] = []
        create = registry.create

        def counting_create(*args: Any, **kwargs: Any) -> Any:
            instance = create(*args, **kwargs)
            instance.close = lambda: self.closed.append(instance)  # type: ignore[method-assign]
            self.built.append(instance)
            return instance

        monkeypatch.setattr(registry, "create", counting_create)


@pytest.fixture
def registry() -> PluginRegistry:
    return hermetic_registry()


def test_same_options_give_the_same_instance_and_count_users(registry: PluginRegistry,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spy, cache = Spy(registry, monkeypatch), ModelCache()
    key1, first = cache.acquire(registry, "detector", "blob", {"min_side": 8})
    key2, second = cache.acquire(registry, "detector", "blob", None)  # the defaults validate equal
    assert first is second and key1 == key2 and len(spy.built) == 1
    assert cache.users(key1) == 2 and cache.loaded() == [("detector", "blob", 2)]
    cache.release(key1)
    assert spy.closed == [] and cache.users(key1) == 1
    cache.release(key2)
    assert spy.closed == [first] and cache.users(key1) == 0 and cache.loaded() == []
    cache.release(key2)  # one release too many is ignored
    _, third = cache.acquire(registry, "detector", "blob")
    assert third is not first and len(spy.built) == 2


def test_other_options_weights_or_registry_give_other_instances(registry: PluginRegistry) -> None:
    cache = ModelCache()
    _, base = cache.acquire(registry, "detector", "blob")
    assert cache.acquire(registry, "detector", "blob", {"min_side": 9})[1] is not base
    assert cache.acquire(registry, "detector", "blob", weights=object())[1] is not base
    assert cache.acquire(hermetic_registry(), "detector", "blob")[1] is not base
    assert cache.acquire(registry, "detector", "BLOB")[1] is base  # names are case-insensitive


def test_clear_closes_everything_and_stale_keys_release_nothing(registry: PluginRegistry,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spy, cache = Spy(registry, monkeypatch), ModelCache()
    old_key, old = cache.acquire(registry, "recognizer", "grid")
    assert cache.clear() == 1 and spy.closed == [old]
    new_key, new = cache.acquire(registry, "recognizer", "grid")
    assert new is not old and new_key != old_key
    cache.release(old_key)  # a holder from before clear(): must not close the new instance
    assert cache.users(new_key) == 1 and spy.closed == [old]


def test_racing_threads_build_once(registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    spy, cache = Spy(registry, monkeypatch), ModelCache()
    start = threading.Barrier(8)
    got: list[Any] = []

    def worker() -> None:
        start.wait()
        got.append(cache.acquire(registry, "recognizer", "grid")[1])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spy.built) == 1 and len(got) == 8 and all(g is got[0] for g in got)


def test_a_failed_build_leaves_no_entry(registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ModelCache()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no weights")

    monkeypatch.setattr(registry, "create", broken)
    with pytest.raises(RuntimeError):
        cache.acquire(registry, "recognizer", "grid")
    assert cache.loaded() == [] and cache._entries == {}
