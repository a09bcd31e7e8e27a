"""``yunet``: OpenCV's YuNet face detector (``cv2.FaceDetectorYN``, OpenCV ≥ 4.8).

As in deepface, an image whose longer side exceeds ``max_size`` (640) is shrunk to that size
before detection (YuNet misses faces on very large inputs) and the results are scaled back.
YuNet reports, per face, ``x, y, w, h``, then the right eye, left eye, nose tip, right and left
mouth corners (the person's sides), then the score; facepipe keeps all five points.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.errors import WeightsError
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, WeightFile
from facepipe.types import DetectedFace, Detector

YUNET_WEIGHTS = WeightFile(
    name="face_detection_yunet_2023mar.onnx",
    urls=("https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
          "face_detection_yunet_2023mar.onnx",),
    deepface_name="face_detection_yunet_2023mar.onnx",
    description="YuNet 2023mar face detector (ONNX, MIT, OpenCV Zoo)",
)

#: person-centric landmark names in YuNet's output column order (columns 4..13)
LANDMARKS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


class YunetConfig(WeightsFileConfig):
    """Options of the YuNet detector (deepface defaults)."""

    score_threshold: float = Field(0.9, ge=0.0, le=1.0, description="minimum face score")
    nms_threshold: float = Field(0.3, gt=0.0, le=1.0, description="IoU threshold of the NMS")
    top_k: int = Field(5000, ge=1, description="candidates kept before NMS")
    max_size: int | None = Field(
        640, ge=32, description="shrink images whose longer side exceeds this (None: never)")


def faces_from_yunet(rows: np.ndarray | None, scale: tuple[float, float], width: int, height: int
                     ) -> list[DetectedFace]:
    """Turn ``FaceDetectorYN.detect`` rows ``(n, 15)`` found on an image resized by
    ``scale`` = (sx, sy) into faces in the coordinates of the original ``width`` x ``height``
    image (boxes clipped, so YuNet's negative corners become 0 as in deepface)."""
    if rows is None:
        return []
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 15)
    sx, sy = scale
    faces = []
    for row in rows:
        pts = row[4:14].reshape(5, 2) / (sx, sy)
        named = {name: (float(p[0]), float(p[1])) for name, p in zip(LANDMARKS, pts)}
        x, y, w, h = (row[:4] / (sx, sy, sx, sy)).tolist()
        faces.append(DetectedFace(x=x, y=y, w=w, h=h, confidence=float(row[14]), **named).clipped(width, height))
    return faces


class YunetDetector(Detector):
    """YuNet through ``cv2.FaceDetectorYN``; eyes, nose and mouth corners."""

    config_class = YunetConfig
    provides_eyes = True

    def __init__(self, config: YunetConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        import cv2

        cfg: YunetConfig = self.config  # type: ignore[assignment]
        if not hasattr(cv2, "FaceDetectorYN"):
            raise WeightsError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; install opencv-python>=4.8")
        path = Path(self.weights_manager().path(YUNET_WEIGHTS, override=cfg.weights_path))
        try:
            self._model = cv2.FaceDetectorYN.create(str(path), "", (320, 320), cfg.score_threshold,
                                                    cfg.nms_threshold, cfg.top_k)
        except cv2.error as exc:
            raise WeightsError(f"OpenCV could not load the YuNet model {path}: {exc}; "
                               "delete it so that it is downloaded again") from exc
        self._lock = threading.Lock()  # the input size is state of the shared detector

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images (one network call per image: input sizes differ)."""
        return [self._detect_one(img) for img in images]

    def _detect_one(self, img: np.ndarray) -> list[DetectedFace]:
        import cv2

        cfg: YunetConfig = self.config  # type: ignore[assignment]
        arr = np.asarray(img)  # BGR uint8 (H, W, 3): the pipeline checks the contract
        height, width = arr.shape[:2]
        if cfg.max_size is not None and max(height, width) > cfg.max_size:
            ratio = cfg.max_size / max(height, width)
            arr = cv2.resize(arr, (max(1, int(width * ratio)), max(1, int(height * ratio))))
        # per-axis factors of the resize actually done (int() rounding makes them differ slightly)
        scale = (arr.shape[1] / width, arr.shape[0] / height)
        with self._lock:
            self._model.setInputSize((arr.shape[1], arr.shape[0]))
            _, rows = self._model.detect(np.ascontiguousarray(arr))
        return faces_from_yunet(rows, scale, width, height)


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="yunet",
        factory="facepipe.plugins.detectors.yunet:YunetDetector",
        config=YunetConfig,
        weights=(YUNET_WEIGHTS,),
        requires=("cv2",),
        extra="opencv",
        license="MIT (YuNet model, OpenCV Zoo); Apache-2.0 (OpenCV)",
        description="YuNet (OpenCV FaceDetectorYN); eyes, nose, mouth corners",
    ))
