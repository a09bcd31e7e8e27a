"""deepface's threshold table and distance-to-confidence formula."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from facepipe.errors import ConfigError
from facepipe.pipeline.decision import (
    CONFIDENCE_PARAMS,
    METRICS,
    THRESHOLDS,
    canonical_model_name,
    confidence,
    threshold_for,
    thresholds_for,
)

MODELS = ["VGG-Face", "Facenet", "Facenet512", "ArcFace", "Dlib", "SFace", "OpenFace", "DeepFace",
          "DeepID", "GhostFaceNet", "Buffalo_L"]
FACT_SHEET = Path(os.environ.get("FACEPIPE_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "reference" / "deepface-facts.md"


def fact_sheet_table(header_start: str) -> list[list[str]]:
    if not FACT_SHEET.is_file():
        pytest.skip(f"fact sheet not found at {FACT_SHEET}")
    lines = FACT_SHEET.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip().startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


# ------------------------------------------------------------------------------ thresholds
def test_table_covers_all_models_and_metrics() -> None:
    assert sorted(THRESHOLDS) == sorted(MODELS)
    for model in MODELS:
        assert set(THRESHOLDS[model]) == set(METRICS)


@pytest.mark.parametrize("model, metric, value", [
    ("VGG-Face", "cosine", 0.68),
    ("VGG-Face", "euclidean", 1.17),
    ("Facenet", "cosine", 0.40),
    ("Facenet", "euclidean", 10.0),
    ("Facenet512", "euclidean", 23.56),
    ("ArcFace", "euclidean_l2", 1.13),
    ("Dlib", "euclidean", 0.6),
    ("SFace", "cosine", 0.593),
    ("SFace", "euclidean", 10.734),
    ("OpenFace", "angular", 0.11),
    ("DeepFace", "euclidean", 64.0),
    ("DeepID", "cosine", 0.015),
    ("DeepID", "euclidean", 45.0),
    ("GhostFaceNet", "euclidean", 35.71),
    ("Buffalo_L", "angular", 0.45),
])
def test_spot_checks(model: str, metric: str, value: float) -> None:
    got = threshold_for(model, metric)
    assert isinstance(got, float)
    assert got == value


def test_table_matches_fact_sheet() -> None:
    rows = fact_sheet_table("| model | cosine |")
    assert len(rows) == 11
    for name, *values in rows:
        assert [threshold_for(name, metric) for metric in METRICS] == [float(v) for v in values]


@pytest.mark.parametrize("spelling", ["VGG-Face", "vgg-face", "vggface", "VGG_Face", " vgg face "])
def test_model_names_are_case_and_separator_insensitive(spelling: str) -> None:
    assert canonical_model_name(spelling) == "VGG-Face"
    assert threshold_for(spelling, "cosine") == 0.68


def test_aliases_and_metric_spelling() -> None:
    assert canonical_model_name("deepface_fb") == "DeepFace"
    assert canonical_model_name("buffalo_l") == "Buffalo_L"
    assert canonical_model_name("FACENET512") == "Facenet512"
    assert threshold_for("arcface", "Euclidean-L2") == 1.13
    assert thresholds_for("dlib") == {"cosine": 0.07, "euclidean": 0.6, "euclidean_l2": 0.4, "angular": 0.12}


def test_unknown_model_or_metric() -> None:
    with pytest.raises(ConfigError, match="Facenet512") as info:
        threshold_for("MyModel", "cosine")
    assert "'MyModel'" in str(info.value)
    with pytest.raises(ConfigError, match="euclidean_l2"):
        threshold_for("Facenet", "manhattan")
    with pytest.raises(ValueError):  # deepface raises ValueError; ConfigError is one
        threshold_for("Facenet", "manhattan")
    assert canonical_model_name("MyModel") is None


# ------------------------------------------------------------------------------ confidence
def test_parameter_table_matches_fact_sheet() -> None:
    rows = fact_sheet_table("| model | metric | w |")
    keys = ["w", "b", "normalizer", "denorm_min_true", "denorm_max_true", "denorm_min_false",
            "denorm_max_false"]
    assert len(rows) == 40
    seen = set()
    for model, metric, *values in rows:
        assert CONFIDENCE_PARAMS[model][metric] == dict(zip(keys, map(float, values)))
        seen.add((model, metric))
    assert seen == {(m, k) for m, table in CONFIDENCE_PARAMS.items() for k in table}
    assert "Buffalo_L" not in CONFIDENCE_PARAMS


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_hand_computed_facenet_cosine_verified() -> None:
    # Facenet / cosine parameters as printed in the fact sheet
    w, b, normalizer = -6.502269165856082, 1.679048923097668, 1.206694
    lo_true, hi_true = 41.790002608273234, 77.17253153662926
    d = 0.2 / normalizer  # normalizer > 1 is applied
    raw = 100 * _sigmoid(w * d + b)
    lo = max(51, lo_true)
    expected = lo + (raw - lo_true) / (hi_true - lo_true) * (100 - lo)
    expected = round(min(100.0, max(51.0, expected)), 2)
    assert confidence(0.2, "Facenet", "cosine", True) == expected
    assert 51 <= expected <= 100


def test_hand_computed_facenet_cosine_not_verified() -> None:
    w, b, normalizer = -6.502269165856082, 1.679048923097668, 1.206694
    lo_false, hi_false = 0.7976712344840693, 20.618350202170916
    d = 0.6 / normalizer
    raw = 100 * _sigmoid(w * d + b)
    top = min(49, int(hi_false))  # = 20
    expected = round(max(0.0, min(49.0, (raw - lo_false) / (hi_false - lo_false) * top)), 2)
    assert confidence(0.6, "Facenet", "cosine", False) == expected
    assert confidence(0.6, "Facenet", "cosine", False) <= top


def test_hand_computed_normalizer_below_one_is_ignored() -> None:
    # VGG-Face / cosine: normalizer 0.979183 < 1, so the distance is used as is
    w, b = -6.61254026479904, 3.145549102667549
    lo_true, hi_true = 20.787978733113846, 88.28484099529868
    raw = 100 * _sigmoid(w * 0.5 + b)
    expected = 51 + (raw - lo_true) / (hi_true - lo_true) * (100 - 51)
    expected = round(min(100.0, max(51.0, expected)), 2)
    assert confidence(0.5, "VGG-Face", "cosine", True) == expected
    # and with the normalizer applied the answer would have been different
    wrong = 51 + (100 * _sigmoid(w * 0.5 / 0.979183 + b) - lo_true) / (hi_true - lo_true) * 49
    assert round(wrong, 2) != expected


def test_zero_and_negative_distances() -> None:
    for model in ("Facenet", "Buffalo_L", "unknown"):
        assert confidence(0.0, model, "cosine", True) == 100.0
        assert confidence(-0.3, model, "cosine", True) == 100.0
        assert confidence(0.0, model, "cosine", False) == 0.0
        assert confidence(-1e-9, model, "euclidean", False) == 0.0


def test_models_or_metrics_without_parameters() -> None:
    assert confidence(0.3, "Buffalo_L", "cosine", True) == 51.0
    assert confidence(0.9, "Buffalo_L", "cosine", False) == 49.0
    assert confidence(0.3, "MyModel", "cosine", True) == 51.0
    assert confidence(0.3, "Facenet", "manhattan", False) == 49.0


def test_nan_distance_is_an_error() -> None:
    with pytest.raises(ValueError, match="NaN"):
        confidence(float("nan"), "Facenet", "cosine", True)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("metric", list(METRICS))
def test_confidence_is_monotone_and_respects_the_decision(model: str, metric: str) -> None:
    threshold = threshold_for(model, metric)
    distances = np.concatenate([[0.0], np.linspace(1e-6, 4 * threshold, 400), [10 * threshold, 1e6]])
    values = []
    for d in distances:
        verified = bool(d <= threshold)
        c = confidence(float(d), model, metric, verified)
        assert isinstance(c, float)
        assert 0.0 <= c <= 100.0
        assert c == round(c, 2)
        if verified:
            assert c >= 51.0
        else:
            assert c <= 49.0
        values.append(c)
    assert all(later <= earlier for earlier, later in itertools.pairwise(values)), (model, metric)


def test_confidence_spreads_over_the_ranges() -> None:
    # not a constant: the verified side reaches well above 51 and the other side well below 49
    high = confidence(0.01, "ArcFace", "cosine", True)
    low = confidence(1.5, "ArcFace", "cosine", False)
    assert high > 80 and low < 10
    mid = confidence(0.3, "ArcFace", "cosine", True)
    assert 51 < mid < high
