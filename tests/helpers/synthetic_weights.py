"""deepface-format synthetic weight files, written once per machine by ``tests/tools/make_synthetic_weights.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import MAKE_SYNTHETIC, MANIFESTS, REPO

# The files are byte-identical for a (model, seed): keep them across runs.
CACHE = Path(os.environ.get("FACEPIPE_TEST_CACHE", REPO / ".cache" / "synthetic"))


def manifest(model: str) -> dict:
    """The weights-layout manifest of a deepface model (``tests/reference/weights-manifest``)."""
    return json.loads((MANIFESTS / f"{model}.json").read_text())


def make_synthetic_weights(model: str, seed: int = 1) -> Path:
    """Write (once) deepface-format synthetic weights for ``model``; returns the file path.

    The file keeps deepface's file name so that it can be dropped into a weights cache.
    """
    out_dir = CACHE / f"seed{seed}" / model
    out = out_dir / manifest(model)["weights_file"]
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f"{out.suffix}.{os.getpid()}.part")  # unique: parallel writers do not collide
    subprocess.run(
        [sys.executable, str(MAKE_SYNTHETIC), str(MANIFESTS / f"{model}.json"), "--seed", str(seed), "-o", str(tmp)],
        check=True,
    )
    tmp.replace(out)
    return out
