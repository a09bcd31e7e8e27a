"""The ``Dlib`` recognizer: dlib's ResNet face descriptor (128-d), real weights from PyPI.

The weights ship in the ``face-recognition-models`` package; we locate the file without importing
that package (its ``__init__`` needs ``pkg_resources``, gone from current setuptools).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import recognizer_spec
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import PackageFile, WeightFile
from facepipe.types import Recognizer

RESNET_WEIGHTS = WeightFile(
    name="dlib_face_recognition_resnet_model_v1.dat",
    urls=("http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2",),
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    size=22_466_066,
    compression="bz2",
    package_files=(PackageFile(
        "face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat",
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    ),),
    deepface_name="dlib_face_recognition_resnet_model_v1.dat",
    description="dlib ResNet-29 face descriptor (CC0)",
)


#: deepface's published thresholds, confidence model and value range for Dlib
PUBLISHED = deepface_published("Dlib")


class DlibConfig(WeightsFileConfig):
    """Options of the Dlib recognizer."""

    num_jitters: int = Field(0, ge=0, le=100, description="random re-crops averaged per face (slower, steadier)")


class DlibRecognizer(Recognizer):
    """dlib's ``face_recognition_model_v1`` on 150x150 face chips, batched."""

    config_class = DlibConfig
    input_size = (150, 150)
    embedding_size = 128
    thresholds = PUBLISHED.thresholds
    config: DlibConfig

    def __init__(self, config: DlibConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._model: Any = None
        self._lock = threading.Lock()

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                import dlib

                path = self.weights_manager().path(RESNET_WEIGHTS, override=self.config.weights_path)
                self._model = dlib.face_recognition_model_v1(str(path))
            return self._model

    def prepare(self) -> None:
        self._get_model()

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """deepface's recipe: resize/pad to 150x150 in [0, 1], then RGB uint8 for dlib."""
        from facepipe.preprocess import resize_pad_batch

        batch = resize_pad_batch(faces, self.input_size)  # BGR, [0, 1]
        return np.ascontiguousarray((batch[..., ::-1] * 255).astype(np.uint8))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        model = self._get_model()
        chips = [np.ascontiguousarray(chip) for chip in batch]
        with self._lock:  # dlib's net object is not safe to share between threads
            vectors = model.compute_face_descriptor(chips, self.config.num_jitters)
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32).reshape(len(chips), 128)

    def close(self) -> None:
        self._model = None


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(recognizer_spec(
        DlibRecognizer,
        name="Dlib",
        aliases=("dlib-resnet",),
        description="dlib ResNet face descriptor, 128-d; weights ship in face-recognition-models",
        license="CC0 (weights), Boost (dlib)",
        weights=(RESNET_WEIGHTS,),
        requires=("dlib",),
        extra="dlib",
        published=PUBLISHED,
    ))
