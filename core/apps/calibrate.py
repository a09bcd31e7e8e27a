"""Pick a verification threshold from labelled pairs for a target false-accept rate.

Input: a CSV with two image columns and a same/different label (deepface's ``master.csv``
layout, ``file_x,file_y,Decision`` with Yes/No, is the default; ``1/0``, ``true/false``,
``same/different`` are understood too).  Every distinct photo is embedded once; each pair's
distance is the smallest over their faces, as in ``verify``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facepipe.errors import ConfigError
from facepipe.progress import Progress, ProgressArg

_TRUE = {"yes", "y", "1", "true", "same", "match"}
_FALSE = {"no", "n", "0", "false", "different", "nonmatch", "non-match"}
#: photos detected and embedded per step (one step of the progress bar)
_PHOTOS_PER_STEP = 16


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and how it does on the pairs it was chosen from."""

    threshold: float
    target_far: float
    far: float
    frr: float
    accuracy: float
    pairs: int
    same_pairs: int
    model: str
    metric: str
    default_threshold: float
    default_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_pairs(path: str | Path, *, left: str = "file_x", right: str = "file_y",
               label: str = "Decision") -> list[tuple[Path, Path, bool]]:
    """``[(image1, image2, same_person)]``; relative image paths resolve against the CSV's folder."""
    csv_path = Path(path)
    if not csv_path.is_file():
        raise ConfigError(f"pairs file not found: {csv_path}")
    rows = []
    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        # Column names match ignoring case and spaces ("decision", " File_X" are fine too).
        found = {name.strip().lower(): name for name in reader.fieldnames or []}
        missing = {c for c in (left, right, label) if c.strip().lower() not in found}
        if missing:
            raise ConfigError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}; "
                              f"found {', '.join(reader.fieldnames or [])}")
        left, right, label = (found[c.strip().lower()] for c in (left, right, label))
        for line, row in enumerate(reader, start=2):
            if not all((row.get(c) or "").strip() for c in (left, right, label)):
                raise ConfigError(f"{csv_path}:{line}: a row needs a value in each of {left}, {right}, {label}")
            value = row[label].strip().lower()
            if value not in _TRUE | _FALSE:
                raise ConfigError(f"{csv_path}:{line}: label {row[label]!r} is neither same (Yes/1/true) "
                                  "nor different (No/0/false)")
            a, b = Path(row[left].strip()), Path(row[right].strip())
            rows.append((a if a.is_absolute() else csv_path.parent / a,
                         b if b.is_absolute() else csv_path.parent / b, value in _TRUE))
    if not rows:
        raise ConfigError(f"{csv_path} holds no pairs")
    return rows


def pair_distances(pipeline: Any, pairs: list[tuple[Path, Path, bool]], *,
                   progress: ProgressArg = None) -> np.ndarray:
    """Distance of each pair (min over face pairs); inf where a photo has no face.

    ``progress``: see :mod:`facepipe.progress` (one step per photo embedded).
    """
    photos = sorted({p for a, b, _ in pairs for p in (a, b)})
    index = {p: k for k, p in enumerate(photos)}
    vectors: list[np.ndarray] = []
    with Progress(len(photos), "Embedding photos", unit="photo", progress=progress) as bar:
        for start in range(0, len(photos), _PHOTOS_PER_STEP):  # a few photos at a time, so the bar moves
            part = photos[start:start + _PHOTOS_PER_STEP]
            vectors.extend(pipeline.embed_per_image(pipeline.faces(part, on_no_face="skip")))
            bar.advance(len(part))
    metric = pipeline.metric
    out = np.full(len(pairs), np.inf)
    for k, (a, b, _) in enumerate(pairs):
        va, vb = vectors[index[a]], vectors[index[b]]
        if len(va) and len(vb):
            out[k] = float(metric.pairwise(va, vb).min())
    return out


def choose_threshold(distances: np.ndarray, same: np.ndarray, target_far: float) -> float:
    """The largest threshold whose false-accept rate on the different-person pairs is <= target."""
    if not 0 <= target_far < 1:
        raise ConfigError(f"target FAR must be in [0, 1), got {target_far}")
    different = np.sort(distances[~same & np.isfinite(distances)])
    if different.size == 0:
        raise ConfigError("calibration needs different-person pairs with faces")
    allowed = int(np.floor(target_far * different.size))  # accepted impostor pairs we may tolerate
    if allowed >= different.size:
        return float(different[-1])
    # Accept distances strictly below the (allowed+1)-th smallest impostor distance.
    upper = different[allowed]
    lower = different[allowed - 1] if allowed > 0 else 0.0
    return float(np.nextafter(upper, -np.inf) if lower >= upper else (lower + upper) / 2)


def calibrate(pipeline: Any, pairs_csv: str | Path, *, target_far: float = 0.01,
              progress: ProgressArg = None) -> Calibration:
    """Choose a threshold on ``pairs_csv`` for ``target_far``; reports FAR/FRR/accuracy there."""
    pairs = read_pairs(pairs_csv)
    same = np.array([s for _, _, s in pairs])
    distances = pair_distances(pipeline, pairs, progress=progress)
    threshold = choose_threshold(distances, same, target_far)

    def rates(t: float) -> tuple[float, float, float]:
        accepted = distances <= t
        far = float(accepted[~same].mean()) if (~same).any() else 0.0
        frr = float((~accepted[same]).mean()) if same.any() else 0.0
        return far, frr, float((accepted == same).mean())

    far, frr, accuracy = rates(threshold)
    default = pipeline.threshold()
    return Calibration(threshold=threshold, target_far=target_far, far=far, frr=frr, accuracy=accuracy,
                       pairs=len(pairs), same_pairs=int(same.sum()), model=pipeline.model_name,
                       metric=pipeline.metric_name, default_threshold=default,
                       default_accuracy=rates(default)[2])
