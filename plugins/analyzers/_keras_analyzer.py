"""Base class of deepface's four Keras attribute models (Age, Gender, Race, Emotion).

Each model is a Keras 3 network loaded from deepface's published ``.h5`` file by position
(:func:`facepipe.engines.keras_h5.load_h5_positional`, via the engines' shared
:class:`~facepipe.engines.keras_runner.KerasModelMixin`: lazy thread-safe build,
compiled inference, chunking by ``batch_size``).

Preprocessing is deepface's ``analyze()``: the BGR crop is fitted into 224x224 keeping its aspect
ratio, padded with black and scaled to [0, 1] (:func:`facepipe.preprocess.resize_pad_batch`).
Emotion then converts that to gray 48x48 (see :mod:`.emotion`).

Subclasses set ``action``, ``weight_file``, ``manifest_name``, ``labels`` and implement
:meth:`build_model` and :meth:`format_results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from facepipe.plugins.analyzers._common import chunks
from facepipe.engines.keras_runner import KerasModelConfig, KerasModelMixin
from facepipe.specs import WeightFile
from facepipe.types import Analyzer

#: deepface's release mirrors of its weight files (GitHub release first, Hugging Face second)
DEEPFACE_URLS = (
    "https://github.com/serengil/deepface_models/releases/download/v1.0/{name}",
    "https://huggingface.co/serengil/deepface/resolve/main/{name}",
)


def deepface_weight_file(name: str, description: str) -> WeightFile:
    """The :class:`WeightFile` of one of deepface's published ``.h5`` files (no checksum known)."""
    return WeightFile(
        name=name,
        urls=tuple(url.format(name=name) for url in DEEPFACE_URLS),
        sha256=None,
        deepface_name=name,
        description=description,
    )


class KerasAnalyzerConfig(KerasModelConfig):
    """Options shared by deepface's Keras attribute models (batch size, weights file, device)."""


class KerasAnalyzer(KerasModelMixin, Analyzer):
    """A deepface attribute model: ``preprocess`` -> ``forward`` (probabilities) -> ``format_results``."""

    config_class = KerasAnalyzerConfig
    #: deepface's common analyzer input (rows, cols)
    input_size: ClassVar[tuple[int, int]] = (224, 224)
    #: class labels in the model's output order (empty for age)
    labels: ClassVar[tuple[str, ...]] = ()
    #: output classes (defaults to the number of labels)
    num_classes: ClassVar[int] = 0

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """BGR crops -> float32 ``(N, 224, 224, 3)`` in [0, 1], aspect kept, black padding."""
        from facepipe.preprocess import resize_pad_batch

        return resize_pad_batch(faces, self.input_size)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` float32 of a preprocessed batch."""
        out = self.keras_forward(batch)
        return out.reshape(len(out), -1).astype(np.float32, copy=False)

    def probabilities(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of BGR crops, preprocessed and run ``batch_size`` at a time."""
        n = len(faces)
        if n == 0:
            return np.zeros((0, self.num_classes or len(self.labels)), dtype=np.float32)
        size = getattr(self.config, "batch_size", 32)
        # Preprocess chunk by chunk so memory stays bounded for long lists of faces.
        parts = [self.forward(self.preprocess(list(faces[part]))) for part in chunks(n, size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def format_results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        """deepface's result dicts from the probability rows."""
        raise NotImplementedError

    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """One result dict per BGR crop, with deepface's keys (see the subclass)."""
        if len(faces) == 0:
            return []
        return self.format_results(self.probabilities(faces))


class VggFaceAttributeAnalyzer(KerasAnalyzer):
    """Age / Gender / Race: deepface's VGG-Face trunk (to fc7) + a 1x1 convolution head + softmax.

    The three ``.h5`` files hold the trunk's 15 weighted layers and the head, in that order.
    """

    onnx_optimization = "extended"  # see facepipe.engines.onnx_runtime: 540 MB of weights

    def build_model(self) -> Any:
        from facepipe.engines.vgg_face import build_vgg_face_classifier

        return build_vgg_face_classifier(self.num_classes or len(self.labels))
