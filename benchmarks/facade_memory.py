"""Memory of the deepface facade over many option sets: does it stay flat?

One process calls ``DeepFace.verify(img1, img2, model_name=M, detector_backend=D,
distance_metric=X)`` for every model x detector x metric, ``--rounds`` times, and prints its
resident set size (RSS, from ``/proc/self/status``) before the first call and after each round.
With models shared between pipelines (``facepipe.model_cache``) the rounds after the first add
(almost) nothing; when every option set loaded its own copy of each model, every new set grew
the process by a model's size.

Recognizers that need downloads can run on synthetic deepface-format weights: ``--synthetic
Facenet`` writes them once (``.cache/synthetic``, as the tests do) and points a private
``FACEPIPE_HOME`` at them.  Dlib's real weights ship in ``face-recognition-models``.

Usage::

    python benchmarks/facade_memory.py                                  # Dlib + Facenet(synthetic), opencv + dlib
    python benchmarks/facade_memory.py --models Dlib --detectors opencv --rounds 3
    python benchmarks/facade_memory.py --json                           # one JSON line (tests read it)

Needs the dataset photos (``$FACEPIPE_DATA``, default ``../shared/data/deepface-dataset``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _bench_common import DATASET, link_weights, synthetic_weights  # noqa: E402

METRICS = ("cosine", "euclidean", "euclidean_l2", "angular")
MIB = 1024 * 1024


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux ``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def seed_synthetic(models: list[str], home: Path) -> None:
    """Link synthetic weights of ``models`` into ``home/weights`` and make it FACEPIPE_HOME."""
    files = {}
    for model in models:
        path = synthetic_weights(model)
        files[path.name] = path
    link_weights(home / "weights", files)
    os.environ["FACEPIPE_HOME"] = str(home)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["Dlib", "Facenet"])
    parser.add_argument("--detectors", nargs="+", default=["opencv", "dlib"])
    parser.add_argument("--metrics", nargs="+", default=list(METRICS))
    parser.add_argument("--synthetic", nargs="*", default=["Facenet"],
                        help="models to run on synthetic weights (default: Facenet)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--img1", default=str(DATASET / "img1.jpg"))
    parser.add_argument("--img2", default=str(DATASET / "img2.jpg"))
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args(argv)

    for image in (args.img1, args.img2):
        if not Path(image).is_file():
            print(f"photo {image} not found (set FACEPIPE_DATA)", file=sys.stderr)
            return 2
    home = Path(tempfile.mkdtemp(prefix="facepipe-home-"))
    if args.synthetic:
        seed_synthetic(args.synthetic, home)

    from facepipe import DeepFace

    gc.collect()
    figures = {"start_mib": rss_mib(), "rounds": [], "calls_per_round": 0}
    for _ in range(args.rounds):
        start, calls = time.perf_counter(), 0
        for model in args.models:
            for detector in args.detectors:
                for metric in args.metrics:
                    DeepFace.verify(args.img1, args.img2, model_name=model, detector_backend=detector,
                                    distance_metric=metric)
                    calls += 1
        gc.collect()
        figures["rounds"].append({"rss_mib": round(rss_mib(), 1), "seconds": round(time.perf_counter() - start, 1)})
        figures["calls_per_round"] = calls
    figures["start_mib"] = round(figures["start_mib"], 1)
    rounds = figures["rounds"]
    figures["growth_after_first_mib"] = round(rounds[-1]["rss_mib"] - rounds[0]["rss_mib"], 1)

    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"models {' '.join(args.models)}; detectors {' '.join(args.detectors)}; metrics {' '.join(args.metrics)}"
          f" ({figures['calls_per_round']} calls a round)")
    print(f"RSS before the first call: {figures['start_mib']:8.1f} MiB")
    for number, item in enumerate(rounds, 1):
        print(f"RSS after round {number}:        {item['rss_mib']:8.1f} MiB   ({item['seconds']} s)")
    print(f"growth after the first round: {figures['growth_after_first_mib']:+.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
