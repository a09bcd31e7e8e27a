"""The ``Gender`` analyzer: deepface's gender model (VGG-Face trunk + 2-way head).

Network (Keras 3, weights from deepface's ``gender_model_weights.h5``, loaded by position): the
VGG-Face convolutional trunk up to fc7 (:mod:`facepipe.engines.vgg_face`), then a 1x1
convolution to 2 channels, flatten and softmax over ``("Woman", "Man")``.

Input, as deepface's ``analyze()``: the BGR crop fitted into 224x224 (black padding), in [0, 1].

Result: ``{"gender": {"Woman": percent, "Man": percent}, "dominant_gender": label}``; percentages are
``100 * p`` without renormalisation (as deepface).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from facepipe import hookimpl
from facepipe.plugins.analyzers._common import labelled_results
from facepipe.plugins.analyzers._keras_analyzer import (
    KerasAnalyzerConfig,
    VggFaceAttributeAnalyzer,
    deepface_weight_file,
)
from facepipe.plugins.analyzers._spec import deepface_analyzer_spec

LABELS: tuple[str, ...] = ("Woman", "Man")

WEIGHTS = deepface_weight_file(
    "gender_model_weights.h5",
    "deepface's gender model: VGG-Face trunk + 2-way head (Keras HDF5 weights, ~540 MB)",
)


class GenderConfig(KerasAnalyzerConfig):
    """Options of deepface's gender model (batch size, explicit weights, device)."""


class GenderAnalyzer(VggFaceAttributeAnalyzer):
    """deepface's ``Gender`` model: Woman / Man percentages and the dominant one."""

    config_class = GenderConfig
    action = "gender"
    labels = LABELS
    weight_file = WEIGHTS
    manifest_name = "Gender"

    def format_results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        return labelled_results("gender", probabilities, LABELS, renormalize=False)


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(deepface_analyzer_spec(
        GenderAnalyzer,
        name="Gender",
        description="deepface's gender model (VGG-Face trunk, Woman/Man)",
    ))
