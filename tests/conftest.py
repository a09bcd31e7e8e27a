"""Shared fixtures: the dataset photos, the reference data, synthetic deepface weights, a loopback
HTTP server and the hermetic (numpy-only) plugins.  Helpers that test modules import live in
:mod:`tests.helpers`; where data comes from is explained in :mod:`tests.helpers.paths`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from facepipe.registry import PluginRegistry
from facepipe.testing import hermetic_registry
from tests.helpers.loopback import Loopback, keep_loopback_off_proxies, serve_folder
from tests.helpers.paths import (
    MAKE_SYNTHETIC,
    PARITY,
    missing_parity_reason,
    missing_photos_reason,
    parity_arrays_dir,
    photo_dir,
)
from tests.helpers.synthetic_weights import make_synthetic_weights


def pytest_configure(config: pytest.Config) -> None:
    # Tests never touch the internet: any weight the manager cannot find locally is an error.
    os.environ.setdefault("FACEPIPE_OFFLINE", "1")


@pytest.fixture(scope="session")
def dataset() -> Path:
    """The dataset photos' folder (``$FACEPIPE_DATA``); tests that need it skip without it."""
    folder = photo_dir()
    if not folder.is_dir():
        pytest.skip(missing_photos_reason())
    return folder


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Parity JSON/CSV reference data (in the repository)."""
    return PARITY


@pytest.fixture(scope="session")
def parity_arrays() -> Callable[[str], Path]:
    """``parity_arrays("Facenet") -> Path`` of ``Facenet.npz``; skips when the file is not there."""

    def locate(model: str) -> Path:
        path = parity_arrays_dir() / f"{model}.npz"
        if not path.is_file():
            pytest.skip(missing_parity_reason(path.name))
        return path

    return locate


@pytest.fixture(scope="session")
def synthetic_weights() -> Callable[..., Path]:
    """``synthetic_weights("Facenet") -> Path`` (generated once per machine, then reused)."""
    pytest.importorskip("h5py", reason="synthetic weights need h5py (facepipe[keras])")
    assert MAKE_SYNTHETIC.is_file(), f"{MAKE_SYNTHETIC} is part of the repository"
    return make_synthetic_weights


@pytest.fixture
def loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    """An HTTP server on 127.0.0.1 serving the (initially empty) folder ``loopback.root``."""
    keep_loopback_off_proxies(monkeypatch)
    root = tmp_path / "served"
    root.mkdir()
    with serve_folder(root) as served:
        yield served


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A throwaway PostgreSQL + pgvector server on 127.0.0.1 (tests/helpers/postgres.py), one per
    session; skips naming what to install when psycopg, PostgreSQL or pgvector is missing."""
    from tests.helpers import postgres

    pytest.importorskip("psycopg", reason="needs facepipe[pgvector] (psycopg is not installed)")
    why = postgres.missing()
    if why:
        pytest.skip(why)
    running = postgres.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def milvus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``milvus://127.0.0.1:PORT`` of a Milvus Lite server (tests/helpers/milvus.py), one per session;
    skips naming the extra when pymilvus or milvus-lite is missing."""
    from tests.helpers.extras import need
    from tests.helpers.milvus import milvus_lite_server

    need("pymilvus", "milvus")
    need("milvus_lite", "test")
    with milvus_lite_server(tmp_path_factory.mktemp("milvus")) as url:
        yield url


@pytest.fixture
def hermetic() -> PluginRegistry:
    """A registry holding only the numpy-only test plugins (``blob``, ``grid``) and the metrics."""
    return hermetic_registry()


# Test modules that exercise Keras models: `-m keras` re-runs them on another Keras backend.
# (RetinaFace also runs on torch — see its tests — but Keras' torch backend takes ~20 s per image
# for it on 2 cores, so CI's second-backend pass covers the recognizers and analyzers only.)
KERAS_MODULES = {"test_recognizers_keras_a.py", "test_recognizers_keras_b.py", "test_analyzers_parity.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in KERAS_MODULES:
            item.add_marker(pytest.mark.keras)
