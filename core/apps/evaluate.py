"""Evaluate pipeline configurations on labelled pairs: ``facepipe evaluate PAIRS.csv``.

A configuration is detector x recognizer x metric.  For each detector x recognizer every
distinct photo of the CSV is detected and embedded once (batched, as ``verify_many`` does); the
metrics then share those embeddings.  A pair's distance is the smallest over the two photos'
faces, as in ``verify``; a photo without a face makes its pairs undecidable, which counts as
"different" (never accepted).  The figures per configuration come from :mod:`facepipe.apps.roc`.

The CSV is read by :func:`facepipe.apps.calibrate.read_pairs` (deepface's ``master.csv`` layout:
``file_x,file_y,Decision``, paths relative to the CSV's folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from facepipe.apps.calibrate import read_pairs
from facepipe.apps.roc import Roc, accuracy_at, summarize
from facepipe.errors import ConfigError, ImageNotFoundError
from facepipe.progress import Progress, ProgressArg

#: the FARs at which TAR is reported
TARGET_FARS: tuple[float, ...] = (1e-2, 1e-3)
#: photos per detection call: small enough for a progress bar that moves, large enough to batch
_DETECT_CHUNK = 8


@dataclass(frozen=True)
class Evaluation:
    """How one detector x recognizer x metric configuration does on the pairs."""

    detector: str
    recognizer: str
    metric: str
    pairs: int
    no_face_pairs: int  # pairs with a photo in which no face was found (never accepted)
    default_threshold: float | None  # the recognizer's declared threshold for the metric
    default_accuracy: float | None
    roc: Roc
    seconds_per_pair: float  # warm: detection + embedding (shared by the metrics) + distances
    photos: int = 0  # distinct photos, each detected and embedded once
    seconds_per_photo: float = 0.0  # warm detection + embedding of one photo

    @property
    def label(self) -> str:
        return f"{self.detector} + {self.recognizer}, {self.metric}"

    def to_dict(self, *, curve: bool = True) -> dict[str, Any]:
        return {
            "detector": self.detector, "recognizer": self.recognizer, "metric": self.metric,
            "pairs": self.pairs, "same_pairs": self.roc.same_pairs, "different_pairs": self.roc.different_pairs,
            "no_face_pairs": self.no_face_pairs, "default_threshold": self.default_threshold,
            "default_accuracy": self.default_accuracy, "seconds_per_pair": self.seconds_per_pair,
            "photos": self.photos, "seconds_per_photo": self.seconds_per_photo,
            **self.roc.to_dict(curve=curve),
        }


# ------------------------------------------------------------------------------------ reading
def load_pairs(path: str | Path) -> list[tuple[Path, Path, bool]]:
    """The CSV's pairs, checked: every photo exists and both labels occur."""
    pairs = read_pairs(path)
    missing = sorted({str(p) for a, b, _ in pairs for p in (a, b) if not p.is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ImageNotFoundError(f"{path}: {len(missing)} photo(s) not found: {shown} "
                                 f"(relative paths are read from {Path(path).parent.resolve()})")
    same = sum(s for _, _, s in pairs)
    if same in (0, len(pairs)):
        raise ConfigError(f"{path}: evaluating needs both same-person and different-person pairs "
                          f"(got {same} same, {len(pairs) - same} different)")
    return pairs


# ------------------------------------------------------------------------------------ running
def embed_photos(pipeline: Any, photos: Sequence[Path], *, progress: ProgressArg = None) -> list[np.ndarray]:
    """Embeddings of each photo's faces ((faces, D) per photo, (0, D) when none was found)."""
    faces: list[Any] = []
    desc = f"{pipeline.detector_name} + {pipeline.model_name}"
    with Progress(len(photos), desc, unit="photo", progress=progress, leave=False) as bar:
        for start in range(0, len(photos), _DETECT_CHUNK):
            chunk = list(photos[start:start + _DETECT_CHUNK])
            faces.extend(pipeline.faces(chunk, on_no_face="skip"))
            bar.advance(len(chunk))
    return pipeline.embed_per_image(faces)  # one batched recognizer pass over every face


def pair_distances(vectors: Sequence[np.ndarray], index: dict[Path, int],
                   pairs: Sequence[tuple[Path, Path, bool]], metric: Any) -> np.ndarray:
    """Each pair's smallest face-to-face distance under ``metric``; inf where a photo has no face."""
    out = np.full(len(pairs), np.inf)
    for k, (a, b, _) in enumerate(pairs):
        va, vb = vectors[index[a]], vectors[index[b]]
        if len(va) and len(vb):
            out[k] = float(metric.pairwise(va, vb).min())
    return out


def default_threshold(pipeline: Any, metric: str) -> float | None:
    """The recognizer's declared threshold for ``metric``, or None when it declares none."""
    from facepipe.pipeline.decision import threshold_for

    declared = getattr(pipeline.recognizer_spec, "thresholds", None) or getattr(pipeline.recognizer, "thresholds", None)
    try:
        return threshold_for(declared or {}, metric, model=pipeline.model_name)
    except ConfigError:
        return None


def evaluate(pairs: Sequence[tuple[Path, Path, bool]], *, detectors: Sequence[str], recognizers: Sequence[str],
             metrics: Sequence[str], base_config: dict[str, Any] | None = None, progress: ProgressArg = None,
             targets: Sequence[float] = TARGET_FARS, registry: Any = None) -> list[Evaluation]:
    """Every detector x recognizer x metric on ``pairs`` (from :func:`load_pairs`).

    ``progress``: None draws a bar on stderr when it is a terminal, a bool forces it, a callable
    ``(done, total)`` gets the photo counts of each detector x recognizer (see facepipe.progress).
    ``registry``: the plugins to use (default: the installed ones)."""
    from facepipe.pipeline.metrics import get_metric
    from facepipe.pipeline.orchestrator import Pipeline

    photos = sorted({p for a, b, _ in pairs for p in (a, b)})
    index = {p: k for k, p in enumerate(photos)}
    same = np.array([s for _, _, s in pairs])
    chosen_metrics = [get_metric(m) for m in metrics]  # fail on a bad name before any model runs
    results = []
    for detector in detectors:
        for recognizer in recognizers:
            config = {**(base_config or {}), "detector": detector, "recognizer": recognizer}
            pipeline = Pipeline.from_config(config, registry=registry)
            try:
                pipeline.prepare(actions=[])  # load detector + recognizer outside the timing: warm figures
                start = time.perf_counter()
                vectors = embed_photos(pipeline, photos, progress=progress)
                embed_seconds = time.perf_counter() - start
                for metric in chosen_metrics:
                    start = time.perf_counter()
                    distances = pair_distances(vectors, index, pairs, metric)
                    seconds = embed_seconds + time.perf_counter() - start
                    name = getattr(metric, "name", str(metric))
                    threshold = default_threshold(pipeline, name)
                    results.append(Evaluation(
                        detector=pipeline.detector_name, recognizer=pipeline.model_name, metric=name,
                        pairs=len(pairs), no_face_pairs=int(np.isinf(distances).sum()),
                        default_threshold=threshold,
                        default_accuracy=None if threshold is None else accuracy_at(distances, same, threshold),
                        roc=summarize(distances, same, targets), seconds_per_pair=seconds / len(pairs),
                        photos=len(photos), seconds_per_photo=embed_seconds / len(photos)))
            finally:
                pipeline.close()
    return results


# ------------------------------------------------------------------------------------ output
def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: Sequence[Evaluation]) -> str:
    """A plain-text table with a note on how to read the low-FAR columns."""
    targets = [t.target for t in results[0].roc.tar_at_far] if results else []
    headers = ["detector", "recognizer", "metric", "threshold", "acc", "best thr", "best acc", "AUC", "EER",
               *[f"TAR@FAR={t:g}" for t in targets], "no face", "s/pair"]
    rows = []
    for r in results:
        tars = [_number(t.tar) + ("*" if t.limited else "") for t in r.roc.tar_at_far]
        rows.append([r.detector, r.recognizer, r.metric, _number(r.default_threshold, 4), _number(r.default_accuracy),
                     _number(r.roc.best_threshold, 4), _number(r.roc.best_accuracy), _number(r.roc.auc),
                     _number(r.roc.eer), *tars, str(r.no_face_pairs), f"{r.seconds_per_pair:.3f}"])
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if results:
        r = results[0]
        lines.append(f"\n{r.pairs} pairs ({r.roc.same_pairs} same person, {r.roc.different_pairs} different): "
                     f"FAR moves in steps of 1/{r.roc.different_pairs} = {r.roc.far_resolution:.4f}.")
        if any(t.limited for x in results for t in x.roc.tar_at_far):
            lines.append("* target finer than that step: the value is TAR at FAR 0 (no impostor accepted).")
        lines.append("threshold/acc: the recognizer's declared threshold; best thr/acc: chosen on these same "
                     "pairs (optimistic).")
        lines.append(f"s/pair: warm detection + embedding of the {r.photos} distinct photos (each once) + "
                     "distances, divided by the pairs.")
    return "\n".join(lines)


def to_json(results: Sequence[Evaluation]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)


# ------------------------------------------------------------------------------------ command line
def _names(values: Iterable[str] | None) -> list[str]:
    # "--detectors dlib opencv" and "--detectors dlib,opencv" both work
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def add_parser(subparsers: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """The ``evaluate`` subcommand (called by :mod:`facepipe.apps.cli`; ``parents`` carry the options
    every command shares, such as ``--quiet`` / ``--progress``)."""
    p = subparsers.add_parser(
        "evaluate", parents=list(parents),
        help="accuracy, ROC AUC, EER and TAR@FAR of configurations on labelled pairs",
        description="Run every detector x recognizer x metric over labelled pairs and report accuracy at the "
                    "declared threshold, the best threshold, ROC AUC, EER, TAR at FAR 1e-2 / 1e-3 and time per pair.")
    p.add_argument("pairs", help="CSV with file_x,file_y,Decision (Yes/No) as deepface's master.csv; "
                                 "image paths relative to the CSV's folder")
    p.add_argument("--config", help="base pipeline config file (e.g. detect_max_side); the options below override it")
    p.add_argument("--detectors", nargs="+", metavar="NAME",
                   help="detector plugins to compare (space- or comma-separated; default: the config's)")
    p.add_argument("--recognizers", "--models", nargs="+", metavar="NAME", dest="recognizers",
                   help="recognizer plugins to compare (default: the config's)")
    p.add_argument("--metrics", nargs="+", metavar="NAME",
                   help="distance metrics to compare; they share one embedding pass (default: the config's)")
    p.add_argument("--plot", metavar="PNG", help="draw every configuration's ROC curve into this PNG "
                                                  "(needs matplotlib: pip install 'facepipe[plot]')")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON (curves included) instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """``facepipe evaluate``: returns the exit status.  Progress bars follow the CLI's ``--quiet`` /
    ``--progress`` through :func:`facepipe.progress.forced_progress`."""
    from facepipe.pipeline.config import load_config_file, parse_config

    if args.plot:
        from facepipe.apps.roc_plot import require_matplotlib

        require_matplotlib()  # fail now, not after minutes of embedding
    base: dict[str, Any] = load_config_file(args.config) if args.config else {}
    defaults = parse_config(base)
    pairs = load_pairs(args.pairs)
    results = evaluate(pairs, detectors=_names(args.detectors) or [defaults.detector.name],
                       recognizers=_names(args.recognizers) or [defaults.recognizer.name],
                       metrics=_names(args.metrics) or [defaults.metric.name], base_config=base,
                       registry=getattr(args, "registry", None))
    if args.plot:
        from facepipe.apps.roc_plot import plot_roc

        plot_roc(results, args.plot, title=f"ROC on {Path(args.pairs).name} ({len(pairs)} pairs)")
        if not getattr(args, "quiet_all", False):
            print(f"ROC curves written to {args.plot}", file=sys.stderr)
    print(to_json(results) if args.json else format_table(results))
    return 0


__all__ = ["Evaluation", "TARGET_FARS", "add_parser", "default_threshold", "embed_photos", "evaluate",
           "format_table", "load_pairs", "pair_distances", "run", "to_json"]
