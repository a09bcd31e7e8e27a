"""Dlib on master.csv (300 labelled pairs): facepipe's accuracy and distances next to deepface's.

For every detector and pipeline configuration, each of the 25 photos of ``master.csv`` is run
once through the pipeline (``Pipeline.faces`` then ``Pipeline.embed_faces``: every face found,
aligned, embedded with the real Dlib ResNet).  A pair's distance is then the smallest distance
over its face pairs — exactly what ``Pipeline.verify`` computes, without detecting each photo 24
times.  ``--spot-check N`` re-runs ``Pipeline.verify`` on N pairs to show the two agree.

The decision threshold is deepface's pre-tuned Dlib value for the metric (cosine 0.07,
euclidean 0.6, euclidean_l2 0.4, angular 0.12), and the table shows, per detector, metric and
configuration, facepipe's accuracy / TPR / TNR beside deepface 0.0.103's on the same pairs
(``tests/reference/parity/dlib_summary.json``), and how far facepipe's per-pair distances are
from deepface's (``dlib_master_pairs.csv``): max and median |delta|, and how many pairs differ by
more than 0.02.

Configurations (``--pad-before-detect``): deepface, when aligning, runs the detector on the photo
with a 50 % black border on every side; facepipe by default detects on the original photo
(faster; different boxes).  ``yes`` reproduces deepface's boxes, ``no`` is facepipe's default,
``both`` (default) measures the two.  ``--detect-max-side 1024`` adds runs with detection on a
shrunken copy.

Usage::

    python benchmarks/accuracy.py                               # opencv, mtcnn, dlib, centerface; both
    python benchmarks/accuracy.py --detectors opencv --pad-before-detect yes --metrics cosine
    python benchmarks/accuracy.py --json accuracy.json --spot-check 3

Runs offline (Dlib's weights ship in ``face-recognition-models``).  Slow on big photos: mtcnn on
the padded photos takes minutes on two cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DATASET as DEFAULT_DATASET, PARITY_REFERENCE as DEFAULT_REFERENCE  # noqa: E402

HERE = Path(__file__).resolve()
DEFAULT_DETECTORS = ("opencv", "mtcnn", "dlib", "centerface")
METRICS = ("cosine", "euclidean", "euclidean_l2", "angular")
TOLERANCE = 0.02  # the bound on |facepipe - deepface| per pair


# ------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class Pair:
    index: int
    file_x: str
    file_y: str
    same: bool


def read_pairs(dataset: Path) -> list[Pair]:
    with open(dataset / "master.csv", newline="") as fh:
        return [Pair(i, r["file_x"], r["file_y"], r["Decision"].strip() == "Yes")
                for i, r in enumerate(csv.DictReader(fh))]


def photos_of(pairs: list[Pair]) -> list[str]:
    names = {p.file_x for p in pairs} | {p.file_y for p in pairs}
    return sorted(names, key=lambda n: (len(n), n))


@dataclass
class Reference:
    """deepface 0.0.103's verify() results on master.csv (real Dlib weights)."""

    distances: dict[tuple[str, str], np.ndarray]  # (detector, metric) -> (300,) in pair order
    thresholds: dict[tuple[str, str], float]
    summary: dict[str, Any]

    def has(self, detector: str, metric: str) -> bool:
        return (detector, metric) in self.distances

    def faces(self, detector: str) -> dict[str, list[dict[str, Any]]]:
        return self.summary.get("faces_found", {}).get(detector, {})

    def table_row(self, detector: str, metric: str) -> dict[str, Any] | None:
        return self.summary.get("accuracy", {}).get(f"{detector}|{metric}")


