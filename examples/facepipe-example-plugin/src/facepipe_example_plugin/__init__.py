"""Example facepipe plugins: a centre-crop detector and the Manhattan (L1) metric."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field

from facepipe import DetectorSpec, MetricSpec, hookimpl
from facepipe.types import DetectedFace, Detector, Metric, PluginConfig


class CenterCropConfig(PluginConfig):
    """Options of the centre-crop detector."""

    fraction: float = Field(0.9, gt=0, le=1, description="side of the square as a share of the shorter side")


class CenterCropDetector(Detector):
    """One square face in the middle of every image."""

    config_class = CenterCropConfig
    provides_eyes = False
    config: CenterCropConfig

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        faces = []
        for image in images:
            height, width = image.shape[:2]
            side = int(min(height, width) * self.config.fraction)
            x, y = (width - side) // 2, (height - side) // 2
            faces.append([DetectedFace(x=x, y=y, w=side, h=side, confidence=1.0)])
        return faces


class ManhattanMetric(Metric):
    """Sum of absolute differences, computed in row blocks to bound memory."""

    name = "manhattan"

    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        out = np.empty((a.shape[0], b.shape[0]))
        for i in range(a.shape[0]):
            out[i] = np.abs(b - a[i]).sum(axis=1)
        return out


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(name="center-crop", factory="facepipe_example_plugin:CenterCropDetector",
                          config=CenterCropConfig, license="MIT",
                          description="a centred square as the face (pre-cropped portraits)"))


@hookimpl
def facepipe_register_metrics(register):  # type: ignore[no-untyped-def]
    register(MetricSpec(name="manhattan", factory="facepipe_example_plugin:ManhattanMetric",
                        config=PluginConfig, license="MIT", description="L1 distance"))
