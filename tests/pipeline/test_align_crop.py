"""The aligned crop: the window-only warp matches rotating deepface's whole 2x context patch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.helpers.extras import need
cv2 = need("cv2")

from facepipe.pipeline.align import _project_box, aligned_crop, context_patch, rotation_angle  # noqa: E402


def _whole_patch_reference(image: np.ndarray, x: int, y: int, w: int, h: int,
                           left_eye: tuple[float, float], right_eye: tuple[float, float]) -> np.ndarray:
    """deepface's way, literally: zero-filled 2x patch, rotate all of it, cut the face window."""
    angle = rotation_angle(left_eye, right_eye)
    patch = context_patch(image, x, y, w, h)
    ph, pw = patch.shape[:2]
    matrix = cv2.getRotationMatrix2D((pw // 2, ph // 2), angle, 1.0)
    rotated = cv2.warpAffine(patch, matrix, (pw, ph), flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    x1, y1, x2, y2 = _project_box(int(0.5 * w), int(0.5 * h), w, h, angle, pw, ph)
    return rotated[y1:y2, x1:x2]


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return cv2.resize(small, (800, 600), interpolation=cv2.INTER_CUBIC)  # smooth, photo-like


@pytest.mark.parametrize("box", [(300, 200, 180, 200), (0, 0, 150, 150), (700, 480, 100, 120)],
                         ids=["inside", "top-left corner", "bottom-right corner"])
@pytest.mark.parametrize("tilt", [-23.0, -4.0, 7.5, 31.0])
def test_window_warp_matches_the_whole_patch_rotation(box: tuple[int, int, int, int], tilt: float) -> None:
    image = _photo()
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 3
    dx, dy = 0.2 * w * math.cos(math.radians(tilt)), 0.2 * w * math.sin(math.radians(tilt))
    right_eye, left_eye = (math.floor(cx - dx), math.floor(cy - dy)), (math.floor(cx + dx), math.floor(cy + dy))
    want = _whole_patch_reference(image, x, y, w, h, left_eye, right_eye)
    got = aligned_crop(image, x, y, w, h, left_eye, right_eye)
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    # the same geometry; only OpenCV's fixed-point sub-pixel rounding may differ
    assert (diff > 0).mean() < 0.02 and diff.max() <= 12
    # black where the rotated window reaches outside the photo, as in the zero-filled patch
    black_got, black_want = (got.reshape(-1, 3).max(1) == 0), (want.reshape(-1, 3).max(1) == 0)
    assert (black_got != black_want).mean() < 0.01
    if box[0] in (0, 700):
        assert black_want.any()  # the corner cases do reach outside


def test_level_eyes_give_the_box_itself() -> None:
    image = _photo(1)
    crop = aligned_crop(image, 100, 50, 120, 140, (190.0, 90.0), (130.0, 90.0))
    assert np.array_equal(crop, image[50:190, 100:220])
