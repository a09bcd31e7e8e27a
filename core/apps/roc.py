"""ROC math on labelled pair distances: the curve, AUC, EER, TAR at a FAR, the best threshold.

Conventions (those of ``verify``): a pair is accepted as the same person iff
``distance <= threshold``; an infinite distance (a photo without a face) is never accepted at a
finite threshold, so those pairs rank as the farthest of all.

The curve has one point per distinct distance, so tied distances move FAR and TAR together (a
diagonal step) and the trapezoid AUC equals the Mann-Whitney probability that a same-person pair
is closer than a different-person pair, ties counting one half.

With ``n`` different-person pairs FAR moves in steps of ``1/n``: a target FAR below ``1/n`` can
only be met by accepting no impostor at all, so TAR at that target is TAR at FAR 0 and is marked
``limited`` (300 pairs with 262 impostors resolve FAR down to 0.0038, not to 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from facepipe.errors import ConfigError


@dataclass(frozen=True)
class TarAtFar:
    """The best TAR over the thresholds whose FAR on these pairs is at most ``target``."""

    target: float
    tar: float
    far: float  # the FAR actually reached there (<= target)
    threshold: float
    #: True when the target is finer than 1/different-pairs: the value is TAR at FAR 0
    limited: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Roc:
    """The ROC of one configuration on one set of pairs and the numbers read from it."""

    far: np.ndarray  # false-accept rate per point, from 0 to 1
    tar: np.ndarray  # true-accept rate per point
    thresholds: np.ndarray  # the threshold of each point (-inf: accept nothing, inf: everything)
    auc: float
    eer: float
    best_threshold: float
    best_accuracy: float
    tar_at_far: tuple[TarAtFar, ...] = field(default=())
    same_pairs: int = 0
    different_pairs: int = 0

    @property
    def far_resolution(self) -> float:
        """The smallest non-zero FAR these pairs can measure (one accepted impostor)."""
        return 1.0 / self.different_pairs if self.different_pairs else float("nan")

    def point_at(self, threshold: float) -> tuple[float, float]:
        """``(FAR, TAR)`` when accepting distances ``<= threshold``."""
        index = int(np.searchsorted(self.thresholds, threshold, side="right")) - 1
        return float(self.far[index]), float(self.tar[index])

    def to_dict(self, *, curve: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auc": self.auc, "eer": self.eer, "best_threshold": self.best_threshold,
            "best_accuracy": self.best_accuracy, "far_resolution": self.far_resolution,
            "tar_at_far": [t.to_dict() for t in self.tar_at_far],
        }
        if curve:
            out["curve"] = {"far": self.far.tolist(), "tar": self.tar.tolist(),
                            "thresholds": [_finite_or_none(t) for t in self.thresholds]}
        return out


def _finite_or_none(value: float) -> float | None:
    # JSON has no infinity: the curve's two end points carry None.
    return float(value) if np.isfinite(value) else None


def _labelled(distances: Sequence[float] | np.ndarray,
              same: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64).ravel()
    s = np.asarray(same, dtype=bool).ravel()
    if d.shape != s.shape:
        raise ConfigError(f"{d.size} distances but {s.size} labels")
    if np.isnan(d).any():
        raise ConfigError("distances contain NaN")
    if not s.any() or s.all():
        raise ConfigError("an ROC needs both same-person and different-person pairs "
                          f"(got {int(s.sum())} same, {int((~s).sum())} different)")
    return d, s


def roc_curve(distances: Sequence[float] | np.ndarray, same: Sequence[bool] | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(far, tar, thresholds)``: one point per distinct distance, plus (0, 0) and (1, 1).

    The first point accepts nothing (threshold -inf), the last everything, pairs without a face
    included (threshold inf).
    """
    d, s = _labelled(distances, same)
    finite = np.unique(d[np.isfinite(d)])
    thresholds = np.concatenate([[-np.inf], finite, [np.inf]])
    # accepted counts at each threshold, from the sorted distances of each class
    pos, neg = np.sort(d[s]), np.sort(d[~s])
    tp = np.searchsorted(pos, thresholds, side="right").astype(np.float64)
    fp = np.searchsorted(neg, thresholds, side="right").astype(np.float64)
    tp[-1], fp[-1] = pos.size, neg.size  # "accept everything" takes the infinite distances too
    return fp / neg.size, tp / pos.size, thresholds


