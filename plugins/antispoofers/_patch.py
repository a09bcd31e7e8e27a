"""The context patch a MiniFASNet sees: the face box grown around its centre, kept inside the image.

MiniFASNet (Minivision's Silent-Face-Anti-Spoofing, used by deepface's ``Fasnet``) was trained on
patches that show the face together with its surroundings (a screen edge, a hand holding a
photo), so the box is scaled up (2.7x, 4x) rather than cut tightly.  The rule, as the networks
were trained with it:

* the scale is capped so the grown box fits the image (``(side - 1) / box side``);
* a box that sticks out of the image is slid back inside, keeping its size;
* corners are truncated to ints, the slice includes the far corner, and the patch is resized to
  the network's input with OpenCV's default bilinear interpolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h


def grown_box(image_w: int, image_h: int, box: Box | Sequence[float], scale: float) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` (inclusive) of ``box`` scaled by ``scale`` around its centre."""
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 1.0), max(h, 1.0)  # a degenerate box still gets a patch instead of dividing by 0
    scale = min(scale, (image_h - 1) / h, (image_w - 1) / w)
    half_w, half_h = w * scale / 2, h * scale / 2
    cx, cy = x + w / 2, y + h / 2
    left, right = _slide_inside(cx - half_w, cx + half_w, image_w - 1)
    top, bottom = _slide_inside(cy - half_h, cy + half_h, image_h - 1)
    return int(left), int(top), int(right), int(bottom)


def _slide_inside(low: float, high: float, last: int) -> tuple[float, float]:
    # First off the near edge, then off the far one (the far edge wins when the span is too long,
    # which the capped scale prevents).
    if low < 0:
        high, low = high - low, 0.0
    if high > last:
        low, high = low - (high - last), float(last)
    return low, high


def context_patch(image: np.ndarray, box: Box | Sequence[float], scale: float, size: int) -> np.ndarray:
    """The ``size`` x ``size`` patch of ``image`` (H, W, C) around ``box`` grown by ``scale``."""
    import cv2

    height, width = image.shape[:2]
    left, top, right, bottom = grown_box(width, height, box, scale)
    patch = image[max(top, 0):bottom + 1, max(left, 0):right + 1]
    return cv2.resize(patch, (size, size))
