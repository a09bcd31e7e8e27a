"""Decision math: the "same person" threshold of a metric and the distance-to-confidence mapping.

The numbers are not here: each recognizer declares its own thresholds and confidence parameters
in its :class:`~facepipe.specs.RecognizerSpec` (deepface's pre-tuned values for the models
deepface ships, fact sheet §6).  A pair is the same person iff ``distance <= threshold``.
"""

from __future__ import annotations

import math
from typing import Mapping

from facepipe.errors import ConfigError, FacepipeError
from facepipe.specs import ConfidenceParams

#: the metric names deepface tunes thresholds for
METRICS: tuple[str, ...] = ("cosine", "euclidean", "euclidean_l2", "angular")


def metric_key(metric: str) -> str:
    """The spelling specs use for a metric name (``"Euclidean-L2"`` -> ``"euclidean_l2"``)."""
    return metric.strip().lower().replace("-", "_") if isinstance(metric, str) else ""


def threshold_for(thresholds: Mapping[str, float], metric: str, *, model: str = "the recognizer") -> float:
    """The declared threshold of ``metric`` in ``thresholds`` as a float; none -> ConfigError."""
    key = metric_key(metric)
    if key not in thresholds:
        declared = ", ".join(thresholds) or "none"
        raise ConfigError(
            f"no pre-tuned threshold for the metric {metric!r} of {model}; metrics with a threshold: "
            f"{declared}. Pass a threshold explicitly (threshold= or the config's 'threshold')."
        )
    return float(thresholds[key])


def confidence_params(table: Mapping[str, ConfidenceParams], metric: str) -> ConfidenceParams | None:
    """The declared confidence parameters of ``metric``, or None."""
    return table.get(metric_key(metric))


def _sigmoid(z: float) -> float:
    # Two branches so that exp() never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def confidence(distance: float, params: ConfidenceParams | None, verified: bool) -> float:
    """deepface's confidence (0-100, 2 decimals) that a pair at ``distance`` is the same person.

    ``params`` are the recognizer's declared parameters for the metric (see
    :func:`confidence_params`); ``verified`` is the decision already taken.
    Steps (fact sheet §6.2):

    1. ``distance <= 0``: 100 if verified else 0.
    2. No parameters (``params`` is None: a model or metric without a fitted model): 51 if
       verified else 49.
    3. A ``normalizer`` above 1 divides the distance (smaller normalizers are ignored).
    4. ``c = 100 * sigmoid(w * d + b)``.
    5. ``c`` is mapped linearly from ``[denorm_min_true, denorm_max_true]`` onto
       ``[max(51, denorm_min_true), 100]`` when verified, or from ``[denorm_min_false,
       denorm_max_false]`` onto ``[0, min(49, int(denorm_max_false))]`` otherwise.
    6. Clamped to at least 51 (verified) / at most 49 (not verified), then to [0, 100], and
       rounded to 2 decimals.
    """
    d = float(distance)
    if math.isnan(d):
        raise FacepipeError("confidence() got a NaN distance; check the embeddings for NaN values")
    if d <= 0:
        return 100.0 if verified else 0.0
    if params is None:
        return 51.0 if verified else 49.0

    if params.normalizer > 1:
        d = d / params.normalizer
    c = 100.0 * _sigmoid(params.w * d + params.b)

    if verified:
        src_lo, src_hi = params.denorm_min_true, params.denorm_max_true
        dst_lo, dst_hi = max(51.0, src_lo), 100.0
    else:
        src_lo, src_hi = params.denorm_min_false, params.denorm_max_false
        dst_lo, dst_hi = 0.0, float(min(49, int(src_hi)))
    span = src_hi - src_lo
    # A degenerate source range (not in deepface's table) maps everything to the top of the target.
    c = dst_lo + (c - src_lo) * (dst_hi - dst_lo) / span if span > 0 else dst_hi

    c = max(c, 51.0) if verified else min(c, 49.0)
    c = min(max(c, 0.0), 100.0)
    return round(c, 2)


__all__ = ["METRICS", "confidence", "confidence_params", "metric_key", "threshold_for"]
