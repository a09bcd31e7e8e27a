"""Thresholds and confidence: each recognizer declares deepface's published values in its spec,
the decision math turns them into verdicts, and the pipeline reads them from the spec.

The published values come from ``tests/reference/deepface-decision.json``, extracted from the
deepface fact sheet (``../shared/reference/deepface-facts.md``, §6.1, §6.2 and §2.3).  The tests
read only the JSON; ``tests/tools/check_deepface_extract.py`` checks the extract against the fact
sheet where ``../shared`` is present, and its parser is tested here on a sheet written from the JSON.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from facepipe import PluginRegistry
from facepipe.errors import ConfigError
from facepipe.pipeline import Pipeline
from facepipe.pipeline.decision import METRICS, confidence, confidence_params, threshold_for
from facepipe.specs import ConfidenceParams, RecognizerSpec
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry, synthetic_face_image

from tests.helpers.paths import REFERENCE

PUBLISHED = json.loads((REFERENCE / "deepface-decision.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry()


def _deepface_models(registry: PluginRegistry) -> list[str]:
    """The registered recognizers that deepface publishes thresholds for (all built-ins do)."""
    return [name for name in registry.names("recognizer") if name in PUBLISHED["thresholds"]]


def _spec(registry: PluginRegistry, name: str) -> Any:
    return registry.get("recognizer", name)


# ------------------------------------------------------------------------------ declared values
def test_every_builtin_recognizer_declares_deepface_thresholds(registry: PluginRegistry) -> None:
    builtin = [n for n in registry.names("recognizer") if _spec(registry, n).distribution == "facepipe"]
    assert builtin and set(builtin) <= set(PUBLISHED["thresholds"])
    for name in builtin:
        spec = _spec(registry, name)
        assert dict(spec.thresholds) == PUBLISHED["thresholds"][name], name
        assert set(spec.thresholds) == set(METRICS)


def test_every_builtin_recognizer_declares_deepface_confidence(registry: PluginRegistry) -> None:
    for name in _deepface_models(registry):
        declared = {metric: asdict(p) for metric, p in _spec(registry, name).confidence.items()}
        assert declared == PUBLISHED["confidence"].get(name, {}), name


def _fact_sheet_from(published: dict[str, Any]) -> str:
    """The three tables of the fact sheet, written in its markdown layout from ``published``."""
    fields = list(asdict(ConfidenceParams(*[0.0] * 7)))
    lines = ["## 6.1", "", "| model | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(str(t[k]) for k in METRICS) + " |" for m, t in published["thresholds"].items()]
    lines += ["", "## 6.2", "", "| model | metric | " + " | ".join(fields) + " |", "|---" * (len(fields) + 2) + "|"]
    lines += [f"| {m} | {metric} | " + " | ".join(str(p[f]) for f in fields) + " |"
              for m, per in published["confidence"].items() for metric, p in per.items()]
    lines += ["", "## 2.3", "", "  | model | min | max |", "  |---|---|---|"]
    lines += [f"  | {m} | {lo} | {hi} |" for m, (lo, hi) in published["value_ranges"].items()]
    return "\n".join(lines + ["", "text after the tables"])


def test_extract_checker_reads_the_fact_sheet_tables() -> None:
    """The consistency check of the committed extract against the fact sheet (a tool script, run
    where ``../shared`` is present) parses the sheet's tables and reports every difference."""
    from tests.tools.check_deepface_extract import differences

    sheet = _fact_sheet_from(PUBLISHED)
    assert differences(sheet, PUBLISHED) == []
    changed = json.loads(json.dumps(PUBLISHED))
    changed["thresholds"]["Facenet"]["cosine"] = 0.41
    changed["value_ranges"].pop("DeepID")
    changed["confidence"]["VGG-Face"]["cosine"]["w"] += 1
    found = differences(sheet, changed)
    assert len(found) == 3 and any("Facenet" in d for d in found) and any("DeepID" in d for d in found)


# ------------------------------------------------------------------------------ threshold math
def test_threshold_for_reads_the_declared_table() -> None:
    table = {"cosine": 10, "euclidean_l2": 0.8}
    assert threshold_for(table, "cosine") == 10.0 and isinstance(threshold_for(table, "cosine"), float)
    assert threshold_for(table, "Euclidean-L2") == 0.8


def test_threshold_for_an_undeclared_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="manhattan.*MyModel.*cosine"):
        threshold_for({"cosine": 0.4}, "manhattan", model="MyModel")
    with pytest.raises(ConfigError, match="none"):
        threshold_for({}, "cosine")


# ------------------------------------------------------------------------------ confidence math
FACENET_COSINE = ConfidenceParams(-6.502269165856082, 1.679048923097668, 1.206694, 41.790002608273234,
                                  77.17253153662926, 0.7976712344840693, 20.618350202170916)
