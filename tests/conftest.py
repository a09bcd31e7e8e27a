"""Shared fixtures: the dataset photos, the reference data, synthetic deepface weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEPIPE_SHARED", REPO.parent / "shared"))
DATASET = SHARED / "data" / "deepface-dataset"
REFERENCE = SHARED / "reference"
PARITY = REFERENCE / "parity"
MANIFESTS = REFERENCE / "weights-manifest"
MAKE_SYNTHETIC = SHARED / "tools" / "make_synthetic_weights.py"
TEST_DATA = Path(__file__).resolve().parent / "data"
# Synthetic weight files are byte-identical for a (model, seed): keep them across runs.
SYNTHETIC_CACHE = Path(os.environ.get("FACEPIPE_TEST_CACHE", REPO / ".cache" / "synthetic"))


def pytest_configure(config: pytest.Config) -> None:
    # Tests never touch the internet: any weight the manager cannot find locally is an error.
    os.environ.setdefault("FACEPIPE_OFFLINE", "1")


@pytest.fixture(scope="session")
def dataset() -> Path:
    if not DATASET.is_dir():
        pytest.skip(f"shared dataset not found at {DATASET}")
    return DATASET


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY.is_dir():
        pytest.skip(f"parity reference data not found at {PARITY}")
    return PARITY


def make_synthetic_weights(model: str, seed: int = 1) -> Path:
    """Write (once) deepface-format synthetic weights for ``model``; returns the file path.

    The file keeps deepface's file name so that it can be dropped into a weights cache.
    """
    import json

    manifest = MANIFESTS / f"{model}.json"
    weights_file = json.loads(manifest.read_text())["weights_file"]
    out_dir = SYNTHETIC_CACHE / f"seed{seed}" / model
    out = out_dir / weights_file
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f"{out.suffix}.{os.getpid()}.part")  # unique: parallel writers do not collide
    subprocess.run(
        [sys.executable, str(MAKE_SYNTHETIC), str(manifest), "--seed", str(seed), "-o", str(tmp)],
        check=True,
    )
    tmp.replace(out)
    return out


@pytest.fixture(scope="session")
def synthetic_weights():
    """``synthetic_weights("Facenet") -> Path`` (generated once per machine, then reused)."""
    if not MAKE_SYNTHETIC.is_file():
        pytest.skip("shared/tools/make_synthetic_weights.py not available")
    return make_synthetic_weights


# Test modules that exercise Keras models: `-m keras` re-runs them on another Keras backend.
# (RetinaFace also runs on torch — see its tests — but Keras' torch backend takes ~20 s per image
# for it on 2 cores, so CI's second-backend pass covers the recognizers and analyzers only.)
KERAS_MODULES = {"test_recognizers_keras_a.py", "test_recognizers_keras_b.py", "test_analyzers_parity.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in KERAS_MODULES:
            item.add_marker(pytest.mark.keras)
