"""Weight files: cache, package-shipped files, deepface's cache, downloads.

(Interface stub: the full manager — downloads with resume/retries/mirrors, offline mode —
is being written; the public API below is fixed.)
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from facepipe.errors import OfflineError, WeightsError
from facepipe.specs import PackageFile, WeightFile


def facepipe_home() -> Path:
    return Path(os.environ.get("FACEPIPE_HOME") or Path.home() / ".facepipe")


def package_file_path(pf: PackageFile) -> Path | None:
    """Where an installed package ships ``pf`` (found without importing the package)."""
    try:
        spec = importlib.util.find_spec(pf.package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        candidate = Path(root) / pf.path
        if candidate.is_file():
            return candidate
    return None


class WeightsManager:
    """Finds or fetches the files plugins declare.

    Order: a package that ships the file → ``$FACEPIPE_HOME/weights/<name>`` → deepface's cache
    (``$DEEPFACE_HOME/.deepface/weights``) → download (unless offline).
    """

    def __init__(self, home: str | Path | None = None, *, offline: bool | None = None) -> None:
        self.home = Path(home) if home is not None else facepipe_home()
        self.offline = offline if offline is not None else os.environ.get("FACEPIPE_OFFLINE", "") not in ("", "0")

    @property
    def cache_dir(self) -> Path:
        return self.home / "weights"

    def path(self, wf: WeightFile) -> Path:
        """A local, verified path for ``wf``."""
        for pf in wf.package_files:
            found = package_file_path(pf)
            if found is not None:
                return found
        cached = self.cache_dir / wf.name
        if cached.is_file():
            return cached
        if self.offline:
            raise OfflineError(f"offline mode: put {wf.name} at {cached}")
        raise WeightsError(f"{wf.name} is not available locally and downloads are not implemented yet")


_default: WeightsManager | None = None
_lock = threading.Lock()


def default_manager() -> WeightsManager:
    global _default
    with _lock:
        if _default is None:
            _default = WeightsManager()
        return _default