def read_reference(folder: Path, n_pairs: int) -> Reference:
    distances: dict[tuple[str, str], np.ndarray] = {}
    thresholds: dict[tuple[str, str], float] = {}
    with open(folder / "dlib_master_pairs.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["detector"], row["metric"])
            if key not in distances:
                distances[key] = np.full(n_pairs, np.nan)
            distances[key][int(row["pair"])] = float(row["distance"])
            thresholds[key] = float(row["threshold"])
    summary = json.loads((folder / "dlib_summary.json").read_text())
    return Reference(distances, thresholds, summary)


# ------------------------------------------------------------------------------------ scores
def scores(distances: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy / TPR / TNR at ``threshold`` and the best accuracy over all thresholds."""
    accepted = distances <= threshold
    out = {
        "accuracy": float(np.mean(accepted == same)),
        "tpr": float(np.mean(accepted[same])) if same.any() else float("nan"),
        "tnr": float(np.mean(~accepted[~same])) if (~same).any() else float("nan"),
    }
    best, best_t = -1.0, threshold
    for t in np.unique(distances):
        acc = float(np.mean((distances <= t) == same))
        if acc > best:
            best, best_t = acc, float(t)
    out["best_accuracy"], out["best_threshold"] = best, best_t
    return out


def pair_distances(embeddings: dict[str, np.ndarray], pairs: list[Pair], metric: str) -> np.ndarray:
    """verify()'s distance per pair: the minimum over all face pairs of the two photos."""
    from facepipe.pipeline.metrics import pairwise

    out = np.empty(len(pairs))
    for k, p in enumerate(pairs):
        a, b = embeddings[p.file_x], embeddings[p.file_y]
        out[k] = float(np.min(pairwise(a, b, metric))) if len(a) and len(b) else np.inf
    return out


# ------------------------------------------------------------------------------------ facepipe
@dataclass
class Run:
    """One detector + configuration: per-photo embeddings, boxes and timings."""

    detector: str
    pad: bool
    max_side: int | None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    areas: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    detect_s: dict[str, float] = field(default_factory=dict)
    embed_s: float = 0.0
    build_s: float = 0.0
    pipeline: Any = None

    @property
    def label(self) -> str:
        parts = ["pad" if self.pad else "nopad"]
        if self.max_side:
            parts.append(f"max{self.max_side}")
        return "+".join(parts)


def pipeline_config(detector: str, pad: bool, max_side: int | None, metric: str = "cosine") -> dict[str, Any]:
    """The pipeline the benchmark (and the acceptance test) measures: deepface's verify() settings."""
    return {"detector": detector, "recognizer": "Dlib", "metric": metric, "align": True,
            "expand_percentage": 0, "pad_before_detect": pad, "detect_max_side": max_side,
            # deepface's verify(enforce_detection=False): no face -> the whole photo is the face
            "on_no_face": "whole_image"}


def run_facepipe(detector: str, pad: bool, max_side: int | None, dataset: Path, photos: list[str],
                 log=print) -> Run:
    from facepipe import Pipeline

    run = Run(detector, pad, max_side)
    start = time.perf_counter()
    pipeline = Pipeline(pipeline_config(detector, pad, max_side))
    pipeline.detector, pipeline.recognizer  # build both now: not part of the per-photo time
    run.build_s = time.perf_counter() - start
    run.pipeline = pipeline
    faces_per_photo = []
    for name in photos:
        t = time.perf_counter()
        faces = pipeline.faces([dataset / name])[0]
        run.detect_s[name] = time.perf_counter() - t
        run.areas[name] = [f.area.to_dict() for f in faces]
        faces_per_photo.append(faces)
    t = time.perf_counter()
    flat = [f for faces in faces_per_photo for f in faces]
    vectors = pipeline.embed_faces(flat)
    run.embed_s = time.perf_counter() - t
    k = 0
    for name, faces in zip(photos, faces_per_photo):
        run.embeddings[name] = vectors[k:k + len(faces)]
        k += len(faces)
    log(f"  {detector:<10} {run.label:<12} detect+align {sum(run.detect_s.values()):6.1f} s "
        f"(median {statistics.median(run.detect_s.values()):.2f} s/photo), embed {run.embed_s:.1f} s "
        f"for {len(flat)} faces")
    return run


def box_agreement(run: Run, reference: Reference) -> tuple[int, list[str]]:
    """Photos whose faces (count, box, eyes) equal deepface's; the names of the others."""
    ref = reference.faces(run.detector)
    equal, differ = 0, []
    for name, areas in run.areas.items():
        theirs = ref.get(name)
        if theirs is None:
            continue
        keys = ("x", "y", "w", "h", "left_eye", "right_eye")

        def norm(area):
            return tuple(tuple(area[k]) if isinstance(area[k], (list, tuple)) else area[k] for k in keys)

        if [norm(a) for a in areas] == [norm(t["facial_area"]) for t in theirs]:
            equal += 1
        else:
            differ.append(name)
    return equal, differ


def compare(run: Run, reference: Reference, pairs: list[Pair], metric: str) -> dict[str, Any]:
    same = np.array([p.same for p in pairs])
    ours = pair_distances(run.embeddings, pairs, metric)
    row: dict[str, Any] = {"detector": run.detector, "config": run.label, "pad_before_detect": run.pad,
                           "detect_max_side": run.max_side, "metric": metric}
    from facepipe.registry import default_registry

    threshold = float(default_registry().get("recognizer", "Dlib").thresholds[metric])
    if reference.has(run.detector, metric):
        ref_threshold = reference.thresholds[(run.detector, metric)]
        if abs(ref_threshold - threshold) > 1e-12:
            raise SystemExit(f"facepipe's Dlib {metric} threshold {threshold} differs from deepface's {ref_threshold}")
    row["threshold"] = threshold
    row["facepipe"] = scores(ours, same, threshold)
    row["distances"] = ours.tolist()
    if reference.has(run.detector, metric):
        theirs = reference.distances[(run.detector, metric)]
        row["deepface"] = scores(theirs, same, threshold)
        published = reference.table_row(run.detector, metric)
        if published:
            row["deepface"]["published_accuracy"] = published["accuracy_at_threshold"]
        delta = np.abs(ours - theirs)
        row["delta_max"] = float(delta.max())
        row["delta_median"] = float(np.median(delta))
        row["over_tolerance"] = [int(i) for i in np.flatnonzero(delta > TOLERANCE)]
        flips = np.flatnonzero((ours <= threshold) != (theirs <= threshold))
        row["decision_flips"] = [
            {"pair": int(i), "file_x": pairs[i].file_x, "file_y": pairs[i].file_y, "same": bool(same[i]),
             "facepipe": float(ours[i]), "deepface": float(theirs[i]),
             "facepipe_correct": bool((ours[i] <= threshold) == same[i])}
            for i in flips
        ]
    return row


def spot_check(run: Run, pairs: list[Pair], dataset: Path, count: int) -> list[dict[str, Any]]:
    """``Pipeline.verify`` on ``count`` pairs (smallest photos first): same distance as the table."""
    if count <= 0:
        return []
    import cv2

    sizes = {}
    for name in photos_of(pairs):
        img = cv2.imread(str(dataset / name))
        sizes[name] = img.shape[0] * img.shape[1]
    chosen = sorted(pairs, key=lambda p: (sizes[p.file_x] + sizes[p.file_y], p.index))[:count]
    cosine = pair_distances(run.embeddings, chosen, "cosine")
    out = []
    for p, expected in zip(chosen, cosine):
        result = run.pipeline.verify(dataset / p.file_x, dataset / p.file_y)
        out.append({"pair": p.index, "file_x": p.file_x, "file_y": p.file_y, "verify": result.distance,
                    "table": float(expected), "abs_diff": abs(result.distance - float(expected))})
    return out


# ------------------------------------------------------------------------------------ output
def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:5.1f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ["detector", "config", "metric", "thr", "fp acc", "TPR", "TNR", "df acc", "TPR", "TNR",
              "max|d|", "med|d|", f">{TOLERANCE}", "flips"]
    lines = [header]
    for r in rows:
        fp, df = r["facepipe"], r.get("deepface")
        lines.append([
            r["detector"], r["config"], r["metric"], f"{r['threshold']:g}",
            _pct(fp["accuracy"]), _pct(fp["tpr"]), _pct(fp["tnr"]),
            _pct(df["accuracy"]) if df else "-", _pct(df["tpr"]) if df else "-", _pct(df["tnr"]) if df else "-",
            f"{r['delta_max']:.4f}" if "delta_max" in r else "-",
            f"{r['delta_median']:.5f}" if "delta_median" in r else "-",
            str(len(r["over_tolerance"])) if "over_tolerance" in r else "-",
            str(len(r["decision_flips"])) if "decision_flips" in r else "-",
        ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("fp = facepipe, df = deepface 0.0.103 (same pairs, same threshold); accuracy/TPR/TNR in %;"
          f" |d| = |facepipe - deepface| per pair; >{TOLERANCE} = pairs beyond the bound; flips = pairs"
          " decided differently")


def _load_average() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def runnable(detector: str) -> str | None:
    """None when the detector plugin can run here, else why not."""
    from facepipe.registry import default_registry

    registry = default_registry()
    try:
        spec = registry.get("detector", detector)
    except ValueError as exc:
        return str(exc)
    missing = registry.missing_modules(spec)
    return f"missing {', '.join(missing)}" if missing else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detectors", default=",".join(DEFAULT_DETECTORS), help="comma-separated detectors")
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated metrics")
    parser.add_argument("--pad-before-detect", choices=("yes", "no", "both"), default="both",
                        help="detect on deepface's 50%%-padded photo (yes), on the original (no), or both")
    parser.add_argument("--detect-max-side", type=int, action="append", default=[],
                        help="also run with detection on a copy shrunk to this longer side (repeatable)")
    parser.add_argument("--spot-check", type=int, default=2,
                        help="pairs per run re-checked with Pipeline.verify (smallest photos first)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder with master.csv and photos")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="deepface's parity folder")
    parser.add_argument("--json", type=Path, help="also write all figures (and per-pair distances) here")
    args = parser.parse_args(argv)
    os.environ.setdefault("FACEPIPE_OFFLINE", "1")

    pairs = read_pairs(args.dataset)
    photos = photos_of(pairs)
    reference = read_reference(args.reference, len(pairs))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    pads = {"yes": [True], "no": [False], "both": [True, False]}[args.pad_before_detect]
    sides: list[int | None] = [None, *args.detect_max_side]
    print(f"master.csv: {len(pairs)} pairs ({sum(p.same for p in pairs)} same person), {len(photos)} photos")
    print(f"load: {_load_average()}")

    rows: list[dict[str, Any]] = []
    runs_info: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for detector in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        why = runnable(detector)
        if why:
            skipped[detector] = why
            print(f"  {detector}: skipped ({why})")
            continue
        for pad in pads:
            for side in sides:
                run = run_facepipe(detector, pad, side, args.dataset, photos)
                equal, differ = box_agreement(run, reference)
                checks = spot_check(run, pairs, args.dataset, args.spot_check)
                for c in checks:
                    print(f"    verify() pair {c['pair']} ({c['file_x']}, {c['file_y']}): {c['verify']:.6f} "
                          f"vs table {c['table']:.6f} (|diff| {c['abs_diff']:.1e})")
                print(f"    faces equal to deepface's (count, box, eyes) on {equal}/{len(run.areas)} photos"
                      + (f"; differ: {', '.join(differ)}" if differ else ""))
                runs_info.append({"detector": detector, "config": run.label, "build_s": run.build_s,
                                  "detect_s_total": sum(run.detect_s.values()),
                                  "detect_s_median": statistics.median(run.detect_s.values()),
                                  "embed_s": run.embed_s, "faces": {k: len(v) for k, v in run.areas.items()},
                                  "photos_equal_to_deepface": equal, "photos_differing": differ,
                                  "spot_checks": checks, "areas": run.areas})
                for metric in metrics:
                    rows.append(compare(run, reference, pairs, metric))
                run.pipeline.close()

    print()
    print_table(rows)
    print("cosine pairs decided differently from deepface:")
    for r in rows:
        flips = r.get("decision_flips", [])
        if r["metric"] != "cosine" or not flips:
            continue
        ours = sum(f["facepipe_correct"] for f in flips)
        print(f"  {r['detector']}/{r['config']}: {len(flips)} pairs, facepipe right on {ours}, "
              f"deepface on {len(flips) - ours}")
        if len(flips) <= 6:
            for f in flips:
                print(f"    pair {f['pair']} {f['file_x']}-{f['file_y']} ({'same' if f['same'] else 'different'}): "
                      f"facepipe {f['facepipe']:.4f} vs deepface {f['deepface']:.4f}")
    print(f"load after: {_load_average()}")
    if args.json:
        args.json.write_text(json.dumps({"pairs": len(pairs), "tolerance": TOLERANCE, "skipped": skipped,
                                         "runs": runs_info, "rows": rows, "load": _load_average()}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
