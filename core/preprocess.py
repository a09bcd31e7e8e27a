"""Resize/pad and input normalisation, as deepface does them (fact sheet §5.2, §5.3)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from facepipe.errors import ImageTypeError, UnimplementedError

NORMALIZATIONS = ("base", "raw", "Facenet", "Facenet2018", "VGGFace", "VGGFace2", "ArcFace")


def as_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` as the contract's detector input: BGR uint8 ``(H, W, 3)``.

    The single check at the pipeline boundary, so detectors can rely on the contract: gray
    ``(H, W)`` / ``(H, W, 1)`` is repeated to three channels, a fourth (alpha) channel dropped,
    other dtypes clipped to 0..255.  Anything else (no pixels, other channel counts) raises
    :class:`~facepipe.errors.ImageTypeError`.  A conforming image is returned as is (no copy).
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageTypeError(f"expected a BGR image of shape (H, W, 3), got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def resize_pad(face: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``face`` into ``size`` = (rows, cols) keeping its aspect ratio, pad with black.

    Returns float32 ``(rows, cols, C)`` in [0, 1] (uint8 / 0-255 input is divided by 255).
    Matches deepface's ``resize_image`` bit for bit with the same OpenCV build.
    """
    import cv2

    rows, cols = size
    img = np.asarray(face)
    if img.shape[0] > 0 and img.shape[1] > 0:
        factor = min(rows / img.shape[0], cols / img.shape[1])
        dsize = (int(img.shape[1] * factor), int(img.shape[0] * factor))
        img = cv2.resize(img, dsize)
        if img.ndim == 2:
            img = img[:, :, None]
        diff_0 = rows - img.shape[0]
        diff_1 = cols - img.shape[1]
        img = np.pad(
            img,
            ((diff_0 // 2, diff_0 - diff_0 // 2), (diff_1 // 2, diff_1 - diff_1 // 2), (0, 0)),
            "constant",
        )
    if img.shape[0:2] != (rows, cols):
        img = cv2.resize(img, (cols, rows))
        if img.ndim == 2:
            img = img[:, :, None]
    out = img.astype(np.float32)
    if out.max(initial=0.0) > 1:
        out = out / 255.0
    return out


def resize_pad_batch(faces: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """:func:`resize_pad` over a list of crops, stacked to ``(N, rows, cols, C)`` float32.

    uint8 crops are scaled to [0, 1] *before* resizing, as deepface resizes the [0, 1] face that
    ``extract_faces`` returns; resizing the 8-bit crop would round differently (~0.5 grey level).
    """
    return np.stack([resize_pad(f.astype(np.float32) / 255.0 if f.dtype == np.uint8 else f, size)
                     for f in faces]).astype(np.float32, copy=False)


def normalize_input(batch: np.ndarray, normalization: str = "base") -> np.ndarray:
    """Apply one of deepface's ``normalization`` schemes to a BGR batch in [0, 1]."""
    x = np.asarray(batch, dtype=np.float32)
    if normalization == "base":
        return x
    x = x * 255.0
    if normalization == "raw":
        return x
    if normalization == "Facenet":
        axes = tuple(range(1, x.ndim)) if x.ndim == 4 else None
        mean = x.mean(axis=axes, keepdims=axes is not None)
        std = x.std(axis=axes, keepdims=axes is not None)
        return (x - mean) / std
    if normalization == "Facenet2018":
        return x / 127.5 - 1
    if normalization == "VGGFace":
        return x - np.array([93.5940, 104.7624, 129.1863], dtype=np.float32)
    if normalization == "VGGFace2":
        return x - np.array([91.4953, 103.8827, 131.0912], dtype=np.float32)
    if normalization == "ArcFace":
        return (x - 127.5) / 128
    raise UnimplementedError(
        f"unimplemented normalization type {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}"
    )
