"""Acceptance: the deepface facade's memory stays flat over many option sets.

A fresh process (so that nothing else this test session loaded counts) runs
``benchmarks/facade_memory.py``: ``DeepFace.verify`` over 2 recognizers (Dlib with its real
weights, Facenet with synthetic weights in a private FACEPIPE_HOME) x 4 metrics x 2 detectors
(opencv, dlib), twice.  Every option set of the second round was already seen, and the models are
shared between pipelines, so the second round must not grow the process.  Before models were
shared, each option set loaded its own copy of the recognizer (+4 GB over 32 such calls with
Facenet and Dlib).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO, photo_dir

SCRIPT = REPO / "benchmarks" / "facade_memory.py"
#: what the second round may add to the first (allocator noise, caches warming up)
ALLOWED_GROWTH_MIB = 250


@pytest.mark.slow
def test_verify_over_32_option_sets_does_not_grow_memory(synthetic_weights) -> None:
    pytest.importorskip("keras")
    pytest.importorskip("dlib")
    if not Path("/proc/self/status").is_file():
        pytest.skip("RSS is read from /proc (Linux)")
    photos = photo_dir()
    if not (photos / "img1.jpg").is_file() or not (photos / "img2.jpg").is_file():
        pytest.skip(f"dataset photos not found in {photos} (set FACEPIPE_DATA)")
    synthetic_weights("Facenet")  # written once here, where the fixture's cache is managed
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", "--rounds", "2", "--models", "Dlib", "Facenet",
         "--detectors", "opencv", "dlib", "--synthetic", "Facenet",
         "--img1", str(photos / "img1.jpg"), "--img2", str(photos / "img2.jpg")],
        capture_output=True, text=True, timeout=1500, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    first, second = (r["rss_mib"] for r in figures["rounds"])
    print(f"\nRSS: start {figures['start_mib']} MiB, after round 1 {first} MiB, after round 2 {second} MiB "
          f"({figures['calls_per_round']} calls a round)")
    assert figures["calls_per_round"] == 16
    assert second - first <= ALLOWED_GROWTH_MIB, figures
