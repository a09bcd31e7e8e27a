"""Loaded networks shared by plugin instances whose options differ only outside the network.

Two instances of one Keras recognizer that differ only in, say, ``normalization`` (applied to the
input before the network) or ``batch_size`` are different plugin instances, but their networks -
the same architecture with the same weight file on the same device - are identical.  They ask for
it here and get one object, so the weights are in memory once.

The cache holds networks weakly: a network lives as long as some instance holds it, and the last
instance's ``close()`` frees it.  The key names the weight file by path, size and modification
time, so a rewritten file is loaded afresh.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Hashable

__all__ = ["shared_network", "weights_identity", "live_networks"]

_networks: "weakref.WeakValueDictionary[Hashable, Any]" = weakref.WeakValueDictionary()
_build_locks: dict[Hashable, threading.Lock] = {}
_lock = threading.Lock()


def weights_identity(path: Path) -> tuple[str, int, int]:
    """``(resolved path, size, mtime_ns)`` of a weight file: equal only for the same bytes on disk
    (in practice)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns


def shared_network(key: Hashable, make: Callable[[], Any]) -> Any:
    """The live network for ``key``, else ``make()`` (once, even when threads race) remembered
    under ``key`` for as long as someone holds it."""
    network = _networks.get(key)
    if network is not None:
        return network
    with _lock:
        build_lock = _build_locks.setdefault(key, threading.Lock())
    with build_lock:
        network = _networks.get(key)
        if network is None:
            network = make()
            _networks[key] = network
    with _lock:  # the lock only guards the build: drop it so the dict does not grow
        _build_locks.pop(key, None)
    return network


def live_networks() -> int:
    """How many shared networks are alive now (for tests and memory checks)."""
    return len(_networks)
