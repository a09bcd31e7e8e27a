"""Detector speed and face counts on the shared photos: facepipe, and deepface side by side.

For every detector, each photo is decoded once (``cv2.imread``, as deepface reads paths) and
passed to the detector on its own; the table shows the median milliseconds per photo, the total
number of faces found and the time to build the detector.  One untimed warm-up call precedes the
timed ones.

facepipe's detectors run on the original image.  The deepface side calls
``DeepFace.extract_faces(img, detector_backend=..., align=False, enforce_detection=False)``, so its
detector also sees the original image (with ``align=True`` deepface pads the photo by 50 % first);
its time includes the crop and colour conversion that ``extract_faces`` adds (small).  With
``--deepface-align`` the deepface side uses ``align=True`` instead.

Usage::

    python benchmarks/detectors.py                         # all runnable detectors, all photos
    python benchmarks/detectors.py --photos 10 --detectors opencv,mtcnn
    python benchmarks/detectors.py --json out.json         # also write the figures

deepface is optional.  If it is importable in this interpreter it runs in-process; otherwise
install it in a separate virtual environment (it pins its own TensorFlow / Keras stack)::

    python3.11 -m venv /tmp/deepface-venv
    /tmp/deepface-venv/bin/pip install deepface==0.0.103 tensorflow==2.21.0 tf-keras==2.21.0 \\
        mtcnn dlib-bin "opencv-python<5"
    # deepface's opencv backend needs the Haar cascades (opencv-python<5 ships them);
    # its centerface backend downloads centerface.onnx into ~/.deepface/weights on first use,
    # its dlib backend downloads shape_predictor_5_face_landmarks.dat.bz2.

and pass that interpreter::

    python benchmarks/detectors.py --deepface-python /tmp/deepface-venv/bin/python

This script then re-runs itself in that interpreter (``--deepface-worker``, which imports only
deepface, numpy and cv2 — not facepipe) and reads its JSON result from stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DETECTORS = ("opencv", "dlib", "mtcnn", "centerface")
HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from _bench_common import DATASET as DEFAULT_DATASET  # noqa: E402


def photo_paths(dataset: Path, count: int | None) -> list[Path]:
    paths = sorted(p for p in dataset.glob("*.jpg"))
    return paths[:count] if count else paths


def load_images(paths: list[Path]) -> list:
    import cv2

    images = []
    for p in paths:
        img = cv2.imread(str(p))
        if img is None:
            raise SystemExit(f"cannot decode {p}")
        images.append(img)
    return images


def _time_detector(call, images) -> dict:
    """Median ms per photo and faces found; ``call(img) -> number of faces``."""
    call(images[0])  # warm-up: lazy graph building, first-size allocations
    times, faces = [], 0
    for img in images:
        start = time.perf_counter()
        faces += call(img)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "faces": faces, "photos": len(images)}


def bench_facepipe(detectors: list[str], images) -> dict[str, dict]:
    from facepipe.registry import PluginRegistry

    registry = PluginRegistry()
    results: dict[str, dict] = {}
    for name in detectors:
        try:
            spec = registry.get("detector", name)
        except ValueError as exc:
            results[name] = {"error": str(exc)}
            continue
        missing = registry.missing_modules(spec)
        if missing:
            results[name] = {"error": f"missing {', '.join(missing)} ({spec.install_hint})"}
            continue
        start = time.perf_counter()
        det = registry.create("detector", name)
        init_s = time.perf_counter() - start
        row = _time_detector(lambda img: len(det.detect([img])[0]), images)
        row["init_s"] = init_s
        results[name] = row
    return results


def bench_deepface_inprocess(detectors: list[str], images, align: bool) -> dict[str, dict]:
    from deepface import DeepFace  # noqa: F401 - optional

    results: dict[str, dict] = {}
    for name in detectors:
        def call(img, _name=name) -> int:
            found = DeepFace.extract_faces(img, detector_backend=_name, align=align, enforce_detection=False)
            # With enforce_detection=False "no face" comes back as one whole-image pseudo-face, score 0.
            return sum(1 for f in found if f.get("confidence", 0) > 0)

        try:
            start = time.perf_counter()
            DeepFace.build_model(name, task="face_detector")
            init_s = time.perf_counter() - start
            row = _time_detector(call, images)
            row["init_s"] = init_s
        except Exception as exc:  # a backend that cannot run there is reported, not fatal
            row = {"error": f"{type(exc).__name__}: {exc}"}
        results[name] = row
    return results


def bench_deepface(args, detectors: list[str], paths: list[Path], images) -> dict[str, dict] | None:
    if args.deepface_python:
        cmd = [args.deepface_python, str(HERE), "--deepface-worker", "--dataset", str(args.dataset),
               "--detectors", ",".join(detectors)]
        if args.photos:
            cmd += ["--photos", str(args.photos)]
        if args.deepface_align:
            cmd.append("--deepface-align")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"deepface worker failed (exit {done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])
    try:
        import deepface  # noqa: F401
    except ImportError:
        return None
    return bench_deepface_inprocess(detectors, images, args.deepface_align)


def _cell(row: dict | None) -> list[str]:
    if row is None:
        return ["-", "-", "-"]
    if "error" in row:
        return [row["error"][:40], "", ""]
    return [f"{row['median_ms']:.1f}", str(row["faces"]), f"{row['init_s']:.2f}"]


def print_table(detectors: list[str], ours: dict, theirs: dict | None, photos: int) -> None:
    header = ["detector", "facepipe ms", "faces", "init s"]
    if theirs is not None:
        header += ["deepface ms", "faces", "init s"]
    rows = [header]
    for name in detectors:
        row = [name, *_cell(ours.get(name))]
        if theirs is not None:
            row += _cell(theirs.get(name))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print(f"median milliseconds per photo over {photos} photos; faces = total found")
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if theirs is None:
        print("(deepface not importable here: see --deepface-python in this script's docstring)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=None, help="use the first N photos (default: all)")
    parser.add_argument("--detectors", default=",".join(DEFAULT_DETECTORS),
                        help="comma-separated detector names")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="folder of photos")
    parser.add_argument("--deepface-python", help="interpreter of a venv with deepface installed")
    parser.add_argument("--deepface-align", action="store_true",
                        help="deepface side with align=True (detector on a 50%%-padded image)")
    parser.add_argument("--no-deepface", action="store_true", help="skip the deepface side")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--deepface-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    paths = photo_paths(args.dataset, args.photos)
    if not paths:
        raise SystemExit(f"no photos in {args.dataset}")
    images = load_images(paths)

    if args.deepface_worker:  # runs inside deepface's venv; prints one JSON line
        print(json.dumps(bench_deepface_inprocess(detectors, images, args.deepface_align)))
        return 0

    ours = bench_facepipe(detectors, images)
    theirs = None if args.no_deepface else bench_deepface(args, detectors, paths, images)
    print_table(detectors, ours, theirs, len(images))
    if args.json:
        args.json.write_text(json.dumps({"photos": [p.name for p in paths], "facepipe": ours,
                                         "deepface": theirs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
