"""The ``opencv`` detector: OpenCV's Haar cascades (frontal face + eye), as deepface uses them.

Faces come from ``detectMultiScale3(scaleFactor=1.1, minNeighbors=10, outputRejectLevels=True)``
on the whole BGR image, sorted top-to-bottom (deepface keeps the cascade's order, which changes
between runs when OpenCV uses several threads); the reported confidence is ``(100 - levelWeight) / 100`` clipped to
[0, 1] (deepface's formula — a monotone score, not a calibrated probability).  Eyes come from the
eye cascade run on the gray face crop: the two largest detections, the one with the smaller x is
the person's right eye.  Fewer than two eyes → no eyes.

:func:`haar_eyes` exposes the eye step on its own; the core's alignment uses it as the eye
fallback for detectors that return no eyes (deepface does the same).

The cascades ship inside ``opencv-python<5`` (``cv2/data``); opencv-python 5 ships none, in which
case the weights manager looks in its cache / downloads them from the OpenCV repository.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector, PluginConfig, Point

_FACE_SHA = "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0"
_EYE_SHA = "71cc64fc305a355dc60067880f6fbbd43dd155bd63ee3844661a1bda34b2fd8c"
_RAW = "https://raw.githubusercontent.com/opencv/opencv/4.x/data/haarcascades/"

FACE_CASCADE = WeightFile(
    name="haarcascade_frontalface_default.xml",
    urls=(_RAW + "haarcascade_frontalface_default.xml",),
    sha256=_FACE_SHA,
    package_files=(PackageFile("cv2", "data/haarcascade_frontalface_default.xml", _FACE_SHA),),
    deepface_name="haarcascade_frontalface_default.xml",
    description="OpenCV Haar cascade, frontal faces (Intel, BSD-3)",
)
EYE_CASCADE = WeightFile(
    name="haarcascade_eye.xml",
    urls=(_RAW + "haarcascade_eye.xml",),
    sha256=_EYE_SHA,
    package_files=(PackageFile("cv2", "data/haarcascade_eye.xml", _EYE_SHA),),
    deepface_name="haarcascade_eye.xml",
    description="OpenCV Haar cascade, eyes (Intel, BSD-3)",
)


class OpenCVConfig(PluginConfig):
    """Options of the Haar-cascade detector (defaults = deepface's)."""

    scale_factor: float = Field(1.1, gt=1.0, description="image pyramid step of the face cascade")
    min_neighbors: int = Field(10, ge=0, description="overlapping detections a face needs")
    min_size: int = Field(0, ge=0, description="smallest face side in pixels (0 = cascade minimum)")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="drop faces scoring below this")
    eye_scale_factor: float = Field(1.1, gt=1.0, description="pyramid step of the eye cascade")
    eye_min_neighbors: int = Field(10, ge=0, description="overlapping detections an eye needs")
    find_eyes: bool = Field(True, description="run the eye cascade on each face")
    face_cascade_path: Path | None = Field(None, description="explicit face cascade XML (overrides the manager)")
    eye_cascade_path: Path | None = Field(None, description="explicit eye cascade XML (overrides the manager)")


