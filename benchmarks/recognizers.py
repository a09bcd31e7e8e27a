"""Recognizer speed and memory: facepipe's recognition models, and deepface's side by side.

For each model a fresh process (so every figure is cold and the memory is that model's alone)

1. imports facepipe and the model's runtime ("import s"),
2. builds the model and loads its weights ("build+load s"),
3. makes one first call on one face ("first s": graph tracing, lazy allocations),
4. times ``embed([crop])`` on one face: median over ``--repeats`` calls after that warm-up
   ("1 face ms"; preprocessing included),
5. times ``embed(crops)`` on ``--batch`` faces after one warm-up: faces per second from the
   median call ("faces/s"),

and the parent reads the child's peak resident set size (``ru_maxrss`` from ``os.wait4``).
The deepface side does the same with ``DeepFace.build_model(name)`` and
``model.forward(batch)`` on a batch preprocessed with deepface's own ``resize_image`` /
``normalize_input`` (preprocessing included there too), in its own fresh process.

Weights: VGG-Face, Facenet, Facenet512, OpenFace, DeepFace, DeepID, ArcFace and GhostFaceNet
run on synthetic weights in deepface's ``.h5`` layout (speed does not depend on the values),
written once into ``.cache/synthetic`` with ``tests/tools/make_synthetic_weights.py`` (the
tests' recipe), then offered to facepipe as ``$FACEPIPE_HOME/weights/<file>`` and to deepface as
``$DEEPFACE_HOME/.deepface/weights/<file>`` (symbolic links under ``.cache/bench``). Dlib runs on
its real weights (face-recognition-models). SFace runs only when its ONNX file exists (pass
``--sface-model PATH`` or keep it in ``~/.facepipe/weights`` / ``~/.deepface/weights``).
Inputs are real face crops (OpenCV Haar on the shared photos), random crops otherwise.

Usage::

    python benchmarks/recognizers.py                              # every model, facepipe only
    python benchmarks/recognizers.py --models Facenet,ArcFace --repeats 30
    python benchmarks/recognizers.py --keras-backend torch        # KERAS_BACKEND for facepipe
    python benchmarks/recognizers.py --engine onnx                # facepipe's engine="onnx" option
    python benchmarks/recognizers.py --deepface-python /tmp/deepface-venv/bin/python --json out.json

deepface pins its own TensorFlow / Keras 2 stack, so it lives in a separate virtual environment.
deepface 0.0.103 with TensorFlow 2.21 needs tf-keras 2.21 (and imports werkzeug without declaring it)::

    python3.11 -m venv /tmp/deepface-venv
    /tmp/deepface-venv/bin/pip install deepface==0.0.103 tensorflow==2.21.0 tf-keras==2.21.0 werkzeug dlib-bin

To reuse facepipe's installed TensorFlow, cv2, dlib, pandas ... instead of second copies (what was
done for the figures in the report)::

    python3.11 -m venv /tmp/dfbench-venv
    echo /work/main/.venv/lib/python3.11/site-packages \
        > /tmp/dfbench-venv/lib/python3.11/site-packages/zz_facepipe_venv.pth
    /tmp/dfbench-venv/bin/pip install --no-deps deepface==0.0.103 tf-keras==2.21.0 werkzeug gdown \
        retina-face beautifulsoup4 soupsieve filelock markupsafe

The deepface side runs with ``DEEPFACE_BACKEND_ENGINE=tensorflow`` (its ``.h5`` models; the
synthetic files fit them). deepface's own ``DeepFace`` (Facebook) model refuses to build on
TensorFlow > 2.12 (no LocallyConnected2D), so that row shows deepface's error. Without deepface
the report shows the issue's reference figures instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

HERE = Path(__file__).resolve()
SYNTHETIC_MODELS = ("VGG-Face", "Facenet", "Facenet512", "OpenFace", "DeepFace", "DeepID", "ArcFace", "GhostFaceNet")
ALL_MODELS = SYNTHETIC_MODELS + ("Dlib", "SFace")
SFACE_FILE = "face_recognition_sface_2021dec.onnx"

# The issue's reference figures (deepface 0.0.103), shown when deepface is not measured here.
REFERENCE = {"Facenet": {"one_ms_tf": 262.0, "one_ms_onnx": 18.0, "batch32_fps": 57.0}}
GOAL_FACENET_ONE_MS = 15.0
GOAL_FACENET_BATCH_FPS = 120.0


# ------------------------------------------------------------------------------------ workers
def _force_build(rec: Any) -> bool:
    """Build the (lazily built) model now, so build time and first-call time are apart."""
    if getattr(rec.config, "engine", "keras") == "onnx" and hasattr(type(rec), "onnx_runner"):
        rec.onnx_runner  # cached export (or export now) + onnxruntime session
        return True
    if isinstance(getattr(type(rec), "model", None), property):  # Keras plugins
        rec.model
        return True
    if callable(getattr(rec, "_get_model", None)):  # Dlib
        rec._get_model()
        return True
    return False  # built on the first call (SFace, unknown plugins)


def facepipe_worker(args: argparse.Namespace) -> dict[str, Any]:
    import importlib

    start = time.perf_counter()
    from facepipe.registry import PluginRegistry
    from facepipe.weights import WeightsManager

    registry = PluginRegistry()
    spec = registry.get("recognizer", args.model)
    onnx = args.engine == "onnx" and "engine" in spec.config.model_fields
    # The runtime counts as import time: keras (-> its backend), or only onnxruntime when a
    # cached ONNX export is run (keras / TensorFlow are then imported only to export).
    for module in ("onnxruntime",) if onnx else spec.requires:
        importlib.import_module(module)
    import_s = time.perf_counter() - start
    backend = None
    if "keras" in spec.requires and not onnx:
        import keras

        backend = keras.backend.backend()

    crops = bc.load_crops(args.crops)
    options: dict[str, Any] = {}
    if "batch_size" in spec.config.model_fields:
        options["batch_size"] = args.batch  # one model call per timed batch
    if onnx:
        options["engine"] = "onnx"
    weights = WeightsManager(home=args.home, offline=True)
    exported = False
    if onnx:  # was there a cached export before this process?
        probe = registry.create("recognizer", args.model, options, weights=weights)
        exported = not probe.onnx_cache_path().is_file()

    def build() -> Any:
        rec = registry.create("recognizer", args.model, options, weights=weights)
        return rec, _force_build(rec)

    build_s, (rec, built) = bc.timed(build)
    first_s, out = bc.timed(lambda: rec.embed([crops[0]]))
    one = bc.measure(lambda: rec.embed([crops[0]]), args.repeats, args.budget)
    batch = crops[: args.batch]
    batch_first_s, _ = bc.timed(lambda: rec.embed(batch))
    many = bc.measure(lambda: rec.embed(batch), max(3, args.repeats // 4), args.budget, minimum=2)
    return {
        "import_s": import_s, "build_s": build_s, "build_in_first_call": not built, "first_s": first_s,
        "one_ms": one["median_s"] * 1000, "one_min_ms": one["min_s"] * 1000, "one_cpu_ms": one["cpu_s"] * 1000,
        "one_n": one["n"], "batch": len(batch), "batch_first_s": batch_first_s, "batch_s": many["median_s"],
        "batch_cpu_ms_per_face": many["cpu_s"] * 1000 / len(batch), "batch_n": many["n"],
        "batch_fps": len(batch) / many["median_s"], "dim": int(out.shape[1]), "keras_backend": backend,
        "engine": "onnx" if onnx else "keras", "exported": exported,
    }


def deepface_worker(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    import numpy as np
    from deepface import DeepFace
    from deepface.modules import preprocessing

    import_s = time.perf_counter() - start
    crops = bc.load_crops(args.crops)
    build_s, model = bc.timed(lambda: DeepFace.build_model(args.model))
    width, height = model.input_shape  # deepface's order: (width, height)

    def forward(faces: list) -> Any:
        # What DeepFace.represent does per face, then one batched forward.
        inputs = [preprocessing.normalize_input(preprocessing.resize_image(f, (height, width)), "base")
                  for f in faces]
        return model.forward(np.concatenate(inputs, axis=0))

    first_s, out = bc.timed(lambda: forward([crops[0]]))
    one = bc.measure(lambda: forward([crops[0]]), args.repeats, args.budget)
    batch = crops[: args.batch]
    batch_first_s, _ = bc.timed(lambda: forward(batch))
    many = bc.measure(lambda: forward(batch), max(3, args.repeats // 4), args.budget, minimum=2)
    return {
        "import_s": import_s, "build_s": build_s, "build_in_first_call": False, "first_s": first_s,
        "one_ms": one["median_s"] * 1000, "one_min_ms": one["min_s"] * 1000, "one_cpu_ms": one["cpu_s"] * 1000,
        "one_n": one["n"], "batch": len(batch), "batch_first_s": batch_first_s, "batch_s": many["median_s"],
        "batch_cpu_ms_per_face": many["cpu_s"] * 1000 / len(batch), "batch_n": many["n"],
        "batch_fps": len(batch) / many["median_s"], "dim": len(out), "deepface_engine": "tensorflow",
    }


# ------------------------------------------------------------------------------------ parent
def find_sface(explicit: Path | None) -> Path | None:
    candidates = [explicit] if explicit else []
    for root in (os.environ.get("FACEPIPE_HOME"), Path.home() / ".facepipe"):
        if root:
            candidates.append(Path(root) / "weights" / SFACE_FILE)
    for root in (os.environ.get("DEEPFACE_HOME"), Path.home()):
        if root:
            candidates.append(Path(root) / ".deepface" / "weights" / SFACE_FILE)
    return next((c.resolve() for c in candidates if c and c.is_file()), None)


def weight_files(model: str, args: argparse.Namespace) -> tuple[dict[str, Path] | None, str]:
    """``({file name: path}, kind)`` of the weights a model runs on, or ``(None, why not)``."""
    if model in SYNTHETIC_MODELS:
        path = bc.synthetic_weights(model, seed=args.seed)
        return {path.name: path}, "synthetic"
    if model == "Dlib":
        path = bc.dlib_resnet_weights()
        if path is None:
            return None, "skipped: face-recognition-models (real Dlib weights) not installed"
        return {path.name: path}, "real"
    if model == "SFace":
        path = find_sface(args.sface_model)
        if path is None:
            return None, f"skipped: no {SFACE_FILE} here (pass --sface-model PATH)"
        return {SFACE_FILE: path}, "real"
    return None, f"skipped: unknown model {model!r} (choose from {', '.join(ALL_MODELS)})"


def deepface_available(python: str) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('deepface') is None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def worker_cmd(python: str, side: str, model: str, args: argparse.Namespace, crops: Path, home: Path) -> list[str]:
    return [python, str(HERE), "--worker", side, "--model", model, "--crops", str(crops), "--home", str(home),
            "--repeats", str(args.repeats), "--batch", str(args.batch), "--budget", str(args.budget),
            "--engine", args.engine]


def run_all(args: argparse.Namespace, models: list[str], deepface_python: str | None) -> dict[str, Any]:
    fp_home = bc.BENCH_CACHE / "facepipe-home"
    df_home = bc.BENCH_CACHE / "deepface-home"
    results: dict[str, Any] = {"facepipe": {}, "deepface": {} if deepface_python else None, "weights": {}}
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        crops = bc.save_crops(bc.face_crops(args.batch), Path(tmp) / "crops.npz")
        for model in models:
            files, kind = weight_files(model, args)
            results["weights"][model] = kind if files is not None else "-"
            if files is None:
                results["facepipe"][model] = {"skipped": kind}
                if deepface_python:
                    results["deepface"][model] = {"skipped": kind}
                continue
            bc.link_weights(fp_home / "weights", files)
            env = {"FACEPIPE_HOME": str(fp_home), "FACEPIPE_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "KERAS_BACKEND": args.keras_backend}
            how = "engine onnx" if args.engine == "onnx" else f"keras backend {args.keras_backend}"
            print(f"[{model}] facepipe ({kind} weights, {how}) ...", file=sys.stderr, flush=True)
            cmd = worker_cmd(sys.executable, "facepipe", model, args, crops, fp_home)
            row = bc.run_worker(cmd, env=env, timeout=args.timeout)
            if row.get("exported"):  # that run exported the ONNX file: measure again with the cache
                print(f"[{model}] facepipe again, with the cached ONNX export ...", file=sys.stderr, flush=True)
                first = row
                row = bc.run_worker(cmd, env=env, timeout=args.timeout)
                row["export_run"] = first
            results["facepipe"][model] = row
            if deepface_python:
                bc.link_weights(df_home / ".deepface" / "weights", files)
                env = {"DEEPFACE_HOME": str(df_home), "DEEPFACE_BACKEND_ENGINE": "tensorflow",
                       "TF_CPP_MIN_LOG_LEVEL": "2", "FACEPIPE_OFFLINE": "1"}
                print(f"[{model}] deepface ...", file=sys.stderr, flush=True)
                results["deepface"][model] = bc.run_worker(
                    worker_cmd(deepface_python, "deepface", model, args, crops, fp_home), env=env,
                    timeout=args.timeout)
    return results


COLUMNS = 8


def _cells(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return ["not measured"] + [""] * (COLUMNS - 1)
    if "skipped" in row:
        return ["skipped"] + [""] * (COLUMNS - 1)
    if "error" in row:
        return ["ERROR"] + [""] * (COLUMNS - 1)
    build = bc.fmt(row.get("build_s"), ".2f") + ("*" if row.get("build_in_first_call") else "")
    return [bc.fmt(row.get("import_s"), ".2f"), build, bc.fmt(row.get("first_s"), ".2f"),
            bc.fmt(row.get("one_ms")), bc.fmt(row.get("one_cpu_ms")), bc.fmt(row.get("batch_fps")),
            bc.fmt(row.get("batch_cpu_ms_per_face")), bc.fmt(row.get("peak_rss_mib"), ".0f")]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _cold(row: dict[str, Any]) -> float:
    """Seconds from a bare process to the first embedding: import + build/load + first call."""
    return row["import_s"] + row["build_s"] + row["first_s"]


def report(args: argparse.Namespace, models: list[str], results: dict[str, Any], load: dict[str, Any]) -> None:
    b = args.batch
    cols = ["import s", "build+load s", "first s", "1 face ms", "(cpu ms)", f"b{b} faces/s", "(cpu ms/face)",
            "peak MiB"]
    print(f"\nRecognizers: cold start, 1-face latency (median of <= {args.repeats} after warm-up, "
          f"preprocessing included), batch {b} throughput, peak RSS per process")
    print(f"machine: {load['cpus']} CPUs; {load['uptime']}")
    engine = ("engine onnx: onnxruntime on the cached ONNX export (the export run is in the JSON)"
              if args.engine == "onnx" else f"keras backend {args.keras_backend}")
    print(f"\nfacepipe ({engine}; Python {sys.version.split()[0]})")
    rows = [[m, results["weights"].get(m, "")] + _cells(results["facepipe"].get(m)) for m in models]
    bc.print_table(["model", "weights"] + cols, rows)
    if any(r.get("build_in_first_call") for r in results["facepipe"].values()):
        print("  * model built lazily on the first call: its build time is inside 'first s'")
    for m in models:
        row = results["facepipe"].get(m) or {}
        if "skipped" in row:
            print(f"  {m}: {row['skipped']}")
    print("  cpu ms = CPU time of the process (all threads) per call / per face: less sensitive to other load")

    theirs = results["deepface"]
    if theirs is None:
        print("\ndeepface: not measured (no --deepface-python with deepface installed; see this script's docstring)")
        ref = REFERENCE["Facenet"]
        print(f"  issue's reference, deepface Facenet: 1 face {ref['one_ms_tf']:.0f} ms (TensorFlow) / "
              f"{ref['one_ms_onnx']:.0f} ms (ONNX); batch 32: {ref['batch32_fps']:.0f} faces/s")
    else:
        print(f"\ndeepface 0.0.103 (TensorFlow engine, tf-keras; interpreter {args.deepface_python_used})")
        rows = [[m, results["weights"].get(m, "")] + _cells(theirs.get(m)) for m in models]
        bc.print_table(["model", "weights"] + cols, rows)

    print("\ncomparison (facepipe / deepface)")
    comp: list[dict[str, Any]] = []
    for m in models:
        ours = results["facepipe"].get(m) or {}
        other = (theirs or {}).get(m) or {}
        if "one_ms" not in ours or "one_ms" not in other:
            continue
        comp.append({
            "model": m, "one": other["one_ms"] / ours["one_ms"], "one_cpu": other["one_cpu_ms"] / ours["one_cpu_ms"],
            "batch": ours["batch_fps"] / other["batch_fps"],
            "batch_cpu": other["batch_cpu_ms_per_face"] / ours["batch_cpu_ms_per_face"],
            "rss": ours["peak_rss_mib"] / other["peak_rss_mib"], "cold": _cold(ours) / _cold(other),
        })
    if comp:
        print("  speed-up = deepface time / facepipe time (> 1: facepipe faster; 'cpu' = same on CPU time);")
        print("  RSS and cold-start ratios = facepipe / deepface (< 1: facepipe smaller / quicker to the first"
              " embedding; cold start = import + build/load + first call)")
        header = ["model", "1-face speed-up", "(cpu)", f"b{b} speed-up", "(cpu)", "RSS ratio", "cold-start ratio"]
        bc.print_table(header,
                       [[c["model"], f"{c['one']:.2f}x", f"{c['one_cpu']:.2f}x", f"{c['batch']:.2f}x",
                         f"{c['batch_cpu']:.2f}x", f"{c['rss']:.2f}", f"{c['cold']:.2f}"] for c in comp])
    else:
        print("  (nothing to compare)")
    skipped = [m for m in models if "error" in ((theirs or {}).get(m) or {})]
    if skipped:
        print(f"  deepface could not run: {', '.join(skipped)} (see errors below)")

    print("\ngoals")
    fn = results["facepipe"].get("Facenet") or {}
    other = (theirs or {}).get("Facenet") or {}
    ref = REFERENCE["Facenet"]
    if "one_ms" in fn:
        seen = (f"{other['one_ms']:.1f} ms measured" if "one_ms" in other
                else f"{ref['one_ms_tf']:.0f} ms TF / {ref['one_ms_onnx']:.0f} ms ONNX, issue")
        print(f"  Facenet 1 face <= {GOAL_FACENET_ONE_MS:.0f} ms: {fn['one_ms']:.1f} ms "
              f"(cpu {fn['one_cpu_ms']:.1f} ms)  {_verdict(fn['one_ms'] <= GOAL_FACENET_ONE_MS)}  (deepface: {seen})")
        label = f"Facenet batch {b}" + ("" if b == 32 else " (goal is stated for batch 32)")
        seen = (f"{other['batch_fps']:.1f} faces/s measured" if "batch_fps" in other
                else f"{ref['batch32_fps']:.0f} faces/s, issue")
        print(f"  {label} >= {GOAL_FACENET_BATCH_FPS:.0f} faces/s: {fn['batch_fps']:.1f} faces/s "
              f"(cpu {fn['batch_cpu_ms_per_face']:.1f} ms/face)  "
              f"{_verdict(fn['batch_fps'] >= GOAL_FACENET_BATCH_FPS)}  (deepface: {seen})")
    else:
        print("  Facenet goals: Facenet not measured")
    if comp:
        slower = [f"{c['model']} (1 face {c['one']:.2f}x, batch {c['batch']:.2f}x)" for c in comp
                  if round(c["one"], 2) < 1.0 or round(c["batch"], 2) < 1.0]  # as printed
        print("  no model slower than deepface (wall time): " + (_verdict(True) if not slower
                                                                 else "FAIL: " + ", ".join(slower)))
        slower = [f"{c['model']} (1 face {c['one_cpu']:.2f}x, batch {c['batch_cpu']:.2f}x)" for c in comp
                  if c["one_cpu"] < 0.95 or c["batch_cpu"] < 0.95]
        print("  same on CPU time, 5% tolerance: " + (_verdict(True) if not slower else "FAIL: " + ", ".join(slower)))
    else:
        print("  no model slower than deepface: not measured (deepface not available)")

    failed = [(side, m, r) for side in ("facepipe", "deepface") for m, r in (results[side] or {}).items()
              if "error" in r]
    if failed:
        print("\nerrors")
        for side, m, r in failed:
            print("\n".join(bc.error_lines(f"  {side} {m}", r)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated model names")
    parser.add_argument("--repeats", type=int, default=20, help="timed 1-face calls (batch: a quarter, >= 3)")
    parser.add_argument("--batch", type=int, default=32, help="faces per batch call")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="stop repeating a measurement after this many seconds (>= 3 calls for 1 face)")
    parser.add_argument("--keras-backend", choices=("tensorflow", "torch", "jax"), default="tensorflow",
                        help="KERAS_BACKEND of facepipe's worker processes")
    parser.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                        help="facepipe's Keras recognizers: 'keras' or 'onnx' (exported once, cached in "
                             ".cache/bench/facepipe-home/cache/onnx; a run that exports is repeated)")
    parser.add_argument("--deepface-python", help="interpreter of a venv with deepface==0.0.103 (see docstring)")
    parser.add_argument("--no-deepface", action="store_true", help="skip the deepface side")
    parser.add_argument("--sface-model", type=Path, help=f"path of {SFACE_FILE} (SFace runs only with it)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic weights")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per worker process")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--worker", choices=("facepipe", "deepface"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--crops", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "facepipe":
        return bc.worker_main(lambda: facepipe_worker(args))
    if args.worker == "deepface":
        return bc.worker_main(lambda: deepface_worker(args))

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    deepface_python = None
    if not args.no_deepface:
        candidate = args.deepface_python or sys.executable
        if deepface_available(candidate):
            deepface_python = candidate
        elif args.deepface_python:
            print(f"deepface is not importable with {args.deepface_python}; deepface side not measured",
                  file=sys.stderr)
    args.deepface_python_used = deepface_python
    load_before = bc.machine_load()
    started = time.perf_counter()
    results = run_all(args, models, deepface_python)
    load_after = bc.machine_load()
    report(args, models, results, load_before)
    print(f"\nwall {time.perf_counter() - started:.0f} s; load before: {load_before['uptime']}; "
          f"after: {load_after['uptime']}")
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    if k not in ("worker", "model", "crops", "home")}
        args.json.write_text(json.dumps({"settings": settings, "load_before": load_before, "load_after": load_after,
                                         **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
