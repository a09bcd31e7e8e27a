"""Cold import time of facepipe and wall time of `facepipe plugins`.

Each measurement runs in a fresh interpreter (cold: nothing imported yet). Prints medians.

    python benchmarks/import_time.py [--runs 11] [--deepface-python /path/to/venv/bin/python]

With --deepface-python, the same is measured for `import deepface.DeepFace` in that interpreter
(install deepface 0.0.103 there: `python -m venv dfenv && dfenv/bin/pip install deepface==0.0.103
tf-keras`). Goal: facepipe import <= 0.15 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("tensorflow", "keras", "torch", "cv2", "dlib", "onnxruntime", "mediapipe")


def time_import(python: str, module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def time_command(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - start


def heavy_modules_after(python: str, code: str) -> list[str]:
    probe = f"{code}\nimport sys; print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    last = out.stdout.strip().splitlines()[-1]
    return [m for m in last.removeprefix("loaded:").split(",") if m]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--deepface-python", help="an interpreter with deepface installed")
    args = parser.parse_args()

    imports = [time_import(sys.executable, "facepipe") for _ in range(args.runs)]
    plugins = [time_command([sys.executable, "-m", "facepipe.apps.cli", "plugins", "--json"]) for _ in range(args.runs)]
    bare = [time_command([sys.executable, "-c", "pass"]) for _ in range(args.runs)]
    print(f"runs: {args.runs}")
    print(f"facepipe  import (median, in-process)            : {statistics.median(imports):.3f} s  (goal <= 0.15 s)")
    print(f"facepipe  `facepipe plugins --json` (wall, median): {statistics.median(plugins):.3f} s "
          f"(interpreter start alone {statistics.median(bare):.3f} s)")
    heavy = heavy_modules_after(sys.executable, "import facepipe") or "none"
    print(f"ML runtimes imported by `import facepipe`        : {heavy}")
    if args.deepface_python:
        df = [time_import(args.deepface_python, "deepface.DeepFace") for _ in range(max(3, args.runs // 3))]
        print(f"deepface  import deepface.DeepFace (median)      : {statistics.median(df):.3f} s")
    else:
        print("deepface  (not measured: pass --deepface-python; reference figures on these machines: "
              "3.5 s with TensorFlow, 0.38 s with its ONNX engine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
