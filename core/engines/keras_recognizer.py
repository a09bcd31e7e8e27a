"""The base of the recognizers whose network is one of deepface's Keras models.

A subclass sets ``weight_file``, ``manifest_name``, ``input_size``, ``embedding_size`` and
implements ``build_model()``; loading, batching, devices and the ONNX engine come from
:class:`~facepipe.engines.keras_runner.KerasModelMixin`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from facepipe.engines.keras_runner import KerasModelConfig, KerasModelMixin
from facepipe.types import Recognizer

__all__ = ["Normalization", "KerasRecognizerConfig", "KerasRecognizer"]

Normalization = Literal["base", "raw", "Facenet", "Facenet2018", "VGGFace", "VGGFace2", "ArcFace"]


class KerasRecognizerConfig(KerasModelConfig):
    """Options shared by the Keras recognizers."""

    normalization: Normalization = Field(
        "base",
        description="input normalisation applied after resize/pad (deepface's names; its "
        "thresholds were tuned with 'base')",
    )


class KerasRecognizer(KerasModelMixin, Recognizer):
    """A recognizer whose network is a Keras 3 model loaded from deepface's ``.h5`` weights."""

    config_class = KerasRecognizerConfig

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, embedding_size)`` embeddings of a preprocessed batch."""
        out = self.keras_forward(batch)
        return out.reshape(len(out), -1).astype(np.float32, copy=False)
