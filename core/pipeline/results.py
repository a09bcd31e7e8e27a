"""Typed results with ``to_dict()`` in deepface's shapes (plain Python types, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from facepipe.pipeline.align import FacialArea

ColorOrder = Literal["rgb", "bgr", "gray"]


@dataclass(frozen=True)
class Face:
    """One face of one input image: where it is and its (aligned, not resized) crop."""

    image_index: int
    area: FacialArea
    confidence: float
    crop: np.ndarray = field(repr=False, compare=False)  # BGR uint8
    detected: bool = True  # False when the whole image stands in for a face (on_no_face="whole_image")
    is_real: bool | None = None  # set when an anti-spoofing plugin ran
    antispoof_score: float | None = None

    def face_array(self, color: ColorOrder = "rgb", normalize: bool = True) -> np.ndarray:
        """The crop in the requested colour order, optionally scaled to [0, 1] (float64, as deepface)."""
        crop = self.crop
        if color == "rgb":
            out = crop[:, :, ::-1]
        elif color == "bgr":
            out = crop
        elif color == "gray":
            import cv2

            out = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        else:
            from facepipe.errors import UnimplementedError

            raise UnimplementedError(f"color_face must be 'rgb', 'bgr' or 'gray', not {color!r}")
        out = np.ascontiguousarray(out)
        return out / 255.0 if normalize else out

    def to_dict(self, color: ColorOrder = "rgb", normalize: bool = True) -> dict[str, Any]:
        """deepface's ``extract_faces`` item: face, facial_area, confidence."""
        out: dict[str, Any] = {
            "face": self.face_array(color, normalize),
            "facial_area": self.area.to_dict(),
            "confidence": round(float(self.confidence), 2),
        }
        if self.is_real is not None:
            out["is_real"] = bool(self.is_real)
            out["antispoof_score"] = float(self.antispoof_score or 0.0)
        return out


@dataclass(frozen=True)
class Representation:
    """An embedding and the face it came from."""

    embedding: np.ndarray = field(repr=False)
    face: Face

    def to_dict(self) -> dict[str, Any]:
        """deepface's ``represent`` item: embedding (list of floats), facial_area, face_confidence."""
        return {
            "embedding": [float(v) for v in self.embedding],
            "facial_area": self.face.area.to_dict(),
            "face_confidence": round(float(self.face.confidence), 2),
        }


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of comparing two images (the closest pair of their faces decides)."""

    verified: bool
    distance: float
    threshold: float
    confidence: float
    model: str
    detector_backend: str
    similarity_metric: str
    facial_areas: dict[str, dict[str, Any]]
    time: float
    #: all distances, faces of image 1 (rows) x faces of image 2 (columns)
    distances: np.ndarray | None = field(default=None, repr=False, compare=False)
    best_pair: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        """deepface's verify dict."""
        return {
            "verified": bool(self.verified),
            "distance": float(self.distance),
            "threshold": float(self.threshold),
            "confidence": float(self.confidence),
            "model": self.model,
            "detector_backend": self.detector_backend,
            "similarity_metric": self.similarity_metric,
            "facial_areas": self.facial_areas,
            "time": round(float(self.time), 2),
        }


@dataclass(frozen=True)
class Analysis:
    """Attribute predictions for one face."""

    face: Face
    attributes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """deepface's analyze item: the attribute keys, then region and face_confidence."""
        out = dict(self.attributes)
        out["region"] = self.face.area.to_dict()
        out["face_confidence"] = round(float(self.face.confidence), 2)
        return out


def to_pandas(rows: list[dict[str, Any]]) -> Any:
    """A DataFrame of flat dict rows (needs pandas: ``pip install 'facepipe[pandas]'``)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas() needs pandas: pip install 'facepipe[pandas]'") from exc
    return pd.DataFrame(rows)
