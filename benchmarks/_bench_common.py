"""Helpers shared by ``benchmarks/recognizers.py`` and ``benchmarks/analyze.py``.

Stdlib only at module level: the deepface side re-runs the benchmark scripts in another
interpreter (deepface's own virtual environment), which must not need facepipe's runtime.

* where the data is (as in ``tests/helpers/paths.py``): the weights manifests, the parity
  JSON/CSV and the synthetic-weights writer live in the repository under ``tests/``; the dataset
  photos come from ``$FACEPIPE_DATA`` (default ``../shared/data/deepface-dataset``);
* :func:`synthetic_weights` - deepface-format synthetic ``.h5`` files, written once into a cache
  (the same recipe and cache as ``tests/conftest.py``);
* :func:`link_weights` - a weights folder of symbolic links (facepipe's ``$FACEPIPE_HOME/weights``
  or deepface's ``$DEEPFACE_HOME/.deepface/weights``);
* :func:`run_worker` - run one measurement in a fresh process and get its JSON result plus the
  peak resident set size of that process (``ru_maxrss`` from ``os.wait4``);
* :func:`timed` / :func:`measure` - wall time of one call, median of repeated calls;
* :func:`machine_load` / :func:`print_table` - context and output.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _folder_from_env(variable: str, default: Path) -> Path:
    # An empty value counts as unset, as in tests/helpers/paths.py.
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else default


DATASET = _folder_from_env("FACEPIPE_DATA", REPO.parent / "shared" / "data" / "deepface-dataset")
PARITY_REFERENCE = REPO / "tests" / "reference" / "parity"
MANIFESTS = REPO / "tests" / "reference" / "weights-manifest"
MAKE_SYNTHETIC = REPO / "tests" / "tools" / "make_synthetic_weights.py"
# Same cache as the tests: synthetic files are byte-identical for a (model, seed).
SYNTHETIC_CACHE = Path(os.environ.get("FACEPIPE_TEST_CACHE", REPO / ".cache" / "synthetic"))
BENCH_CACHE = REPO / ".cache" / "bench"

RESULT_MARK = "BENCH_JSON "
MIB = 1024 * 1024


# ------------------------------------------------------------------------------------ weights
def synthetic_weights(model: str, seed: int = 1, cache: Path = SYNTHETIC_CACHE) -> Path:
    """Path of deepface-format synthetic weights for ``model`` (generated once, then reused).

    The file keeps deepface's file name (the manifest's ``weights_file``).
    """
    manifest = MANIFESTS / f"{model}.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"no weights manifest for {model} at {manifest}")
    weights_file = json.loads(manifest.read_text())["weights_file"]
    out = cache / f"seed{seed}" / model / weights_file
    if out.is_file():
        return out
    if not MAKE_SYNTHETIC.is_file():
        raise FileNotFoundError(f"synthetic weights generator not found at {MAKE_SYNTHETIC}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    print(f"writing synthetic weights for {model} to {out} (once) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, str(MAKE_SYNTHETIC), str(manifest), "--seed", str(seed), "-o", str(tmp)],
                   check=True)
    tmp.replace(out)
    return out


def link_weights(folder: Path, files: dict[str, Path]) -> Path:
    """Make ``folder`` hold ``{name: symlink -> source}`` (stale links replaced); returns folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        link = folder / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == source:
                continue
            link.unlink()
        link.symlink_to(source)
    return folder


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for root in spec.submodule_search_locations or [os.path.dirname(spec.origin or "")]:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    return None


def dlib_resnet_weights() -> Path | None:
    """The real Dlib ResNet weights shipped by face-recognition-models (or None)."""
    return package_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")


# ------------------------------------------------------------------------------------ processes
def run_worker(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``cmd`` (a worker that prints ``BENCH_JSON {...}``) in a fresh process.

    Returns the worker's JSON dict plus ``peak_rss_mib`` (the child's ``ru_maxrss``),
    ``process_s`` (wall time of the whole process) and, on failure, ``error`` / ``log``.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=full_env, start_new_session=True)
        timed_out = False
        while True:  # reap the child ourselves: os.wait4 gives its resource usage
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024.0  # Linux: kilobytes
    result["process_s"] = wall
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["exit_code"] = proc.returncode
    if timed_out:
        result.setdefault("error", f"timed out after {timeout:.0f} s")
    elif proc.returncode != 0 and "error" not in result:
        result["error"] = f"worker exited with {proc.returncode}"
    if "error" in result:
        result["log"] = (stderr + stdout)[-4000:]
    return result


