"""Box helpers shared by detector plugins (numpy only)."""

from __future__ import annotations

from typing import Literal

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, mode: Literal["union", "min"] = "union",
        pixel_offset: float = 0.0, drop_equal: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    ``boxes`` is ``(n, 4)`` x1, y1, x2, y2.  A box is dropped when its overlap with a kept,
    higher-scoring box is above ``threshold`` (or equal to it, with ``drop_equal``) — detectors
    differ on that edge and we keep each one's published behaviour.  ``mode="min"`` divides the
    intersection by the smaller area (MTCNN's last stage); ``pixel_offset=1`` counts box sides
    inclusively, as RetinaFace's reference code does.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = (np.asarray(boxes[:, i], dtype=np.float64) for i in range(4))
    areas = np.maximum(x2 - x1 + pixel_offset, 0.0) * np.maximum(y2 - y1 + pixel_offset, 0.0)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        iw = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + pixel_offset, 0.0)
        ih = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + pixel_offset, 0.0)
        inter = iw * ih
        denom = np.minimum(areas[best], areas[rest]) if mode == "min" else areas[best] + areas[rest] - inter
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap < threshold] if drop_equal else rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)
