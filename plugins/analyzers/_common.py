"""Helpers shared by the attribute analyzers: turning class probabilities into deepface's result dicts.

deepface reports a classifier's output as ``{action: {label: percent}, "dominant_<action>": label}``
and age as the expected value of the age distribution.  These functions do that for a whole
batch and return plain Python floats / strings (never numpy scalars), so results serialise to JSON.

Nothing here imports an ML runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from facepipe.errors import FacepipeError


def _as_probabilities(probabilities: np.ndarray, classes: int, what: str) -> np.ndarray:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != classes:
        raise FacepipeError(
            f"{what}: expected class probabilities of shape (N, {classes}), got {probs.shape}"
        )
    return probs


def labelled_results(
    action: str,
    probabilities: np.ndarray,
    labels: Sequence[str],
    *,
    renormalize: bool,
) -> list[dict[str, Any]]:
    """``[{action: {label: percent}, "dominant_" + action: label}, ...]``, one per row.

    ``renormalize``: divide by the row sum before scaling to percent (deepface does this for race
    and emotion, not for gender).  The dominant label is the arg-max (first one on a tie).
    """
    probs = _as_probabilities(probabilities, len(labels), action)
    if renormalize:
        sums = probs.sum(axis=1, keepdims=True)
        probs = probs / np.where(sums > 0, sums, 1.0)
    percents = 100.0 * probs
    results = []
    for row in percents:
        results.append({
            action: {label: float(value) for label, value in zip(labels, row)},
            f"dominant_{action}": str(labels[int(np.argmax(row))]),
        })
    return results


def expected_values(probabilities: np.ndarray, values: Sequence[float]) -> list[float]:
    """``sum_i values[i] * p_i`` per row, in float64, as Python floats (not rounded)."""
    probs = _as_probabilities(probabilities, len(values), "expected value")
    return [float(v) for v in probs @ np.asarray(values, dtype=np.float64)]


def chunks(n: int, size: int) -> list[slice]:
    """Slices that cut ``range(n)`` into pieces of at most ``size``."""
    size = max(int(size), 1)
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]
