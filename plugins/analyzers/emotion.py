"""The ``Emotion`` analyzer: deepface's facial-expression CNN (7 classes, 48x48 gray input).

Network (Keras 3, weights from deepface's ``facial_expression_model_weights.h5``, loaded by
position): Conv 64 5x5 - MaxPool 5/2 - Conv 64 3x3 - Conv 64 3x3 - AvgPool 3/2 - Conv 128 3x3 -
Conv 128 3x3 - AvgPool 3/2 - Flatten - Dense 1024 - Dropout - Dense 1024 - Dropout - Dense 7
softmax; ReLU after every convolution and hidden dense layer, all 'valid' padding.

Input, as deepface's ``analyze()``: the crop fitted into 224x224 (black padding, [0, 1], BGR),
converted with ``cv2.COLOR_BGR2GRAY``, resized to 48x48 (bilinear), values still in [0, 1].

Result: ``{"emotion": {label: percent}, "dominant_emotion": label}``; percentages are renormalised
to sum to 100, labels in deepface's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from facepipe import hookimpl
from facepipe.plugins.analyzers._common import labelled_results
from facepipe.plugins.analyzers._keras_analyzer import (
    KerasAnalyzer,
    KerasAnalyzerConfig,
    deepface_weight_file,
)
from facepipe.plugins.analyzers._spec import deepface_analyzer_spec

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GRAY_SIZE = 48

WEIGHTS = deepface_weight_file(
    "facial_expression_model_weights.h5",
    "deepface's FER-2013 facial expression CNN (Keras HDF5 weights, ~6 MB)",
)


class EmotionConfig(KerasAnalyzerConfig):
    """Options of deepface's emotion model (batch size, explicit weights, device)."""


def to_gray48(batch224: np.ndarray) -> np.ndarray:
    """deepface's emotion input from the shared 224x224 BGR [0, 1] batch: ``(N, 48, 48, 1)`` float32."""
    import cv2

    out = np.empty((len(batch224), GRAY_SIZE, GRAY_SIZE, 1), dtype=np.float32)
    for i, img in enumerate(np.asarray(batch224, dtype=np.float32)):
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        out[i, :, :, 0] = cv2.resize(gray, (GRAY_SIZE, GRAY_SIZE))
    return out


def build_emotion_model() -> Any:
    """The un-weighted Keras 3 model ``(N, 48, 48, 1) -> (N, 7)`` probabilities."""
    import keras

    L = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(GRAY_SIZE, GRAY_SIZE, 1)),
            L.Conv2D(64, 5, activation="relu"),
            L.MaxPooling2D(pool_size=5, strides=2),
            L.Conv2D(64, 3, activation="relu"),
            L.Conv2D(64, 3, activation="relu"),
            L.AveragePooling2D(pool_size=3, strides=2),
            L.Conv2D(128, 3, activation="relu"),
            L.Conv2D(128, 3, activation="relu"),
            L.AveragePooling2D(pool_size=3, strides=2),
            L.Flatten(),
            L.Dense(1024, activation="relu"),
            L.Dropout(0.2),
            L.Dense(1024, activation="relu"),
            L.Dropout(0.2),
            L.Dense(len(LABELS), activation="softmax"),
        ],
        name="deepface_emotion",
    )


class EmotionAnalyzer(KerasAnalyzer):
    """deepface's ``Emotion`` model: 7 expression percentages and the dominant one."""

    config_class = EmotionConfig
    action = "emotion"
    labels = LABELS
    weight_file = WEIGHTS
    manifest_name = "Emotion"

    def build_model(self) -> Any:
        return build_emotion_model()

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """BGR crops -> ``(N, 48, 48, 1)`` gray in [0, 1] (via deepface's 224x224 fit-and-pad)."""
        return to_gray48(super().preprocess(faces))

    def format_results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        return labelled_results("emotion", probabilities, LABELS, renormalize=True)


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(deepface_analyzer_spec(
        EmotionAnalyzer,
        name="Emotion",
        description="deepface's facial expression CNN (FER-2013 style, 7 emotions, 48x48 gray input)",
    ))
