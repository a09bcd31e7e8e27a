"""The pipeline acts on what plugins declare in their specs, never on their names: analyzer
actions, detectors that give no eyes (the eye locator is found through the registry) or find no
faces at all."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest
from facepipe.errors import ConfigError
from facepipe.pipeline import Pipeline
from facepipe.pipeline.eyes import find_eye_locator
from facepipe.specs import AnalyzerSpec, DetectorSpec
from facepipe.testing import HERMETIC_CONFIG, BlobDetector, BlobDetectorConfig, hermetic_registry, synthetic_face_image
from facepipe.types import Analyzer, DetectedFace

CALLS: list[tuple[int, int, int, int]] = []


def fake_eyes(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Any, Any]:
    """An eye locator that records the boxes it is asked about and finds nothing."""
    CALLS.append(box)
    return None, None


class EyelessDetector(BlobDetector):
    """The blob detector without its eye landmarks."""

    provides_eyes = False

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return [[f.with_(left_eye=None, right_eye=None) for f in faces] for faces in super().detect(images)]


class AgeOnly(Analyzer):
    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return [{"age": 30.0} for _ in faces]


def _registry() -> Any:
    registry = hermetic_registry()
    registry.add(DetectorSpec(name="eyeless", factory=f"{__name__}:EyelessDetector", config=BlobDetectorConfig,
                              provides_eyes=False))
    registry.add(DetectorSpec(name="whole", factory=f"{__name__}:EyelessDetector", config=BlobDetectorConfig,
                              finds_faces=False, provides_eyes=False))
    registry.add(DetectorSpec(name="locator", factory="nowhere:Nothing", eye_locator=f"{__name__}:fake_eyes"))
    registry.add(AnalyzerSpec(name="ager", factory=f"{__name__}:AgeOnly", actions=("age",)))
    return registry


# ------------------------------------------------------------------------------ analyzers
def test_an_analyzer_is_accepted_for_its_own_action() -> None:
    pipeline = Pipeline.from_config({**HERMETIC_CONFIG, "analyzers": {"age": "ager"}}, registry=_registry())
    (analysis,) = pipeline.analyze(synthetic_face_image())
    assert analysis.attributes["age"] == 30.0


def test_an_analyzer_config_key_outside_its_actions_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"analyzers\.gender.*'ager' answers age.*"):
        Pipeline.from_config({**HERMETIC_CONFIG, "analyzers": {"gender": "ager"}}, registry=_registry())


def test_builtin_analyzers_declare_their_actions() -> None:
    with pytest.raises(ConfigError, match="answers emotion, not 'age'"):
        Pipeline.from_config({"analyzers": {"age": "Emotion"}})


# ------------------------------------------------------------------------------ eyes
def test_the_eye_locator_is_found_through_the_registry() -> None:
    assert find_eye_locator(_registry()) is fake_eyes
    assert find_eye_locator(hermetic_registry()) is None  # no plugin offers one: alignment goes on without


def test_detectors_without_eyes_get_them_from_the_declared_locator() -> None:
    CALLS.clear()
    config = {**HERMETIC_CONFIG, "detector": "eyeless", "align": True}
    faces = Pipeline.from_config(config, registry=_registry()).extract_faces(synthetic_face_image())
    assert len(faces) == 1 and len(CALLS) == 1
    CALLS.clear()
    Pipeline.from_config({**config, "eye_fallback": False}, registry=_registry()).extract_faces(synthetic_face_image())
    Pipeline.from_config({**config, "detector": "blob"}, registry=_registry()).extract_faces(synthetic_face_image())
    assert CALLS == []  # switched off, or the detector gives eyes itself


def test_a_detector_that_finds_no_faces_marks_them_undetected() -> None:
    CALLS.clear()
    config = {**HERMETIC_CONFIG, "detector": "whole", "align": True}
    faces = Pipeline.from_config(config, registry=_registry()).extract_faces(synthetic_face_image())
    assert faces and not any(face.detected for face in faces)
    assert CALLS == []
