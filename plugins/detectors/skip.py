"""The ``skip`` pseudo-detector: the whole image is the face."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from facepipe import hookimpl
from facepipe.specs import DetectorSpec
from facepipe.types import DetectedFace, Detector, PluginConfig


class SkipConfig(PluginConfig):
    """No options."""


class SkipDetector(Detector):
    """Returns one face covering each whole image, confidence 0 (as deepface)."""

    config_class = SkipConfig
    provides_eyes = False

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        # deepface's represent() swaps w and h here (quirk 2); facepipe reports them the right way.
        return [[DetectedFace(x=0, y=0, w=img.shape[1], h=img.shape[0], confidence=0.0)] for img in images]


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="skip",
        factory="facepipe.plugins.detectors.skip:SkipDetector",
        config=SkipConfig,
        description="no detection: the whole image is treated as one face",
        license="MIT",
        finds_faces=False,
        provides_eyes=False,
    ))
