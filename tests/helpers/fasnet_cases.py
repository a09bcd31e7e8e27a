"""The faces of the Fasnet parity check: deterministic synthetic images and dataset photos, with boxes.

Only the case list and deepface's numbers are committed (``tests/reference/parity/fasnet.json``);
the pixels are made again here: synthetic images from integer formulas (identical on every
machine), dataset photos decoded from ``$FACEPIPE_DATA`` (a digest of the decoded pixels tells
whether this machine's decoder gives the pixels the reference was made from).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tests.helpers.paths import PARITY

REFERENCE = PARITY / "fasnet.json"

#: (name, height, width) of the synthetic images
SYNTHETIC = (("gradient", 240, 320), ("rings", 200, 200), ("stripes", 180, 260))
#: dataset photos and the boxes (as fractions x, y, w, h of the photo) checked on them
PHOTOS = ("img1.jpg", "img2.jpg", "img3.jpg", "img4.jpg", "couple.jpg")
PHOTO_BOXES = ((0.30, 0.20, 0.35, 0.45), (0.0, 0.0, 0.5, 0.6), (0.55, 0.5, 0.45, 0.5))
#: boxes on the synthetic images: centred, at each corner (the patch slides inside), huge (the
#: scale is capped), tiny, and sticking out of the image
SYNTHETIC_BOXES = ((0.35, 0.3, 0.3, 0.35), (0.0, 0.0, 0.2, 0.25), (0.8, 0.75, 0.2, 0.25),
                   (0.05, 0.05, 0.9, 0.9), (0.5, 0.5, 0.03, 0.04), (0.7, 0.6, 0.5, 0.5))


def synthetic_image(name: str, height: int, width: int) -> np.ndarray:
    """A BGR uint8 image from integer arithmetic only (no RNG, no floats): the same everywhere."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    channels = []
    for c in range(3):
        if name == "gradient":
            v = x * 255 // width + (c * 60) + y * (c + 1) // 3
        elif name == "rings":
            v = ((x - width // 2) ** 2 + (y - height // 3) ** 2) // (40 + 25 * c) + 50 * c
        else:
            v = (x // (5 + c)) * 37 + (y // 9) * 23 + (x * y) // (300 + 50 * c)
        channels.append(v % 256)
    return np.stack(channels, axis=-1).astype(np.uint8)


def box_of(fractions: tuple[float, ...], height: int, width: int) -> list[int]:
    """Integer ``(x, y, w, h)`` from fractions of the image size (w, h at least 1)."""
    fx, fy, fw, fh = fractions
    return [int(fx * width), int(fy * height), max(int(fw * width), 1), max(int(fh * height), 1)]


def pixels_digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def read_photo(path: Path) -> np.ndarray:
    """A dataset photo as OpenCV decodes it (BGR uint8), as deepface loads files."""
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(path)
    return image


def cases(photo_dir: Path | None) -> list[dict]:
    """Every case: ``{"image": <name>, "box": [x, y, w, h], "pixels": <array>}``; photos only when
    ``photo_dir`` holds them."""
    out = []
    for name, height, width in SYNTHETIC:
        image = synthetic_image(name, height, width)
        out += [{"image": f"synthetic:{name}", "box": box_of(b, height, width), "pixels": image}
                for b in SYNTHETIC_BOXES]
    for photo in PHOTOS:
        path = photo_dir / photo if photo_dir is not None else None
        if path is None or not path.is_file():
            continue
        image = read_photo(path)
        height, width = image.shape[:2]
        out += [{"image": photo, "box": box_of(b, height, width), "pixels": image} for b in PHOTO_BOXES]
    return out
