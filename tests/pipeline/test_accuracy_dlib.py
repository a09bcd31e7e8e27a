"""Acceptance: the real Dlib recognizer on master.csv (300 labelled pairs) matches deepface 0.0.103.

For each of the opencv, mtcnn and dlib detectors, facepipe's verify decisions on all 300 pairs
must be at least as accurate as deepface's at deepface's default threshold (cosine 0.07), and
every pair's cosine distance must be within 0.02 of the distance deepface's ``verify()``
returned (``shared/reference/parity/dlib_master_pairs.csv``).

Configuration: deepface's ``verify(align=True)`` detects on the photo with a 50 % black border,
so the pipeline runs with ``pad_before_detect=True`` (and ``align=True``, no expansion, full-size
detection, whole photo when no face is found, as ``enforce_detection=False``).  With these the
boxes and eyes equal deepface's and distances agree to ~2e-3.  facepipe's default (detecting on
the original photo) gives other boxes: distances then differ by up to ~0.055 and opencv loses 4
pairs (see ``benchmarks/accuracy.py``), so it cannot be the parity configuration.

Each photo is embedded once per detector (module-scoped cache); a pair's distance is the minimum
over its face pairs, which is what ``Pipeline.verify`` computes (checked on one pair per detector).

Machine-dependent pairs (documented, not a tolerance): on this CPU the mtcnn package finds
img3's face 922 px tall (the float height is 922.48); on the machine that produced the reference
it came out 923 (>= 922.5).  deepface 0.0.103 itself, run here, reports h=922 and distances
0.06941 (img3-img22, pair 126) and 0.069259 (img3-img9, pair 161) against the reference's
0.072283 and 0.072148 — i.e. both different-person pairs cross the 0.07 threshold on this machine
whatever implementation runs.  For mtcnn those two pairs are left out of the accuracy comparison
(their distances still have to be within 0.005 of deepface's); every other pair counts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
need("dlib")
need("cv2")

from facepipe import Pipeline  # noqa: E402
from facepipe.pipeline.metrics import pairwise  # noqa: E402

DETECTORS = ("opencv", "mtcnn", "dlib")
TOLERANCE = 0.02
THRESHOLD = 0.07  # deepface's Dlib / cosine threshold
#: Pairs whose deepface decision depends on the CPU (see the module docstring): pair -> why.
MACHINE_DEPENDENT = {
    "mtcnn": {126: "img3-img22: mtcnn's img3 box is 922 or 923 px tall depending on the CPU",
              161: "img3-img9: mtcnn's img3 box is 922 or 923 px tall depending on the CPU"},
}
MACHINE_DEPENDENT_DELTA = 0.005


def parity_config(detector: str) -> dict:
    return {"detector": detector, "recognizer": "Dlib", "metric": "cosine", "align": True,
            "pad_before_detect": True, "expand_percentage": 0, "detect_max_side": None,
            "on_no_face": "whole_image"}


class Reference:
    def __init__(self, dataset: Path, parity: Path) -> None:
        with open(dataset / "master.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.pairs = [(r["file_x"], r["file_y"]) for r in rows]
        self.same = np.array([r["Decision"].strip() == "Yes" for r in rows])
        self.photos = sorted({n for p in self.pairs for n in p}, key=lambda n: (len(n), n))
        self.cosine: dict[str, np.ndarray] = {}
        self.thresholds: dict[str, float] = {}
        with open(parity / "dlib_master_pairs.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                if r["metric"] != "cosine":
                    continue
                arr = self.cosine.setdefault(r["detector"], np.full(len(rows), np.nan))
                arr[int(r["pair"])] = float(r["distance"])
                self.thresholds[r["detector"]] = float(r["threshold"])
        self.faces = json.loads((parity / "dlib_summary.json").read_text())["faces_found"]


class Embedded:
    """One detector's pipeline run over the 25 photos: embeddings and facial areas per photo."""

    def __init__(self, detector: str, ref: Reference, dataset: Path) -> None:
        self.pipeline = Pipeline(parity_config(detector))
        per_photo = self.pipeline.faces([dataset / n for n in ref.photos])
        vectors = self.pipeline.embed_faces([f for faces in per_photo for f in faces])
        self.embeddings: dict[str, np.ndarray] = {}
        self.areas: dict[str, list[dict]] = {}
        k = 0
        for name, faces in zip(ref.photos, per_photo):
            self.embeddings[name] = vectors[k:k + len(faces)]
            self.areas[name] = [f.area.to_dict() for f in faces]
            k += len(faces)
        self.distances = np.array([float(pairwise(self.embeddings[a], self.embeddings[b], "cosine").min())
                                   for a, b in ref.pairs])


