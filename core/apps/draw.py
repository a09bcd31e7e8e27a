"""Drawing faces on an image with OpenCV: boxes, landmarks (eyes, nose, mouth) and labels.

One job: pixels.  Callers decide what a face is called (:func:`face_label` builds the usual
label from an identity, a detection confidence and analyzer attributes) and pass :class:`Mark`
objects; ``facepipe draw`` and the video stream both draw through :func:`draw_faces`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facepipe.errors import ConfigError, ExtraNotInstalledError

#: BGR colours
KNOWN = (0, 200, 0)  # a detected or identified face
UNKNOWN = (67, 67, 67)  # a face without identity (video with a gallery), or the whole image stand-in
_LANDMARK_COLORS = {"left_eye": (255, 128, 0), "right_eye": (255, 128, 0), "nose": (0, 215, 255),
                    "mouth_left": (60, 60, 255), "mouth_right": (60, 60, 255)}


@dataclass(frozen=True)
class Mark:
    """One face to draw: its area (box and any landmarks), a label and a colour (BGR)."""

    area: Any  # facepipe.pipeline.align.FacialArea (or anything with x, y, w, h and optional landmarks)
    label: str = ""
    color: tuple[int, int, int] = KNOWN


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ExtraNotInstalledError("drawing needs OpenCV: pip install 'facepipe[opencv]'") from None
    return cv2


def face_label(*, identity: str | None = None, confidence: float | None = None,
               attributes: Mapping[str, Any] | None = None) -> str:
    """``"alice 0.99 31 M happy"``: the identity's file stem, the detection confidence, then age,
    gender initial, dominant emotion and race, for whichever of them are known."""
    parts = []
    if identity is not None:
        parts.append(Path(identity).stem)
    if confidence is not None:
        parts.append(f"{confidence:.2f}")
    attributes = attributes or {}
    if "age" in attributes:
        parts.append(f"{int(attributes['age'])}")
    if "dominant_gender" in attributes:
        parts.append(str(attributes["dominant_gender"])[:1])
    for key in ("dominant_emotion", "dominant_race"):
        if key in attributes:
            parts.append(str(attributes[key]))
    return " ".join(parts)


def draw_faces(image: np.ndarray, marks: Sequence[Mark], *, landmarks: bool = True) -> np.ndarray:
    """A copy of the BGR ``image`` with each mark's box, landmarks (when ``landmarks`` and known)
    and label (on a filled strip above the box, or inside it at the top edge of the image)."""
    cv2 = _cv2()
    out = np.ascontiguousarray(image.copy())
    height, width = out.shape[:2]
    # Line widths and text follow the image size, so labels stay legible on large photos.
    thickness = max(1, round(max(height, width) / 400))
    scale = max(0.4, max(height, width) / 1200)
    for mark in marks:
        a = mark.area
        x, y, w, h = int(a.x), int(a.y), int(a.w), int(a.h)
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), mark.color, thickness)
        if landmarks:
            radius = max(2, round(min(w, h) / 40))
            for name, color in _LANDMARK_COLORS.items():
                point = getattr(a, name, None)
                if point is not None:
                    cv2.circle(out, (int(point[0]), int(point[1])), radius, color, -1)
        if mark.label:
            (tw, th), base = cv2.getTextSize(mark.label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            top = y - th - base - 2 if y - th - base - 2 >= 0 else y  # above the box when it fits
            cv2.rectangle(out, (x, top), (x + tw + 2, top + th + base + 2), mark.color, -1)
            cv2.putText(out, mark.label, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write a BGR image; the format follows the extension (.png, .jpg, ...)."""
    cv2 = _cv2()
    target = Path(path)
    if not target.suffix:
        raise ConfigError(f"say the image format through the file name's extension (e.g. .png): {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        ok, encoded = cv2.imencode(target.suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ConfigError(f"cannot write {target}: OpenCV does not write {target.suffix!r} images (try .png or .jpg)")
    target.write_bytes(encoded.tobytes())  # in Python: any Unicode path works
    return target


__all__ = ["KNOWN", "UNKNOWN", "Mark", "draw_faces", "face_label", "save_image"]