def auc(far: np.ndarray, tar: np.ndarray) -> float:
    """Area under the curve by trapezoids (exact for the step-with-diagonal-ties curve above)."""
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def equal_error_rate(far: np.ndarray, tar: np.ndarray) -> float:
    """The rate where FAR equals FRR (= 1 - TAR), linearly interpolated between curve points."""
    gap = far + tar - 1.0  # FAR - FRR: -1 at (0, 0), +1 at (1, 1), non-decreasing in between
    k = int(np.argmax(gap >= 0))
    if gap[k] == 0 or k == 0:
        return float(far[k])
    share = -gap[k - 1] / (gap[k] - gap[k - 1])
    return float(far[k - 1] + share * (far[k] - far[k - 1]))


def tar_at_far(far: np.ndarray, tar: np.ndarray, thresholds: np.ndarray, target: float,
               different_pairs: int) -> TarAtFar:
    """The highest TAR whose FAR is ``<= target`` (a real operating point, not interpolated)."""
    if not 0 <= target <= 1:
        raise ConfigError(f"target FAR must be in [0, 1], got {target}")
    allowed = np.flatnonzero(far <= target)
    k = int(allowed[np.argmax(tar[allowed])])  # far[0] == 0, so there is always one
    limited = target * different_pairs < 1
    return TarAtFar(target=target, tar=float(tar[k]), far=float(far[k]), threshold=float(thresholds[k]),
                    limited=bool(limited))


def best_threshold(distances: np.ndarray, same: np.ndarray, far: np.ndarray, tar: np.ndarray,
                   thresholds: np.ndarray) -> tuple[float, float]:
    """``(threshold, accuracy)`` with the highest accuracy on these pairs (the smallest such one).

    The threshold is put half-way to the next distinct distance (accuracy is the same anywhere
    in that gap), so it does not sit on one pair's distance.  Chosen on the pairs it is scored
    on: an optimistic figure.
    """
    positives, negatives = int(same.sum()), int((~same).sum())
    correct = tar * positives + (1 - far) * negatives
    finite = slice(0, len(thresholds) - 1)  # "accept infinite distances too" is no threshold
    k = int(np.argmax(correct[finite]))
    accuracy = float(correct[k] / (positives + negatives))
    low, high = thresholds[k], thresholds[k + 1]
    if not np.isfinite(low):  # best is to accept nothing: stay below the smallest distance
        return float(np.nextafter(high, -np.inf)) if np.isfinite(high) else 0.0, accuracy
    return float((low + high) / 2) if np.isfinite(high) else float(low), accuracy


def summarize(distances: Sequence[float] | np.ndarray, same: Sequence[bool] | np.ndarray,
              targets: Sequence[float] = (1e-2, 1e-3)) -> Roc:
    """Every number ``facepipe evaluate`` reports that depends only on distances and labels."""
    d, s = _labelled(distances, same)
    far, tar, thresholds = roc_curve(d, s)
    negatives = int((~s).sum())
    threshold, accuracy = best_threshold(d, s, far, tar, thresholds)
    return Roc(far=far, tar=tar, thresholds=thresholds, auc=auc(far, tar), eer=equal_error_rate(far, tar),
               best_threshold=threshold, best_accuracy=accuracy,
               tar_at_far=tuple(tar_at_far(far, tar, thresholds, t, negatives) for t in targets),
               same_pairs=int(s.sum()), different_pairs=negatives)


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right when accepting ``distance <= threshold``."""
    return float(np.mean((np.asarray(distances) <= threshold) == np.asarray(same, dtype=bool)))


__all__ = ["Roc", "TarAtFar", "accuracy_at", "auc", "best_threshold", "equal_error_rate", "roc_curve",
           "summarize", "tar_at_far"]