@pytest.fixture(scope="module")
def reference(dataset: Path, parity_dir: Path) -> Reference:
    for name in ("dlib_master_pairs.csv", "dlib_summary.json"):
        if not (parity_dir / name).is_file():
            pytest.skip(f"parity/{name} not available")
    return Reference(dataset, parity_dir)


@pytest.fixture(scope="module")
def embedded(reference: Reference, dataset: Path):
    """``embedded(detector)``: each photo detected and embedded once per detector per module."""
    cache: dict[str, Embedded] = {}

    def get(detector: str) -> Embedded:
        if detector == "mtcnn":
            need("mtcnn")
            need("tensorflow")
        if detector not in cache:
            cache[detector] = Embedded(detector, reference, dataset)
        return cache[detector]

    yield get
    for item in cache.values():
        item.pipeline.close()


@pytest.mark.parametrize("detector", DETECTORS)
def test_faces_are_deepfaces(detector: str, reference: Reference, embedded) -> None:
    """Same faces per photo as deepface (count, box within 1 px, eyes within 1 px)."""
    run = embedded(detector)
    for name in reference.photos:
        ours, theirs = run.areas[name], [f["facial_area"] for f in reference.faces[detector][name]]
        assert len(ours) == len(theirs), name
        for a, b in zip(ours, theirs):
            assert max(abs(a[k] - b[k]) for k in ("x", "y", "w", "h")) <= 1, (name, a, b)
            for eye in ("left_eye", "right_eye"):
                assert (a[eye] is None) == (b[eye] is None), (name, eye)
                if a[eye] is not None:
                    assert max(abs(a[eye][0] - b[eye][0]), abs(a[eye][1] - b[eye][1])) <= 1, (name, eye)


@pytest.mark.parametrize("detector", DETECTORS)
def test_cosine_distances_within_002_of_deepface(detector: str, reference: Reference, embedded) -> None:
    run = embedded(detector)
    theirs = reference.cosine[detector]
    delta = np.abs(run.distances - theirs)
    worst = int(np.argmax(delta))
    assert delta.max() <= TOLERANCE, (
        f"{detector}: {(delta > TOLERANCE).sum()} pairs beyond {TOLERANCE}; worst pair {worst} "
        f"{reference.pairs[worst]}: facepipe {run.distances[worst]:.6f} vs deepface {theirs[worst]:.6f}")
    # Regression guard: with identical boxes the typical pair agrees to ~2e-4.
    assert np.median(delta) <= 0.002, f"{detector}: median |delta| {np.median(delta):.5f}"
    for pair in MACHINE_DEPENDENT.get(detector, {}):
        assert delta[pair] <= MACHINE_DEPENDENT_DELTA, (detector, pair, delta[pair])


@pytest.mark.parametrize("detector", DETECTORS)
def test_accuracy_at_least_deepfaces(detector: str, reference: Reference, embedded) -> None:
    run = embedded(detector)
    threshold = run.pipeline.threshold()
    assert threshold == reference.thresholds[detector] == THRESHOLD
    theirs = reference.cosine[detector]
    counted = np.ones(len(reference.pairs), dtype=bool)
    counted[list(MACHINE_DEPENDENT.get(detector, {}))] = False
    ours_right = (run.distances <= threshold) == reference.same
    theirs_right = (theirs <= threshold) == reference.same
    only_theirs = [(i, reference.pairs[i], round(float(run.distances[i]), 6), float(theirs[i]))
                   for i in np.flatnonzero(theirs_right & ~ours_right & counted)]
    assert ours_right[counted].mean() >= theirs_right[counted].mean(), (
        f"{detector}: facepipe {ours_right[counted].mean():.4f} < deepface {theirs_right[counted].mean():.4f} "
        f"on {counted.sum()} pairs; deepface alone right on {only_theirs}")


@pytest.mark.parametrize("detector", DETECTORS)
def test_verify_gives_the_tabled_distance(detector: str, reference: Reference, embedded, dataset: Path) -> None:
    """Pipeline.verify on a real pair (the two smallest photos) = min over the cached embeddings."""
    run = embedded(detector)
    index = reference.pairs.index(("img12.jpg", "img25.jpg"))
    result = run.pipeline.verify(dataset / "img12.jpg", dataset / "img25.jpg")
    assert result.distance == pytest.approx(run.distances[index], abs=1e-6)
    assert result.distance == pytest.approx(reference.cosine[detector][index], abs=TOLERANCE)
    assert result.verified == (run.distances[index] <= THRESHOLD)