class _ThreadLocalCascade:
    """One ``cv2.CascadeClassifier`` per thread: OpenCV does not promise that concurrent
    ``detectMultiScale`` calls on one classifier are safe, and loading is cheap enough."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> Any:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            import cv2

            cascade = cv2.CascadeClassifier(str(self.path))
            if cascade.empty():
                from facepipe.errors import WeightsError

                raise WeightsError(f"OpenCV could not load the Haar cascade {self.path}; "
                                   "the file is missing or not a cascade XML")
            self._local.cascade = cascade
        return cascade


def _box_tuple(box: Any) -> tuple[float, float, float, float]:
    if hasattr(box, "x"):
        return float(box.x), float(box.y), float(box.w), float(box.h)
    x, y, w, h = box
    return float(x), float(y), float(w), float(h)


def _eyes_in_crop(cascade: Any, image: np.ndarray, box: Any, scale_factor: float = 1.1,
                  min_neighbors: int = 10) -> tuple[Point | None, Point | None]:
    import cv2

    x, y, w, h = _box_tuple(box)
    x0, y0 = max(int(x), 0), max(int(y), 0)
    crop = image[y0:int(y + h), x0:int(x + w)]
    if crop.size == 0:
        return None, None
    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    eyes = cascade.detectMultiScale(gray, scale_factor, min_neighbors)
    if len(eyes) < 2:
        return None, None
    # The two largest boxes by area; ties broken by position, not by the cascade's output order
    # (which varies with OpenCV's threading), so the choice is reproducible.
    a, b = sorted((tuple(int(v) for v in e) for e in eyes), key=lambda e: (-e[2] * e[3], e[1], e[0]))[:2]
    right, left = (a, b) if a[0] < b[0] else (b, a)  # smaller x = image-left = person's right eye
    right_eye = (x0 + right[0] + right[2] / 2.0, y0 + right[1] + right[3] / 2.0)
    left_eye = (x0 + left[0] + left[2] / 2.0, y0 + left[1] + left[3] / 2.0)
    return left_eye, right_eye


_eye_cascades: dict[str, _ThreadLocalCascade] = {}
_eye_lock = threading.Lock()


def _shared_eye_cascade(path: Path | None = None) -> _ThreadLocalCascade:
    if path is None:
        from facepipe.weights import default_manager

        path = default_manager().path(EYE_CASCADE)
    key = str(path)
    with _eye_lock:
        if key not in _eye_cascades:
            _eye_cascades[key] = _ThreadLocalCascade(Path(path))
        return _eye_cascades[key]


def haar_eyes(image_bgr: np.ndarray, box: Any, *, cascade_path: Path | None = None
              ) -> tuple[Point | None, Point | None]:
    """Eye centres of one face with OpenCV's eye cascade: ``(left_eye, right_eye)``.

    ``box`` is ``(x, y, w, h)`` (or any object with those attributes, e.g. a
    :class:`DetectedFace`) in ``image_bgr``'s coordinates; the eyes are returned in the same
    coordinates, person-centric (``left_eye`` has the larger x on a frontal face).  Both are
    ``None`` unless at least two eyes are found.  The cascade is loaded once (per thread).
    """
    return _eyes_in_crop(_shared_eye_cascade(cascade_path).get(), image_bgr, box)


class OpenCVDetector(Detector):
    """Haar-cascade face detector with Haar eye landmarks (deepface's ``opencv`` backend)."""

    config_class = OpenCVConfig
    provides_eyes = True

    def __init__(self, config: OpenCVConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        cfg: OpenCVConfig = self.config  # type: ignore[assignment]
        face_path = self.weights_manager().path(FACE_CASCADE, override=cfg.face_cascade_path)
        self._face = _ThreadLocalCascade(Path(face_path))
        self._face.get()  # load now: a broken file fails at construction, not at first image
        self._eye: _ThreadLocalCascade | None = None
        if cfg.find_eyes:
            eye_path = self.weights_manager().path(EYE_CASCADE, override=cfg.eye_cascade_path)
            self._eye = _ThreadLocalCascade(Path(eye_path))
            self._eye.get()

    def _detect_one(self, image: np.ndarray) -> list[DetectedFace]:
        cfg: OpenCVConfig = self.config  # type: ignore[assignment]
        height, width = image.shape[:2]
        min_size = (cfg.min_size, cfg.min_size)
        boxes, _levels, weights = self._face.get().detectMultiScale3(
            image, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors, minSize=min_size,
            outputRejectLevels=True)
        faces: list[DetectedFace] = []
        # The cascade's output order depends on OpenCV's thread scheduling (it varies from run to
        # run with several threads; deepface passes it on as is): sort top-to-bottom, then
        # left-to-right, so results are reproducible.
        found = sorted(zip((tuple(int(v) for v in b) for b in boxes), np.asarray(weights).reshape(-1)),
                       key=lambda item: (item[0][1], item[0][0], item[0][2]))
        for (x, y, w, h), level_weight in found:
            confidence = float(np.clip((100.0 - float(level_weight)) / 100.0, 0.0, 1.0))
            if confidence < cfg.min_confidence:
                continue
            left_eye = right_eye = None
            if self._eye is not None:
                left_eye, right_eye = _eyes_in_crop(self._eye.get(), image, (x, y, w, h),
                                                    cfg.eye_scale_factor, cfg.eye_min_neighbors)
            faces.append(DetectedFace(x=x, y=y, w=w, h=h, confidence=confidence,
                                      left_eye=left_eye, right_eye=right_eye).clipped(width, height))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        # Cascades have no batch mode; each image is scanned on its own.
        return [self._detect_one(np.ascontiguousarray(img)) for img in images]


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="opencv",
        aliases=("haar", "haarcascade", "opencv-haar"),
        factory="facepipe.plugins.detectors.opencv:OpenCVDetector",
        config=OpenCVConfig,
        weights=(FACE_CASCADE, EYE_CASCADE),
        requires=("cv2",),
        extra="opencv",
        license="BSD-3-Clause (OpenCV cascades, Intel License Agreement)",
        # its eye cascade also serves the pipeline for detectors that give no eyes
        eye_locator="facepipe.plugins.detectors.opencv:haar_eyes",
        description="OpenCV Haar cascades: frontal faces + eyes (fast, frontal only, coarse score)",
    ))
