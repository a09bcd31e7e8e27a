"""Detect-then-align per face (facepipe) vs detect on a 50 %-padded image (deepface).

deepface pads every photo by half its size on each side before detecting when ``align=True`` (4x
the pixels), so rotation never runs out of image. facepipe detects on the original photo and
rotates only a small context patch per face. This script measures, per detector, the median time
of ``Pipeline.faces`` per photo both ways, and how close the boxes are to deepface's own
(``tests/reference/parity/end_to_end.json``, ``extract_faces`` with align=True):

    python benchmarks/alignment.py [--detectors opencv mtcnn] [--photos 20]

Columns: median s per photo; share of faces whose box equals deepface's exactly; median and
worst IoU with deepface's box (matched greedily); face-count agreement with deepface.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import DATASET, PARITY_REFERENCE  # noqa: E402

REFERENCE = PARITY_REFERENCE / "end_to_end.json"


def iou(a: dict, b: dict) -> float:
    ax1, ay1, bx1, by1 = a["x"], a["y"], b["x"], b["y"]
    ax2, ay2, bx2, by2 = ax1 + a["w"], ay1 + a["h"], bx1 + b["w"], by1 + b["h"]
    iw, ih = max(0, min(ax2, bx2) - max(ax1, bx1)), max(0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union else 0.0


def same_box(ours: dict, theirs: dict) -> bool:
    # deepface reports w = min(width - x - 1, w) (an off-by-one clamp); allow that pixel.
    return (ours["x"], ours["y"]) == (theirs["x"], theirs["y"]) and abs(ours["w"] - theirs["w"]) <= 1 \
        and abs(ours["h"] - theirs["h"]) <= 1


def run(detector: str, photos: list[Path], reference: dict, pad: bool) -> dict[str, float]:
    from facepipe import Pipeline

    pipeline = Pipeline.from_config({"detector": detector, "recognizer": "Dlib", "align": True,
                                     "pad_before_detect": pad, "on_no_face": "skip"})
    pipeline.faces([photos[0]])  # warm-up: build the detector
    times, ious, exact, counts_equal, total = [], [], 0, 0, 0
    for photo in photos:
        start = time.perf_counter()
        (faces,) = pipeline.faces([photo])
        times.append(time.perf_counter() - start)
        theirs = [f["facial_area"] for f in reference.get(f"{detector}|align=True|{photo.name}", [])]
        counts_equal += len(faces) == len(theirs)
        remaining = list(theirs)
        for face in faces:
            ours = face.area.to_dict()
            if not remaining:
                break
            best = max(remaining, key=lambda t: iou(ours, t))
            remaining.remove(best)
            ious.append(iou(ours, best))
            exact += same_box(ours, best)
            total += 1
    return {"median_s": statistics.median(times), "exact": exact / max(total, 1),
            "iou_median": statistics.median(ious) if ious else float("nan"),
            "iou_min": min(ious) if ious else float("nan"), "counts_equal": counts_equal / len(photos)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", nargs="+", default=["opencv", "mtcnn"])
    parser.add_argument("--photos", type=int, default=20, help="how many dataset photos (sorted by name)")
    args = parser.parse_args()
    reference = json.loads(REFERENCE.read_text())["extract_faces"]
    photos = sorted(p for p in DATASET.glob("*.jpg"))[: args.photos]
    print(f"{len(photos)} photos from {DATASET}")
    print(f"{'detector':<10} {'mode':<22} {'median s/photo':>14} {'boxes = deepface':>16} "
          f"{'IoU median':>10} {'IoU min':>8} {'same count':>10}")
    for detector in args.detectors:
        for pad, label in ((True, "padded (deepface way)"), (False, "original (facepipe)")):
            r = run(detector, photos, reference, pad)
            print(f"{detector:<10} {label:<22} {r['median_s']:>14.3f} {r['exact']:>15.0%} "
                  f"{r['iou_median']:>10.3f} {r['iou_min']:>8.3f} {r['counts_equal']:>9.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
