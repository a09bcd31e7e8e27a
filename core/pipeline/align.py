"""Crop, expand and align faces (deepface's algorithm, fact sheet §3), one face at a time.

deepface pads the whole image by 50 % on every side before detecting (4x the pixels) so that
rotation never runs out of image.  facepipe detects on the original image and, per face, rotates
only a context patch twice the size of the box, filled with black where it leaves the image — the
same pixels deepface's padded image would give, at a fraction of the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facepipe.types import DetectedFace, Point


@dataclass(frozen=True)
class FacialArea:
    """A face's box and landmarks in original-image pixels (ints), deepface's ``facial_area``."""

    x: int
    y: int
    w: int
    h: int
    left_eye: tuple[int, int] | None = None
    right_eye: tuple[int, int] | None = None
    nose: tuple[int, int] | None = None
    mouth_left: tuple[int, int] | None = None
    mouth_right: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "x": self.x, "y": self.y, "w": self.w, "h": self.h,
            "left_eye": self.left_eye, "right_eye": self.right_eye,
        }
        for key in ("nose", "mouth_left", "mouth_right"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def expand_box(x: int, y: int, w: int, h: int, percentage: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Grow a box by ``percentage`` around its centre, clamped to the image (deepface's rule)."""
    if percentage <= 0:
        return x, y, w, h
    ew = w + int(w * percentage / 100)
    eh = h + int(h * percentage / 100)
    x = max(0, x - int((ew - w) / 2))
    y = max(0, y - int((eh - h) / 2))
    return x, y, min(width - x, ew), min(height - y, eh)


def rotation_angle(left_eye: Point | None, right_eye: Point | None) -> float:
    """Degrees to rotate so the eyes are level (0 when an eye is missing)."""
    if left_eye is None or right_eye is None:
        return 0.0
    return float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))


