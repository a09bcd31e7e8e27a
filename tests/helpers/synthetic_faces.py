"""Synthetic "photos" for the hermetic pipeline (facepipe.testing's blob detector and grid recognizer)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from facepipe.testing import synthetic_face_image


def photo(identity: int, variant: int = 0) -> np.ndarray:
    """One person alone; ``variant`` moves, resizes and re-noises the face (another "photo")."""
    x, y, side = 20 + 13 * variant, 15 + 7 * variant, 96 - 6 * variant
    return synthetic_face_image([(identity, x, y, side)], noise=6, seed=100 * identity + variant)


def group_photo(*identities: int) -> np.ndarray:
    """Several people side by side, 70 px faces."""
    faces = [(identity, 10 + 90 * k, 40, 70) for k, identity in enumerate(identities)]
    return synthetic_face_image(faces, size=(160, 20 + 90 * len(identities)), noise=6, seed=7)


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of a BGR image (grey here, so channel order does not matter)."""
    out = io.BytesIO()
    Image.fromarray(image[:, :, ::-1].copy()).save(out, format="PNG")
    return out.getvalue()


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image))
    return path
