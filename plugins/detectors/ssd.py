"""``ssd``: OpenCV's ResNet-10 SSD face detector (Caffe, 300x300 input) run by ``cv2.dnn``.

Mean subtraction — a deliberate difference from deepface: the published model was trained with
the BGR mean (104, 177, 123) subtracted (that is what OpenCV's own face-detector sample does);
deepface feeds raw pixels (quirk 9).  facepipe subtracts the mean by default; set
``mean=(0, 0, 0)`` to reproduce deepface's input exactly.

The network returns ``(1, 1, N, 7)`` rows ``[image_id, label, score, x1, y1, x2, y2]`` with
corners relative to the image; :func:`decode_detections` turns them into faces.  The model has
no landmarks (the core's Haar eye fallback supplies eyes).
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

PROTOTXT = WeightFile(
    name="deploy.prototxt",
    urls=("https://github.com/opencv/opencv/raw/3.4.0/samples/dnn/face_detector/deploy.prototxt",),
    deepface_name="deploy.prototxt",
    description="network definition of OpenCV's res10 SSD face detector (BSD-3)",
)
CAFFEMODEL = WeightFile(
    name="res10_300x300_ssd_iter_140000.caffemodel",
    urls=("https://github.com/opencv/opencv_3rdparty/raw/dnn_samples_face_detector_20170830/"
          "res10_300x300_ssd_iter_140000.caffemodel",),
    deepface_name="res10_300x300_ssd_iter_140000.caffemodel",
    description="weights of OpenCV's res10 SSD face detector (BSD-3)",
)

#: the BGR mean the published model was trained with
TRAINING_MEAN = (104.0, 177.0, 123.0)
#: class id of "face" in the detector's output (0 is background)
FACE_LABEL = 1


class SsdConfig(WeightsFileConfig):
    """Options of the OpenCV SSD detector."""

    confidence_threshold: float = Field(0.9, ge=0.0, le=1.0, description="minimum SSD score (deepface: 0.9)")
    mean: tuple[float, float, float] = Field(
        TRAINING_MEAN, description="BGR mean subtracted from the 300x300 input; (0, 0, 0) = deepface")
    input_size: int = Field(300, ge=32, description="side of the square network input")
    batch_size: int = Field(1, ge=1, description="images per network call (the output carries image ids)")
    prototxt_path: Path | None = Field(None, description="explicit deploy.prototxt (overrides the manager)")


def decode_detections(output: np.ndarray, sizes: Sequence[tuple[int, int]], threshold: float
                      ) -> list[list[DetectedFace]]:
    """Faces per image from an SSD ``DetectionOutput`` blob.

    ``output`` has rows ``[image_id, label, score, x1, y1, x2, y2]`` (any leading shape, e.g.
    ``(1, 1, N, 7)``) with corners in [0, 1] of the network input; ``sizes`` are the original
    ``(width, height)`` of the images in the batch.  Keeps label :data:`FACE_LABEL` with
    ``score >= threshold``, scales corners to each image, clips, drops empty boxes; best first.
    """
    rows = np.asarray(output, dtype=np.float64).reshape(-1, 7)
    rows = rows[np.isfinite(rows).all(axis=1)]
    rows = rows[(rows[:, 1] == FACE_LABEL) & (rows[:, 2] >= threshold)]
    rows = rows[np.argsort(-rows[:, 2], kind="stable")]
    result: list[list[DetectedFace]] = [[] for _ in sizes]
    for image_id, _, score, x1, y1, x2, y2 in rows:
        k = int(image_id)
        if not 0 <= k < len(sizes):
            continue
        width, height = sizes[k]
        face = DetectedFace(x=x1 * width, y=y1 * height, w=(x2 - x1) * width, h=(y2 - y1) * height,
                            confidence=float(score)).clipped(width, height)
        if face.w > 0 and face.h > 0:
            result[k].append(face)
    return result


class SsdDetector(Detector):
    """res10 300x300 SSD through OpenCV DNN; boxes and scores, no landmarks."""

    config_class = SsdConfig
    provides_eyes = False

    def __init__(self, config: SsdConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        import cv2

        cfg: SsdConfig = self.config  # type: ignore[assignment]
        prototxt = self._path(cfg.prototxt_path, PROTOTXT, "prototxt_path")
        model = self._path(cfg.weights_path, CAFFEMODEL, "weights_path")
        try:
            self._net = cv2.dnn.readNetFromCaffe(str(prototxt), str(model))
        except cv2.error as exc:
            raise WeightsError(f"OpenCV could not load the SSD model ({prototxt}, {model}): {exc}; "
                               "delete the files so that they are downloaded again") from exc
        if self._net.empty():
            raise WeightsError(f"OpenCV loaded an empty network from {prototxt} and {model}")
        self._lock = threading.Lock()  # a cv2.dnn.Net is not safe to share between threads

    def _path(self, explicit: Path | None, wf: WeightFile, key: str) -> Path:
        path = Path(self.weights_manager().path(wf, override=explicit))
        if not path.is_file():
            raise WeightsError(f"ssd.{key}: {path} does not exist")
        return path

    def blob(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The network input for BGR uint8 images: each resized to the square input, the mean
        subtracted, NCHW float32, no channel swap."""
        import cv2

        cfg: SsdConfig = self.config  # type: ignore[assignment]
        side = cfg.input_size
        resized = [cv2.resize(img, (side, side)) for img in images]
        return cv2.dnn.blobFromImages(resized, 1.0, (side, side), cfg.mean, swapRB=False, crop=False)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images; ``batch_size`` images share a network call."""
        cfg: SsdConfig = self.config  # type: ignore[assignment]
        results: list[list[DetectedFace]] = []
        for start in range(0, len(images), cfg.batch_size):
            chunk = list(images[start:start + cfg.batch_size])  # BGR uint8: the pipeline checks the contract
            blob = self.blob(chunk)
            with self._lock:
                self._net.setInput(blob)
                output = self._net.forward()
            sizes = [(img.shape[1], img.shape[0]) for img in chunk]
            results.extend(decode_detections(output, sizes, cfg.confidence_threshold))
        return results


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="ssd",
        aliases=("opencv_ssd", "res10"),
        factory="facepipe.plugins.detectors.ssd:SsdDetector",
        config=SsdConfig,
        weights=(PROTOTXT, CAFFEMODEL),
        requires=("cv2",),
        extra="opencv",
        license="BSD-3-Clause (OpenCV face detector model)",
        provides_eyes=False,
        description="OpenCV res10 300x300 SSD (Caffe via cv2.dnn); boxes only, eyes from the Haar fallback",
    ))
