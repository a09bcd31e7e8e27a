"""`from facepipe import DeepFace`: deepface's keys and types, per function (real Dlib weights)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from facepipe import DeepFace

need("dlib")
need("cv2")

AREA_KEYS = {"x", "y", "w", "h", "left_eye", "right_eye"}


def test_verify_keys_and_types(dataset: Path) -> None:
    data = DeepFace.verify(str(dataset / "img1.jpg"), str(dataset / "img2.jpg"), model_name="Dlib")
    assert list(data) == ["verified", "distance", "threshold", "confidence", "model", "detector_backend",
                          "similarity_metric", "facial_areas", "time"]
    assert data["verified"] is True and data["model"] == "Dlib" and data["detector_backend"] == "opencv"
    assert type(data["distance"]) is float and data["distance"] == round(data["distance"], 6)
    assert type(data["threshold"]) is float and type(data["confidence"]) is float
    assert set(data["facial_areas"]) == {"img1", "img2"}
    assert AREA_KEYS <= set(data["facial_areas"]["img1"])
    assert all(type(data["facial_areas"]["img1"][k]) is int for k in ("x", "y", "w", "h"))
    json.dumps(data)


def test_verify_custom_threshold_drives_verified_and_confidence(dataset: Path) -> None:
    strict = DeepFace.verify(str(dataset / "img1.jpg"), str(dataset / "img2.jpg"), model_name="Dlib",
                             threshold=0.001)
    assert strict["verified"] is False and strict["threshold"] == 0.001
    assert strict["confidence"] <= 49  # deepface would still report a "verified" confidence (quirk 4)


def test_verify_rejects_wrong_embedding_size(dataset: Path) -> None:
    with pytest.raises(ValueError, match="embeddings of Dlib should have 128 dimensions"):
        DeepFace.verify([0.1] * 4096, [0.1] * 4096, model_name="Dlib")
    with pytest.raises(ValueError, match="ensure that all its items are of type float"):
        DeepFace.verify([0.1, "x"], [0.1] * 128, model_name="Dlib")


def test_represent_keys_and_types(dataset: Path) -> None:
    result = DeepFace.represent(str(dataset / "img1.jpg"), model_name="Dlib")
    assert isinstance(result, list) and len(result) == 1
    (item,) = result
    assert list(item) == ["embedding", "facial_area", "face_confidence"]
    assert len(item["embedding"]) == 128 and all(type(v) is float for v in item["embedding"])
    assert AREA_KEYS <= set(item["facial_area"]) and type(item["face_confidence"]) is float


def test_represent_batch_of_one_stays_nested(dataset: Path) -> None:
    result = DeepFace.represent([str(dataset / "img1.jpg")], model_name="Dlib")
    assert isinstance(result, list) and isinstance(result[0], list) and len(result[0]) == 1


def test_represent_normalisations(dataset: Path) -> None:
    (item,) = DeepFace.represent(str(dataset / "img2.jpg"), model_name="Dlib", l2_normalize=True)
    assert np.linalg.norm(item["embedding"]) == pytest.approx(1.0, abs=1e-6)
    (item,) = DeepFace.represent(str(dataset / "img2.jpg"), model_name="Dlib", minmax_normalize=True)
    assert 0.0 <= min(item["embedding"]) and max(item["embedding"]) <= 1.0


def test_extract_faces_keys_and_types(dataset: Path) -> None:
    faces = DeepFace.extract_faces(str(dataset / "couple.jpg"))
    assert len(faces) == 2
    for face in faces:
        assert list(face) == ["face", "facial_area", "confidence"]
        assert face["face"].dtype == np.float64 and face["face"].max() <= 1.0 and face["face"].ndim == 3
        assert type(face["confidence"]) is float and 0 <= face["confidence"] <= 1
    gray = DeepFace.extract_faces(str(dataset / "img1.jpg"), color_face="gray", normalize_face=False)
    assert gray[0]["face"].ndim == 2 and gray[0]["face"].dtype == np.uint8


def test_extract_faces_no_face_policies(tmp_path: Path) -> None:
    blank = np.full((200, 300, 3), 255, np.uint8)
    with pytest.raises(DeepFace.FaceNotDetected):
        DeepFace.extract_faces(blank)
    (whole,) = DeepFace.extract_faces(blank, enforce_detection=False)
    # deepface reports the whole image one pixel short (w = width - 1): the facade mirrors it
    assert whole["facial_area"]["w"] == 299 and whole["facial_area"]["h"] == 199
    assert whole["confidence"] == 0


def test_unknown_options_raise_deepface_errors(dataset: Path) -> None:
    with pytest.raises(DeepFace.UnimplementedError):
        DeepFace.extract_faces(str(dataset / "img1.jpg"), color_face="hsv")
    with pytest.raises(DeepFace.UnimplementedError):
        DeepFace.analyze(str(dataset / "img1.jpg"), actions=("beauty",))
    with pytest.raises(ValueError):
        DeepFace.build_model("Dlib", task="nonsense")


def test_build_model_returns_cached_plugin() -> None:
    model = DeepFace.build_model("Dlib")
    assert model is DeepFace.build_model("Dlib")
    assert model.embedding_size == 128 and model.input_size == (150, 150)


def test_analyze_keys_and_types_with_emotion(dataset: Path, synthetic_weights, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # deepface's Emotion model with synthetic weights (6 MB): checks the result shape, not accuracy.
    from facepipe.weights import manager as weights

    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    src = synthetic_weights("Emotion")
    shutil.copy(src, home / "weights" / src.name)
    monkeypatch.setenv("FACEPIPE_HOME", str(home))
    monkeypatch.setattr(weights, "_default", None)
    (item,) = DeepFace.analyze(str(dataset / "img1.jpg"), actions=("emotion",))
    assert list(item) == ["emotion", "dominant_emotion", "region", "face_confidence"]
    assert list(item["emotion"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert all(type(v) is float for v in item["emotion"].values())
    assert sum(item["emotion"].values()) == pytest.approx(100.0, abs=1e-3)
    assert item["dominant_emotion"] in item["emotion"]
    json.dumps(item)


def test_find_columns_and_batched_rows(dataset: Path, tmp_path: Path) -> None:
    for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
        shutil.copy(dataset / name, tmp_path / name)
    (frame,) = DeepFace.find(str(dataset / "img6.jpg"), str(tmp_path), model_name="Dlib", silent=True)
    assert list(frame.columns) == ["identity", "hash", "target_x", "target_y", "target_w", "target_h", "threshold",
                                   "source_x", "source_y", "source_w", "source_h", "distance", "confidence"]
    # PAIRS.md §2.3: a folder of img1, img2, img3 queried with img6 gives exactly img1 and img2.
    assert sorted(Path(p).name for p in frame["identity"]) == ["img1.jpg", "img2.jpg"]
    assert frame["distance"].is_monotonic_increasing
    (rows,) = DeepFace.find(str(dataset / "img6.jpg"), str(tmp_path), model_name="Dlib", silent=True, batched=True)
    assert rows and "confidence" not in rows[0] and "identity" in rows[0]
