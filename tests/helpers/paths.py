"""Where the tests find their data.

* Reference data made by tools (weights-layout manifests, parity JSON/CSV, the synthetic-weights
  writer) lives in the repository, under ``tests/``.
* The dataset photos belong to another project and are never committed: they come from one
  folder, ``$FACEPIPE_DATA`` (default ``../shared/data/deepface-dataset`` next to the repository).
* The parity ``.npz`` files hold preprocessed crops of those photos, so they stay outside the
  repository too: ``$FACEPIPE_PARITY`` (default ``../shared/reference/parity``).
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
REFERENCE = TESTS / "reference"
MANIFESTS = REFERENCE / "weights-manifest"
PARITY = REFERENCE / "parity"
MAKE_SYNTHETIC = TESTS / "tools" / "make_synthetic_weights.py"

DATA_VARIABLE = "FACEPIPE_DATA"
PARITY_ARRAYS_VARIABLE = "FACEPIPE_PARITY"


def _folder_from_env(variable: str, default: Path) -> Path:
    # An empty value counts as unset (shells make `VAR=` easier to write than `unset VAR`).
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else default


def photo_dir() -> Path:
    """The dataset photos' folder (may not exist)."""
    return _folder_from_env(DATA_VARIABLE, REPO.parent / "shared" / "data" / "deepface-dataset")


def parity_arrays_dir() -> Path:
    """The folder of the photo-derived parity ``.npz`` files (may not exist)."""
    return _folder_from_env(PARITY_ARRAYS_VARIABLE, REPO.parent / "shared" / "reference" / "parity")


def missing_photos_reason() -> str:
    return (f"needs the dataset photos: folder {photo_dir()} not found "
            f"(set {DATA_VARIABLE} to the folder holding img1.jpg ...)")


def missing_parity_reason(name: str) -> str:
    return (f"needs the photo-derived parity file {name}: not found in {parity_arrays_dir()} "
            f"(set {PARITY_ARRAYS_VARIABLE} to the folder holding the .npz files)")


def parity_npz(model: str) -> Path:
    """The parity arrays of ``model`` (``<model>.npz``); skips the calling test when they are absent."""
    import pytest

    path = parity_arrays_dir() / f"{model}.npz"
    if not path.is_file():
        pytest.skip(missing_parity_reason(path.name))
    return path