VGG_COSINE = ConfidenceParams(-6.61254026479904, 3.145549102667549, 0.979183, 20.787978733113846,
                              88.28484099529868, 3.457832575746455, 20.556681914175016)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_hand_computed_verified() -> None:
    p = FACENET_COSINE
    raw = 100 * _sigmoid(p.w * 0.2 / p.normalizer + p.b)  # normalizer > 1 is applied
    lo = max(51, p.denorm_min_true)
    expected = lo + (raw - p.denorm_min_true) / (p.denorm_max_true - p.denorm_min_true) * (100 - lo)
    expected = round(min(100.0, max(51.0, expected)), 2)
    assert confidence(0.2, p, True) == expected
    assert 51 <= expected <= 100


def test_hand_computed_not_verified() -> None:
    p = FACENET_COSINE
    raw = 100 * _sigmoid(p.w * 0.6 / p.normalizer + p.b)
    top = min(49, int(p.denorm_max_false))  # = 20
    expected = (raw - p.denorm_min_false) / (p.denorm_max_false - p.denorm_min_false) * top
    assert confidence(0.6, p, False) == round(max(0.0, min(49.0, expected)), 2)
    assert confidence(0.6, p, False) <= top


def test_hand_computed_normalizer_below_one_is_ignored() -> None:
    p = VGG_COSINE
    raw = 100 * _sigmoid(p.w * 0.5 + p.b)
    expected = 51 + (raw - p.denorm_min_true) / (p.denorm_max_true - p.denorm_min_true) * 49
    assert confidence(0.5, p, True) == round(min(100.0, max(51.0, expected)), 2)


def test_zero_negative_and_nan_distances() -> None:
    for params in (FACENET_COSINE, None):
        assert confidence(0.0, params, True) == 100.0
        assert confidence(-0.3, params, True) == 100.0
        assert confidence(-1e-9, params, False) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        confidence(float("nan"), FACENET_COSINE, True)


def test_without_parameters_the_answer_is_51_or_49() -> None:
    assert confidence(0.3, None, True) == 51.0
    assert confidence(0.9, None, False) == 49.0
    assert confidence_params({"cosine": FACENET_COSINE}, "manhattan") is None
    assert confidence_params({"cosine": FACENET_COSINE}, "Cosine") is FACENET_COSINE


def test_confidence_is_monotone_and_respects_each_declared_decision(registry: PluginRegistry) -> None:
    for name in _deepface_models(registry):
        spec = _spec(registry, name)
        for metric in METRICS:
            threshold = threshold_for(spec.thresholds, metric)
            params = confidence_params(spec.confidence, metric)
            distances = np.concatenate([[0.0], np.linspace(1e-6, 4 * threshold, 200), [10 * threshold, 1e6]])
            values = []
            for d in distances:
                verified = bool(d <= threshold)
                c = confidence(float(d), params, verified)
                assert 0.0 <= c <= 100.0 and c == round(c, 2)
                assert c >= 51.0 if verified else c <= 49.0
                values.append(c)
            assert all(b <= a for a, b in itertools.pairwise(values)), (name, metric)


# ------------------------------------------------------------------------------ the pipeline reads the spec
OWN_THRESHOLDS = {"cosine": 0.123, "euclidean": 7.0}
OWN_CONFIDENCE = {"cosine": FACENET_COSINE}


def _pipeline_with_declared_values() -> Pipeline:
    registry = hermetic_registry()
    registry.add(RecognizerSpec(name="declared", factory="facepipe.testing:GridRecognizer",
                                thresholds=OWN_THRESHOLDS, confidence=OWN_CONFIDENCE, embedding_size=64))
    return Pipeline.from_config({**HERMETIC_CONFIG, "recognizer": "declared"}, registry=registry)


def test_pipeline_threshold_comes_from_the_spec() -> None:
    pipeline = _pipeline_with_declared_values()
    assert pipeline.threshold() == 0.123
    assert pipeline.threshold(0.5) == 0.5
    assert "recognizer" not in pipeline._instances  # the spec answered: no model was built
    euclidean = Pipeline.from_config({**HERMETIC_CONFIG, "recognizer": "declared", "metric": "euclidean"},
                                     registry=pipeline.registry)
    assert euclidean.threshold() == 7.0
    angular = Pipeline.from_config({**HERMETIC_CONFIG, "recognizer": "declared", "metric": "angular"},
                                   registry=pipeline.registry)
    with pytest.raises(ConfigError, match="angular"):
        angular.threshold()


def test_verify_confidence_comes_from_the_spec() -> None:
    pipeline = _pipeline_with_declared_values()
    image = synthetic_face_image()
    result = pipeline.verify(image, image)
    assert result.threshold == 0.123
    assert result.confidence == confidence(result.distance, FACENET_COSINE, result.verified)
