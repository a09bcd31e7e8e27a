"""The one BGR uint8 check at the pipeline boundary (facepipe.preprocess.as_bgr_uint8)."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.errors import ImageTypeError
from facepipe.preprocess import as_bgr_uint8


def test_conforming_image_passes_untouched() -> None:
    img = np.zeros((4, 5, 3), np.uint8)
    assert as_bgr_uint8(img) is img


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_gray_becomes_three_equal_channels(shape: tuple[int, ...]) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(shape)
    out = as_bgr_uint8(gray)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert (out[:, :, 0] == out[:, :, 2]).all() and (out[:, :, 1] == gray.reshape(4, 5)).all()


def test_alpha_is_dropped_and_other_dtypes_clipped() -> None:
    bgra = np.full((2, 2, 4), 7, np.uint8)
    assert as_bgr_uint8(bgra).shape == (2, 2, 3)
    floats = np.array([[[-5.0, 100.4, 300.0]]])
    assert as_bgr_uint8(floats).tolist() == [[[0, 100, 255]]]


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (4, 5, 2), (4, 5, 5), (3,), (1, 2, 3, 3)])
def test_other_shapes_are_rejected(shape: tuple[int, ...]) -> None:
    with pytest.raises(ImageTypeError, match=r"expected a BGR image of shape \(H, W, 3\)"):
        as_bgr_uint8(np.zeros(shape, np.uint8))