def context_patch(image: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """The region ``[y-h/2 : y+h+h/2, x-w/2 : x+w+w/2]``, zero-filled outside the image."""
    rx, ry = int(0.5 * w), int(0.5 * h)
    top, left = y - ry, x - rx
    ph, pw = h + 2 * ry, w + 2 * rx
    patch = np.zeros((ph, pw) + image.shape[2:], dtype=image.dtype)
    sy0, sx0 = max(top, 0), max(left, 0)
    sy1, sx1 = min(top + ph, image.shape[0]), min(left + pw, image.shape[1])
    if sy1 > sy0 and sx1 > sx0:
        patch[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = image[sy0:sy1, sx0:sx1]
    return patch


def _project_box(rx: int, ry: int, w: int, h: int, angle: float, pw: int, ph: int) -> tuple[int, int, int, int]:
    """Where the face box lands after rotating the patch by ``angle`` about its centre."""
    direction = 1 if angle >= 0 else -1
    rad = math.radians(abs(angle) % 360)
    cx = (rx + rx + w) / 2 - pw / 2
    cy = (ry + ry + h) / 2 - ph / 2
    nx = cx * math.cos(rad) + cy * direction * math.sin(rad) + pw / 2
    ny = -cx * direction * math.sin(rad) + cy * math.cos(rad) + ph / 2
    x1 = int(max(nx - w / 2, 0))
    y1 = int(max(ny - h / 2, 0))
    x2 = int(min(nx + w / 2, pw))
    y2 = int(min(ny + h / 2, ph))
    return x1, y1, x2, y2


def aligned_crop(image: np.ndarray, x: int, y: int, w: int, h: int,
                 left_eye: Point | None, right_eye: Point | None) -> np.ndarray:
    """The face rotated so the eyes are level: deepface's rotation of a 2x context patch about its
    centre, then the face-sized window around where the face landed.

    Only that window is computed: one affine warp straight from the image (outside it, zeros:
    the same as the zero-filled patch, since the window never samples beyond the patch), a
    quarter of the pixels of rotating the whole patch.
    """
    import cv2

    angle = rotation_angle(left_eye, right_eye)
    if angle == 0.0:
        return image[y:y + h, x:x + w]  # the box lies inside the image (crop_face clamps it)
    rx, ry = int(0.5 * w), int(0.5 * h)
    ph, pw = h + 2 * ry, w + 2 * rx  # the context patch, whose corner is (x - rx, y - ry)
    matrix = cv2.getRotationMatrix2D((pw // 2, ph // 2), angle, 1.0)
    x1, y1, x2, y2 = _project_box(rx, ry, w, h, angle, pw, ph)
    if x2 <= x1 or y2 <= y1:
        return image[y:y, x:x]
    # patch coordinates = image coordinates - corner; output = rotated patch - window corner
    matrix[:, 2] -= matrix[:, :2] @ np.array([x - rx, y - ry], dtype=np.float64) + np.array([x1, y1])
    return cv2.warpAffine(image, matrix, (x2 - x1, y2 - y1), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _pixel(p: Point | None) -> Point | None:
    """The whole pixel holding ``p`` (floor, as deepface's int() on padded, positive coordinates)."""
    return None if p is None else (float(math.floor(p[0])), float(math.floor(p[1])))


def _int_point(p: Point | None, width: int, height: int) -> tuple[int, int] | None:
    if p is None:
        return None
    px, py = int(p[0]), int(p[1])
    if not (0 <= px < width and 0 <= py < height):
        return None  # deepface's landmark sanitisation
    return (px, py)


def crop_face(image: np.ndarray, face: DetectedFace, *, align: bool = True,
              expand_percentage: float = 0) -> tuple[np.ndarray, FacialArea]:
    """The (aligned) crop of one detected face and its facial area in image pixels."""
    height, width = image.shape[:2]
    x, y, w, h = int(face.x), int(face.y), int(face.w), int(face.h)
    x, y, w, h = expand_box(max(x, 0), max(y, 0), w, h, expand_percentage, width, height)
    w, h = max(min(w, width - x), 0), max(min(h, height - y), 0)
    if align:
        # deepface's detectors report whole-pixel eyes and it levels those; sub-pixel eyes would
        # tilt the crop by a fraction of a degree and move embeddings measurably.
        crop = aligned_crop(image, x, y, w, h, _pixel(face.left_eye), _pixel(face.right_eye))
    else:
        crop = image[y:y + h, x:x + w]
    area = FacialArea(
        x=x, y=y, w=w, h=h,
        left_eye=_int_point(face.left_eye, width, height),
        right_eye=_int_point(face.right_eye, width, height),
        nose=_int_point(face.nose, width, height),
        mouth_left=_int_point(face.mouth_left, width, height),
        mouth_right=_int_point(face.mouth_right, width, height),
    )
    return np.ascontiguousarray(crop), area


def pad_for_detection(image: np.ndarray) -> tuple[np.ndarray, int, int]:
    """deepface's 50 % black border (for ``pad_before_detect``); returns (padded, dx, dy)."""
    height, width = image.shape[:2]
    dy, dx = int(0.5 * height), int(0.5 * width)
    padded = np.zeros((height + 2 * dy, width + 2 * dx) + image.shape[2:], dtype=image.dtype)
    padded[dy:dy + height, dx:dx + width] = image
    return padded, dx, dy


def shrink_for_detection(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The image scaled so its longer side is at most ``max_side``, and the scale used."""
    longest = max(image.shape[:2])
    if max_side is None or longest <= max_side:
        return image, 1.0
    import cv2

    scale = max_side / longest
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def scale_face(face: DetectedFace, factor: float) -> DetectedFace:
    """Multiply a face's box and landmarks by ``factor``."""
    if factor == 1.0:
        return face

    def mul(p: Point | None) -> Point | None:
        return None if p is None else (p[0] * factor, p[1] * factor)

    return face.with_(x=face.x * factor, y=face.y * factor, w=face.w * factor, h=face.h * factor,
                      left_eye=mul(face.left_eye), right_eye=mul(face.right_eye), nose=mul(face.nose),
                      mouth_left=mul(face.mouth_left), mouth_right=mul(face.mouth_right))


def shift_face(face: DetectedFace, dx: float, dy: float) -> DetectedFace:
    """Move a face's box and landmarks by (dx, dy)."""

    def move(p: Point | None) -> Point | None:
        return None if p is None else (p[0] + dx, p[1] + dy)

    return face.with_(x=face.x + dx, y=face.y + dy, left_eye=move(face.left_eye), right_eye=move(face.right_eye),
                      nose=move(face.nose), mouth_left=move(face.mouth_left), mouth_right=move(face.mouth_right))
