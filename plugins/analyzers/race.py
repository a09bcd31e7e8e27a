"""The ``Race`` analyzer: deepface's race model (VGG-Face trunk + 6-way head).

Network (Keras 3, weights from deepface's ``race_model_single_batch.h5``, loaded by position): the
VGG-Face convolutional trunk up to fc7 (:mod:`facepipe.engines.vgg_face`), then a 1x1
convolution to 6 channels, flatten and softmax.

Input, as deepface's ``analyze()``: the BGR crop fitted into 224x224 (black padding), in [0, 1].

Result: ``{"race": {label: percent}, "dominant_race": label}`` with deepface's six labels in its
order; percentages are renormalised to sum to 100 (as deepface).
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

LABELS: tuple[str, ...] = ("asian", "indian", "black", "white", "middle eastern", "latino hispanic")

WEIGHTS = deepface_weight_file(
    "race_model_single_batch.h5",
    "deepface's race model: VGG-Face trunk + 6-way head (Keras HDF5 weights, ~540 MB)",
)


class RaceConfig(KerasAnalyzerConfig):
    """Options of deepface's race model (batch size, explicit weights, device)."""


class RaceAnalyzer(VggFaceAttributeAnalyzer):
    """deepface's ``Race`` model: six percentages and the dominant label."""

    config_class = RaceConfig
    action = "race"
    labels = LABELS
    weight_file = WEIGHTS
    manifest_name = "Race"

    def format_results(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        return labelled_results("race", probabilities, LABELS, renormalize=True)


@hookimpl
def facepipe_register_analyzers(register):  # type: ignore[no-untyped-def]
    register(deepface_analyzer_spec(
        RaceAnalyzer,
        name="Race",
        description="deepface's race/ethnicity model (VGG-Face trunk, 6 labels)",
    ))
