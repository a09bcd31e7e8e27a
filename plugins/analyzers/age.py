"""The ``Age`` analyzer: deepface's apparent-age model (VGG-Face trunk + 101-way head).

Network (Keras 3, weights from deepface's ``age_model_weights.h5``, loaded by position): the
VGG-Face convolutional trunk up to fc7 (shared builder in
:mod:`facepipe.engines.vgg_face`), then a 1x1 convolution to 101 channels, flatten and
softmax: one probability per age 0..100.

Input, as deepface's ``analyze()``: the BGR crop fitted into 224x224 (black padding), in [0, 1].

Result: ``{"age": sum_i i * p_i}`` - the expected value of the distribution as a Python float.
deepface's ``analyze()`` reports ``int()`` of this number (truncation); facepipe keeps the float
(the deepface-compatible facade may truncate it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from facepipe import hookimpl
from facepipe.plugins.analyzers._common import expected_values
from facepipe.plugins.analyzers._keras_analyzer import (
    KerasAnalyzerConfig,
    VggFaceAttributeAnalyzer,
    deepface_weight_file,
)
from facepipe.plugins.analyzers._spec import deepface_analyzer_spec

#: the age each output class stands for
AGES: tuple[float, ...] = tuple(float(i) for i in range(101))

WEIGHTS = deepface_weight_file(
    "age_model_weights.h5",
    "deepface's apparent-age model: VGG-Face trunk + 101-way head (Keras HDF5 weights, ~540 MB)",
)


class AgeConfig(KerasAnalyzerConfig):
    """Options of deepface's age model (batch size, explicit weights, device)."""


class AgeAnalyzer(VggFaceAttributeAnalyzer):
    """deepface's ``Age`` model: apparent age as the expected value over 101 age classes."""

    config_class = AgeConfig
    action = "age"
    num_classes = len(AGES)
    weight_file = WEIGHTS
    manifest_name = "Age"

    def format_results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        return [{"age": age} for age in expected_values(probabilities, AGES)]


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(deepface_analyzer_spec(
        AgeAnalyzer,
        name="Age",
        description="deepface's apparent-age model (VGG-Face trunk, expected value over ages 0-100)",
    ))
