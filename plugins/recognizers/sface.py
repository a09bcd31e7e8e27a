"""The ``SFace`` recognizer: OpenCV's ``FaceRecognizerSF`` running the SFace ONNX model, 128-d.

deepface feeds each face as a 112x112 BGR ``uint8`` image obtained from its [0, 1] float input
with ``(x * 255).astype(uint8)`` (truncation, not rounding) and calls ``feature()`` once per
face; OpenCV converts it to the network's blob itself.  facepipe does the same, so embeddings
match deepface's for the same crops.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facepipe import hookimpl
from facepipe.errors import InputShapeError, WeightsError
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import recognizer_spec
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import WeightFile
from facepipe.types import Recognizer

SFACE_WEIGHTS = WeightFile(
    name="face_recognition_sface_2021dec.onnx",
    urls=(
        "https://github.com/opencv/opencv_zoo/raw/main/models/face_recognition_sface/"
        "face_recognition_sface_2021dec.onnx",
    ),
    sha256=None,
    deepface_name="face_recognition_sface_2021dec.onnx",
    description="SFace (MobileFaceNet, sigmoid-constrained hypersphere loss) ONNX from the OpenCV zoo, ~37 MB",
)

INPUT_SIZE = (112, 112)
EMBEDDING_SIZE = 128


#: deepface's published thresholds, confidence model and value range for SFace
PUBLISHED = deepface_published("SFace")


class SFaceConfig(WeightsFileConfig):
    """Options of the SFace recognizer."""




def to_uint8_faces(batch: np.ndarray) -> np.ndarray:
    """deepface's conversion of a [0, 1] float batch to the uint8 images SFace receives.

    ``uint8`` input is returned unchanged.  Float input is multiplied by 255 in float32 and cast
    (truncating), as deepface does; values outside [0, 1] are clipped first instead of wrapping.
    """
    x = np.asarray(batch)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    scaled = x.astype(np.float32, copy=False) * np.float32(255)
    return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8))


class SFaceRecognizer(Recognizer):
    """SFace through ``cv2.FaceRecognizerSF``: 112x112 BGR faces -> raw 128-d features."""

    config_class = SFaceConfig
    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE
    thresholds = PUBLISHED.thresholds
    config: SFaceConfig

    def __init__(self, config: SFaceConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._model: Any = None
        self._lock = threading.Lock()

    def weights_path(self) -> Path:
        """``config.weights_path`` if set, else the weights manager's copy of the ONNX file."""
        return Path(self.weights_manager().path(SFACE_WEIGHTS, override=self.config.weights_path))

    def _recognizer(self) -> Any:
        # Called with self._lock held.
        if self._model is None:
            import cv2

            path = self.weights_path()
            try:
                self._model = cv2.FaceRecognizerSF.create(str(path), "")
            except cv2.error as exc:
                raise WeightsError(
                    f"OpenCV could not load the SFace model {path}: {exc}. Delete the file to have it "
                    "downloaded again, or point weights_path at face_recognition_sface_2021dec.onnx"
                ) from exc
        return self._model

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Resize/pad to 112x112 ([0, 1] floats, deepface's recipe), then uint8 as deepface does."""
        from facepipe.preprocess import resize_pad_batch

        return to_uint8_faces(resize_pad_batch(faces, self.input_size))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Features of a batch of 112x112 BGR faces: ``uint8`` as is, floats taken as [0, 1]."""
        faces = to_uint8_faces(batch)
        if faces.ndim != 4 or faces.shape[1:] != (*self.input_size, 3):
            raise InputShapeError(f"SFace expects a (N, 112, 112, 3) batch of BGR faces, got shape {faces.shape}")
        out = np.empty((len(faces), self.embedding_size), dtype=np.float32)
        # One OpenCV network object is not safe to run from several threads at once.
        with self._lock:
            model = self._recognizer()
            for i, face in enumerate(faces):
                out[i] = np.asarray(model.feature(np.ascontiguousarray(face)), dtype=np.float32).reshape(-1)
        return out

    def close(self) -> None:
        with self._lock:
            self._model = None


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(recognizer_spec(
        SFaceRecognizer,
        name="SFace",
        aliases=("sface-opencv",),
        description="SFace via OpenCV FaceRecognizerSF (ONNX), 112x112 input, 128-d embeddings",
        license="Apache-2.0 (OpenCV zoo SFace model)",
        weights=(SFACE_WEIGHTS,),
        requires=("cv2",),
        extra="opencv",
        published=PUBLISHED,
    ))
