"""One process-wide cache of built plugin instances, shared by every :class:`~facepipe.Pipeline`.

Two pipelines that differ only in pipeline-level options (``align``, ``expand_percentage``, the
metric, the threshold, ``on_no_face``, the detector, ...) ask for the same recognizer here and get
the *same* instance, so a model's weights are in memory once per process, not once per option set.

An instance is keyed by the registry that made it, the plugin kind, its canonical name, its
validated options (the frozen pydantic config's JSON) and the weights manager it loads through.

Ownership is counted: :meth:`ModelCache.acquire` adds a user, :meth:`ModelCache.release` removes
one, and the instance is closed when its last user lets go.  A :class:`~facepipe.Pipeline` holds
one use per plugin it built and gives them back in ``close()`` (or when it is garbage-collected),
so closing one pipeline never closes a model another pipeline still uses.
:func:`clear_models` closes everything at once (tests, or freeing memory by hand); pipelines that
still run rebuild what they need on their next call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping

from facepipe.plugin_config import PluginConfig
from facepipe.specs import PluginKind

__all__ = ["ModelCache", "ModelKey", "shared_models", "clear_models"]

#: (cache generation, registry id, kind, canonical name, config class, config JSON, weights manager id)
ModelKey = tuple[Hashable, ...]


@dataclass
class _Entry:
    # The registry and weights manager are held so that the ids in the key stay unique while the
    # entry lives (an id can be reused once its object is freed).
    registry: Any
    weights: Any
    build_lock: threading.Lock = field(default_factory=threading.Lock)
    instance: Any = None
    users: int = 0


def _config_key(config: PluginConfig) -> str:
    try:
        return config.model_dump_json()
    except Exception:  # an option pydantic cannot serialise: its repr still tells configs apart
        return repr(config.model_dump())


class ModelCache:
    """Built plugin instances, shared and reference-counted (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[ModelKey, _Entry] = {}
        #: bumped by clear(): holders of older keys know their instances were closed
        self.generation = 0

    def key(self, registry: Any, kind: PluginKind, name: str, config: PluginConfig, weights: Any = None) -> ModelKey:
        """The cache key of a plugin built by ``registry`` with the validated ``config``, now.

        It starts with the cache's generation, so a key taken before :meth:`clear` never names an
        instance built after it (releasing such a stale key does nothing)."""
        return (self.generation, id(registry), kind, registry.get(kind, name).name,
                type(config).__qualname__, _config_key(config), id(weights))

    def acquire(self, registry: Any, kind: PluginKind, name: str,
                options: Mapping[str, Any] | PluginConfig | None = None, *,
                weights: Any = None) -> tuple[ModelKey, Any]:
        """The shared instance for these options (built on first use) and the key to release it by.

        Each call counts one user; give it back with :meth:`release`.  A plugin that is being
        built by another thread is waited for, not built twice."""
        config = registry.validate_config(kind, name, options)
        key = self.key(registry, kind, name, config, weights)
        with self._lock:
            key = (self.generation, *key[1:])  # clear() may have run since
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(registry, weights)
            entry.users += 1
        try:
            with entry.build_lock:  # one build per key; other keys build in parallel
                if entry.instance is None:
                    entry.instance = registry.create(kind, name, config, weights=weights)
                return key, entry.instance
        except BaseException:
            self._drop_user(key, entry)
            raise

    def release(self, key: ModelKey) -> None:
        """Give back one use of ``key``; the last user's release closes the instance."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            self._drop_user(key, entry)

    def _drop_user(self, key: ModelKey, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            if entry.users > 0 or self._entries.get(key) is not entry:
                return
            del self._entries[key]
        if entry.instance is not None:
            entry.instance.close()

    def users(self, key: ModelKey) -> int:
        """How many users hold ``key`` now (0 when it is not cached)."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.users if entry is not None else 0

    def loaded(self) -> list[tuple[str, str, int]]:
        """``(kind, name, users)`` of every built instance (what is in memory now)."""
        with self._lock:
            return [(str(key[2]), str(key[3]), entry.users)
                    for key, entry in self._entries.items() if entry.instance is not None]

    def clear(self) -> int:
        """Close and forget every instance; returns how many were closed.  Holders of a key
        may still release it (a no-op then); pipelines rebuild on their next call."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            self.generation += 1
        closed = 0
        for entry in entries:
            if entry.instance is not None:
                entry.instance.close()
                closed += 1
        return closed


_shared = ModelCache()


def shared_models() -> ModelCache:
    """The process-wide cache every pipeline uses unless given its own."""
    return _shared


def clear_models() -> int:
    """Close every shared model (``facepipe.clear_models()``); returns how many were closed."""
    return _shared.clear()