def emit(result: dict[str, Any]) -> None:
    """Worker side: print the result line the parent looks for."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def worker_main(body: Callable[[], dict[str, Any]]) -> int:
    """Run a worker body; an exception becomes ``{"error", "traceback"}`` (exit code 1)."""
    try:
        emit(body())
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent's table
        emit({"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-4000:]})
        return 1


# ------------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(fn: Callable[[], Any], repeats: int, budget_s: float, minimum: int = 3) -> dict[str, Any]:
    """Median / min wall seconds and median CPU seconds (all threads) of ``fn`` over up to
    ``repeats`` calls.

    Stops early once ``budget_s`` seconds are spent and at least ``minimum`` calls were made
    (slow models on a shared machine would otherwise take minutes).  The CPU time is less
    disturbed than wall time when other processes compete for the cores.
    """
    times: list[float] = []
    cpu: list[float] = []
    spent = 0.0
    while len(times) < repeats:
        c0 = time.process_time()
        seconds, _ = timed(fn)
        cpu.append(time.process_time() - c0)
        times.append(seconds)
        spent += seconds
        if spent > budget_s and len(times) >= minimum:
            break
    return {"median_s": statistics.median(times), "min_s": min(times), "cpu_s": statistics.median(cpu),
            "n": len(times)}


# ------------------------------------------------------------------------------------ inputs
def face_crops(count: int, dataset: Path = DATASET, seed: int = 0) -> list:
    """Up to ``count`` real BGR face crops (largest Haar face per photo), else random crops.

    Detection runs on a copy shrunk to 800 px (fast); the crop is cut from the full photo.
    The crops are cached in ``.cache/bench`` (they are the same every time).
    """
    import numpy as np

    cache = BENCH_CACHE / f"crops_{count}_{dataset.name}.npz"
    if cache.is_file():
        return load_crops(cache)
    crops = []
    try:
        import cv2

        cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
        for path in sorted(dataset.glob("*.jpg")):
            if len(crops) >= count:
                break
            img = cv2.imread(str(path))
            if img is None:
                continue
            scale = min(1.0, 800.0 / max(img.shape[:2]))
            small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else img
            found = cascade.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), 1.1, 10)
            if len(found) == 0:
                continue
            x, y, w, h = (int(round(v / scale)) for v in max(found, key=lambda b: b[2] * b[3]))
            crops.append(np.ascontiguousarray(img[y:y + h, x:x + w]))
    except Exception as exc:  # noqa: BLE001 - no cv2 / cascade: fall back to random crops
        print(f"(real crops unavailable: {exc}; using random crops)", file=sys.stderr)
    real = bool(crops)
    if crops:  # fewer photos than wanted: repeat the real crops
        base = list(crops)
        while len(crops) < count:
            crops.append(base[len(crops) % len(base)])
    rng = np.random.default_rng(seed)
    while len(crops) < count:  # speed does not depend on pixel values
        side = int(rng.integers(120, 260))
        crops.append(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    crops = crops[:count]
    if real:
        BENCH_CACHE.mkdir(parents=True, exist_ok=True)
        save_crops(crops, cache)
    return crops


def save_crops(crops: list, path: Path) -> Path:
    import numpy as np

    np.savez(path, **{f"crop_{i:03d}": c for i, c in enumerate(crops)})
    return path


def load_crops(path: str | Path) -> list:
    import numpy as np

    with np.load(path) as data:
        return [data[k] for k in sorted(data.files)]


# ------------------------------------------------------------------------------------ output
def machine_load() -> dict[str, Any]:
    """Load averages, CPU count and the ``uptime`` line (the machine may be shared)."""
    try:
        line = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        line = ""
    return {"loadavg": list(os.getloadavg()), "cpus": os.cpu_count(), "uptime": line}


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def error_lines(label: str, row: dict[str, Any]) -> list[str]:
    """The error of a failed row and the tail of its traceback / log."""
    lines = [f"{label}: {row.get('error')}"]
    tail = row.get("traceback") or row.get("log") or ""
    lines += ["    " + t for t in tail.strip().splitlines()[-12:]]
    return lines
