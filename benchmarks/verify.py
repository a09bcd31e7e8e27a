"""Warm ``verify`` of two real photos: facepipe's wall time, a per-stage breakdown, deepface beside it.

For each configuration (detector x recognizer x ``detect_max_side``) the pipeline is built and
warmed up with one untimed ``verify``; then ``--repeat`` calls of ``Pipeline.verify(img1, img2)``
on the two photo paths are timed (decode, detect, align, embed, compare: everything verify does).
The table gives the median and the minimum.

The breakdown times the same work stage by stage with ``time.perf_counter``: decode (both
photos), detect (the detector as the pipeline runs it, incl. any shrinking/padding), align+crop
(``Pipeline.faces`` on the decoded photos minus its detection), embed (``Pipeline.embed_faces``
once per photo, as verify does) and compare (the metric on the two sets of embeddings); medians
over ``--repeat`` rounds.

Weights: Dlib's real weights ship on PyPI (face-recognition-models).  Facenet's real weights cannot
be downloaded here, so the script writes synthetic ones, once, with
``tests/tools/make_synthetic_weights.py --seed 1`` into ``<home>/weights`` (``--home``, default
``.cache/bench/verify-home`` in the repository) and points ``FACEPIPE_HOME`` there; the speed of a
network does not depend on its weight values.

deepface side by side: when ``deepface`` is importable here, or ``--deepface-python`` names an
interpreter that has deepface 0.0.103, the script re-runs itself there (``--deepface-worker``: only
stdlib + deepface are imported) and times ``DeepFace.verify(img1, img2, model_name, detector_backend,
align=True)`` the same way (one warm-up, then ``--repeat`` calls), with a ``DEEPFACE_HOME`` under
``<home>`` that holds the same synthetic Facenet file and dlib's model files.  Otherwise the
figures quoted in the issue are printed, marked as not measured here.

Usage::

    python benchmarks/verify.py                                  # opencv x (Facenet, Dlib) x (None, 800, 640)
    python benchmarks/verify.py --recognizers Facenet --max-sides none,800 --repeat 20
    python benchmarks/verify.py --deepface-python /path/to/deepface-venv/bin/python --json verify.json
    python benchmarks/verify.py --engine onnx --max-sides 640   # Facenet through ONNX Runtime

The machine may be shared: the load average (``uptime``) is printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from _bench_common import DATASET, MAKE_SYNTHETIC, MANIFESTS, REPO  # noqa: E402

DEFAULT_HOME = REPO / ".cache" / "bench" / "verify-home"

#: Recognizers whose real weights are not available offline: synthetic files (manifest name).
SYNTHETIC = {"Facenet": "Facenet", "Facenet512": "Facenet512", "OpenFace": "OpenFace", "ArcFace": "ArcFace",
             "DeepID": "DeepID", "GhostFaceNet": "GhostFaceNet", "VGG-Face": "VGG-Face", "DeepFace": "DeepFace"}
#: Dlib's model files, shipped in face-recognition-models (deepface wants them in its weights folder).
DLIB_FILES = ("dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat")
#: What the issue reports for deepface 0.0.103 (warm verify, Facenet + opencv, img1 vs img2).
ISSUE_FIGURES = {"tensorflow": 1.98, "onnx": 1.55}
GOAL_S = 0.4


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ------------------------------------------------------------------------------------ weights
def ensure_synthetic(model: str, home: Path) -> Path:
    """``<home>/weights/<deepface file name>`` with synthetic seed-1 weights (written once)."""
    manifest = MANIFESTS / f"{model}.json"
    name = json.loads(manifest.read_text())["weights_file"]
    target = home / "weights" / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing synthetic {model} weights to {target} (once) ...", flush=True)
    subprocess.run([sys.executable, str(MAKE_SYNTHETIC), str(manifest), "--seed", "1",
                    "--out-dir", str(target.parent)], check=True, stdout=subprocess.DEVNULL)
    return target


def deepface_home(home: Path, recognizers: list[str]) -> Path:
    """A DEEPFACE_HOME whose ``.deepface/weights`` links the same weight files deepface asks for."""
    import importlib.util

    weights = home / "deepface-home" / ".deepface" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    links: list[Path] = []
    for rec in recognizers:
        if rec in SYNTHETIC:
            links.append(ensure_synthetic(SYNTHETIC[rec], home))
    spec = importlib.util.find_spec("face_recognition_models")  # located, not imported (pkg_resources)
    if spec and spec.origin:
        models = Path(spec.origin).parent / "models"
        links += [models / n for n in DLIB_FILES if (models / n).is_file()]
    for src in links:
        dst = weights / src.name
        if not dst.exists():
            try:
                dst.symlink_to(src)
            except OSError:
                shutil.copyfile(src, dst)
    return weights.parents[1]


# ------------------------------------------------------------------------------------ facepipe
def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def bench_facepipe(detector: str, recognizer: str, max_side: int | None, img1: Path, img2: Path,
                   repeat: int, pad: bool, engine: str = "keras") -> dict[str, Any]:
    from facepipe import Pipeline
    from facepipe.pipeline.image import load_image

    from facepipe.registry import default_registry

    # only the Keras models have an ``engine`` option
    has_engine = "engine" in default_registry().get("recognizer", recognizer).config.model_fields
    model: Any = {"name": recognizer, "engine": engine} if has_engine else recognizer
    config = {"detector": detector, "recognizer": model, "metric": "cosine", "align": True,
              "detect_max_side": max_side, "pad_before_detect": pad}
    t = time.perf_counter()
    pipeline = Pipeline(config)
    pipeline.detector, pipeline.recognizer  # build the plugins (not part of a warm verify)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    first = pipeline.verify(img1, img2)  # warm-up: graph tracing, first-size allocations
    first_s = time.perf_counter() - t

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = pipeline.verify(img1, img2)
        times.append(time.perf_counter() - t)

    stages: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "align+crop", "embed", "compare")}
    faces_found = (0, 0)
    for _ in range(repeat):
        t = time.perf_counter()
        images = [load_image(img1).image, load_image(img2).image]
        stages["decode"].append(time.perf_counter() - t)
        t = time.perf_counter()
        # The detection step exactly as Pipeline.faces runs it (shrink, optional padding, batches).
        pipeline._detect(images, pad=pad)
        detect = time.perf_counter() - t
        stages["detect"].append(detect)
        t = time.perf_counter()
        faces = pipeline.faces(images)
        stages["align+crop"].append(max(time.perf_counter() - t - detect, 0.0))
        t = time.perf_counter()
        vectors = [pipeline.embed_faces(f) for f in faces]  # verify embeds each side on its own
        stages["embed"].append(time.perf_counter() - t)
        t = time.perf_counter()
        pipeline.metric.pairwise(vectors[0], vectors[1]).min()
        stages["compare"].append(time.perf_counter() - t)
        faces_found = (len(faces[0]), len(faces[1]))
    pipeline.close()
    return {
        "engine": "facepipe", "detector": detector, "recognizer": recognizer, "detect_max_side": max_side,
        "pad_before_detect": pad, "build_s": build_s, "first_s": first_s,
        "median_s": _median(times), "min_s": min(times), "n": repeat,
        "distance": result.distance, "verified": result.verified, "warmup_distance": first.distance,
        "facial_areas": result.facial_areas, "faces": faces_found,
        "breakdown_s": {k: _median(v) for k, v in stages.items()},
    }


# ------------------------------------------------------------------------------------ deepface
def deepface_worker(configs: list[dict[str, Any]], img1: str, img2: str, repeat: int) -> list[dict[str, Any]]:
    """Runs inside deepface's interpreter: only stdlib + deepface."""
    from deepface import DeepFace

    out = []
    for cfg in configs:
        kwargs = dict(model_name=cfg["recognizer"], detector_backend=cfg["detector"], distance_metric="cosine",
                      align=True, enforce_detection=True, silent=True)
        try:
            t = time.perf_counter()
            DeepFace.build_model(cfg["recognizer"])
            DeepFace.build_model(cfg["detector"], task="face_detector")
            build_s = time.perf_counter() - t
            t = time.perf_counter()
            DeepFace.verify(img1, img2, **kwargs)
            first_s = time.perf_counter() - t
            times, result = [], None
            for _ in range(repeat):
                t = time.perf_counter()
                result = DeepFace.verify(img1, img2, **kwargs)
                times.append(time.perf_counter() - t)
            out.append({"engine": "deepface", **cfg, "build_s": build_s, "first_s": first_s,
                        "median_s": statistics.median(times), "min_s": min(times), "n": repeat,
                        "distance": result["distance"], "verified": bool(result["verified"]),
                        "facial_areas": result["facial_areas"]})
        except Exception as exc:  # one backend that cannot run there is reported, not fatal
            out.append({"engine": "deepface", **cfg, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return out


def bench_deepface(args: argparse.Namespace, configs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    python = args.deepface_python
    if python is None:
        import importlib.util

        if importlib.util.find_spec("deepface") is None:
            return None
        python = sys.executable
    home = deepface_home(args.home, sorted({c["recognizer"] for c in configs}))
    env = dict(os.environ, DEEPFACE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3",
               DEEPFACE_BACKEND_ENGINE=args.deepface_engine)
    cmd = [python, str(HERE), "--deepface-worker", json.dumps(configs), "--img1", str(args.img1),
           "--img2", str(args.img2), "--repeat", str(args.repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"deepface worker failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ output
def _side(value: Any) -> str:
    return "none" if value is None else str(value)


def print_tables(ours: list[dict[str, Any]], theirs: list[dict[str, Any]] | None, engine: str,
                 skipped: bool = False) -> None:
    header = ["detector", "recognizer", "max_side", "median s", "min s", "first s", "distance", "faces"]
    if theirs is not None:
        header += ["deepface median s", "min s", "distance", "speed-up"]
    rows = [header]
    for r in ours:
        row = [r["detector"], r["recognizer"], _side(r["detect_max_side"]), f"{r['median_s']:.3f}",
               f"{r['min_s']:.3f}", f"{r['first_s']:.2f}", f"{r['distance']:.6f}", f"{r['faces'][0]}+{r['faces'][1]}"]
        if theirs is not None:
            match = next((d for d in theirs
                          if d["detector"] == r["detector"] and d["recognizer"] == r["recognizer"]), None)
            if match is None or "error" in match:
                row += [(match or {}).get("error", "-")[:30], "", "", ""]
            else:
                row += [f"{match['median_s']:.3f}", f"{match['min_s']:.3f}", f"{match['distance']:.6f}",
                        f"{match['median_s'] / r['median_s']:.1f}x"]
        rows.append(row)
    widths = [max(len(x[i]) for x in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"goal: warm verify (opencv + Facenet) <= {GOAL_S} s; deepface always detects on its 50%-padded photo "
          "(align=True) at full size")

    print("\nbreakdown (median s per verify-equivalent round):")
    stages = list(ours[0]["breakdown_s"]) if ours else []
    header = ["detector", "recognizer", "max_side", *stages, "sum"]
    rows = [header]
    for r in ours:
        b = r["breakdown_s"]
        rows.append([r["detector"], r["recognizer"], _side(r["detect_max_side"]),
                     *[f"{b[s]:.4f}" for s in stages], f"{sum(b.values()):.4f}"])
    widths = [max(len(x[i]) for x in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if theirs is None:
        why = "skipped (--no-deepface)" if skipped else "not importable here and no --deepface-python was given"
        print(f"\ndeepface {why}: NOT measured here. "
              "The issue reports a warm deepface 0.0.103 verify (Facenet + opencv) of "
              f"{ISSUE_FIGURES['tensorflow']} s on TensorFlow and {ISSUE_FIGURES['onnx']} s on ONNX "
              f"(its machine; engine asked for here: {engine}).")


def parse_sides(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            out.append(None if part in ("none", "0", "off") else int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--img1", type=Path, default=DATASET / "img1.jpg")
    parser.add_argument("--img2", type=Path, default=DATASET / "img2.jpg")
    parser.add_argument("--detectors", default="opencv", help="comma-separated detectors (default opencv)")
    parser.add_argument("--recognizers", default="Facenet,Dlib", help="comma-separated recognizers")
    parser.add_argument("--max-sides", default="none,800,640",
                        help="detect_max_side values to compare, 'none' = full size (default none,800,640)")
    parser.add_argument("--pad-before-detect", action="store_true",
                        help="facepipe detects on deepface's 50%%-padded photo (parity, slower)")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls after the warm-up")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="FACEPIPE_HOME for this run (synthetic weights are written to <home>/weights)")
    parser.add_argument("--deepface-python", help="interpreter of a venv with deepface 0.0.103")
    parser.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                        help="facepipe's engine for Keras recognizers (onnx: exported once, cached)")
    parser.add_argument("--deepface-engine", default="tensorflow", help="DEEPFACE_BACKEND_ENGINE for deepface")
    parser.add_argument("--no-deepface", action="store_true", help="skip the deepface side")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--deepface-worker", metavar="CONFIGS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.deepface_worker:  # inside deepface's interpreter: one JSON line on stdout
        configs = json.loads(args.deepface_worker)
        print(json.dumps(deepface_worker(configs, str(args.img1), str(args.img2), args.repeat)))
        return 0

    args.home = args.home.resolve()
    os.environ["FACEPIPE_HOME"] = str(args.home)  # before facepipe creates its weights manager
    os.environ.setdefault("FACEPIPE_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    recognizers = [r.strip() for r in args.recognizers.split(",") if r.strip()]
    sides = parse_sides(args.max_sides)
    for rec in recognizers:
        if rec in SYNTHETIC:
            ensure_synthetic(SYNTHETIC[rec], args.home)

    print(f"verify {args.img1.name} vs {args.img2.name}: warm-up + {args.repeat} timed calls per configuration")
    load_before = uptime()
    print(f"load before: {load_before}")
    ours = []
    for det in detectors:
        for rec in recognizers:
            for side in sides:
                row = bench_facepipe(det, rec, side, args.img1, args.img2, args.repeat, args.pad_before_detect,
                                     args.engine)
                print(f"  facepipe {det} + {rec} ({args.engine} engine), detect_max_side={_side(side)}: "
                      f"median {row['median_s']:.3f} s, min {row['min_s']:.3f} s, "
                      f"distance {row['distance']:.6f}", flush=True)
                ours.append(row)
    theirs = None
    if not args.no_deepface:
        configs = [{"detector": d, "recognizer": r} for d in detectors for r in recognizers]
        theirs = bench_deepface(args, configs)
        for row in theirs or []:
            if "error" in row:
                print(f"  deepface {row['detector']} + {row['recognizer']}: {row['error']}")
            else:
                print(f"  deepface {row['detector']} + {row['recognizer']}: median {row['median_s']:.3f} s, "
                      f"min {row['min_s']:.3f} s, distance {row['distance']:.6f}", flush=True)
    load_after = uptime()
    print()
    print_tables(ours, theirs, args.deepface_engine, skipped=args.no_deepface)
    print(f"\nload before: {load_before}\nload after:  {load_after}  (2 shared cores: figures are upper bounds)")
    if args.json:
        args.json.write_text(json.dumps({"facepipe": ours, "deepface": theirs, "issue_figures": ISSUE_FIGURES,
                                         "load_before": load_before, "load_after": load_after}, indent=1,
                                        default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
