"""`from facepipe import DeepFace` behaves as deepface 0.0.103 where callers depend on it:
exact error messages, boxes, callable metrics, find's return_type / datastore_format / db_path,
and build_model's attribute clients (real Dlib weights; Emotion with synthetic weights)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
from facepipe import DeepFace
from facepipe.apps.deepface_compat import AttributeClient
from facepipe.pipeline.image import load_image

need("dlib")
need("cv2")


@pytest.fixture(scope="module")
def folder(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """img1, img2 (same person as the query img6) and img3 (another person)."""
    root = tmp_path_factory.mktemp("db")
    for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
        shutil.copy(dataset / name, root / name)
    return root


def _euclidean(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


# ----------------------------------------------------------------------------- embedding lists
def test_wrong_embedding_size_has_deepfaces_message() -> None:
    with pytest.raises(DeepFace.DimensionMismatchError) as err:
        DeepFace.verify([0.1] * 4096, [0.1] * 128, model_name="Dlib")
    assert str(err.value) == "embeddings of Dlib should have 128 dimensions, but 1-th image has 4096 dimensions input"
    with pytest.raises(ValueError, match="but 2-th image has 5 dimensions input"):
        DeepFace.verify([0.1] * 128, [0.1] * 5, model_name="Dlib")


def test_embedding_list_of_non_numbers_has_deepfaces_message() -> None:
    with pytest.raises(DeepFace.DataTypeError) as err:
        DeepFace.verify([0.1, "x"], [0.1] * 128, model_name="Dlib")
    assert str(err.value) == "When passing img1_path as a list, ensure that all its items are of type float."
    with pytest.raises(ValueError, match="When passing img2_path as a list"):
        DeepFace.verify([0.1] * 128, [[0.1]] * 128, model_name="Dlib")


# ----------------------------------------------------------------------------- image inputs
def test_non_image_stream_says_failed_to_decode_image() -> None:
    with pytest.raises(ValueError, match="^Failed to decode image"):
        DeepFace.extract_faces(io.BytesIO(b"GIF? no: plain text"))


def test_file_object_and_data_uri_without_base64_marker(dataset: Path) -> None:
    import base64

    data = (dataset / "img1.jpg").read_bytes()
    from_file = DeepFace.extract_faces(io.BytesIO(data), detector_backend="skip")
    from_uri = DeepFace.extract_faces("data:image/jpeg," + base64.b64encode(data).decode(), detector_backend="skip")
    assert np.array_equal(from_file[0]["face"], from_uri[0]["face"])


# ----------------------------------------------------------------------------- boxes
def test_boxes_stay_inside_the_image_as_in_deepface(dataset: Path) -> None:
    image = load_image(dataset / "img1.jpg").image
    height, width = image.shape[:2]
    (skipped,) = DeepFace.extract_faces(image, detector_backend="skip")
    area = skipped["facial_area"]
    assert (area["x"], area["y"], area["w"], area["h"]) == (0, 0, width - 1, height - 1)
    # a face cut by the right edge: the reported box ends one pixel inside, as deepface's does
    cut = np.ascontiguousarray(image[:, : image.shape[1] * 3 // 5])
    for face in DeepFace.extract_faces(cut, enforce_detection=False):
        box = face["facial_area"]
        assert box["x"] + box["w"] < cut.shape[1] and box["y"] + box["h"] < cut.shape[0]
    # represent with skip reports the whole image unclamped in deepface
    (item,) = DeepFace.represent(image, model_name="Dlib", detector_backend="skip")
    assert (item["facial_area"]["w"], item["facial_area"]["h"]) == (width, height)


# ----------------------------------------------------------------------------- callable metrics
def test_callable_metric_needs_a_threshold(folder: Path) -> None:
    message = "^Threshold must be specified when using custom distance metrics$"
    with pytest.raises(ValueError, match=message):
        DeepFace.verify([0.1] * 128, [0.2] * 128, model_name="Dlib", distance_metric=_euclidean)
    with pytest.raises(ValueError, match=message):
        DeepFace.find(np.zeros((10, 10, 3), np.uint8), str(folder), model_name="Dlib", distance_metric=_euclidean)


def test_verify_with_callable_metric_on_embeddings() -> None:
    seen: list[Any] = []

    def metric(a: np.ndarray, b: np.ndarray) -> float:
        seen.append((a.shape, a.dtype, b.shape))
        return _euclidean(a, b)

    a, b = [0.1] * 128, [0.1] * 127 + [0.5]
    data = DeepFace.verify(a, b, model_name="Dlib", distance_metric=metric, threshold=0.6)
    assert seen == [((128,), np.float64, (128,))]  # two 1-D vectors, once per face pair
    assert data["distance"] == pytest.approx(0.4) and data["verified"] is True
    assert data["confidence"] == 51 and data["threshold"] == 0.6  # no fitted confidence model
    assert data["similarity_metric"] is metric
    assert data["facial_areas"]["img1"]["x"] is None
    far = DeepFace.verify(a, [5.0] * 128, model_name="Dlib", distance_metric=metric, threshold=0.6)
    assert far["verified"] is False and far["confidence"] == 49
    # facepipe also takes 1-D arrays as embeddings (deepface only lists)
    named = DeepFace.verify(np.asarray(a), np.asarray(b), model_name="Dlib", distance_metric="euclidean")
    assert named["distance"] == pytest.approx(0.4, abs=1e-6)


def test_verify_with_callable_metric_on_photos_matches_the_named_metric(dataset: Path) -> None:
    pair = (str(dataset / "img1.jpg"), str(dataset / "img2.jpg"))
    named = DeepFace.verify(*pair, model_name="Dlib", distance_metric="euclidean")
    custom = DeepFace.verify(*pair, model_name="Dlib", distance_metric=_euclidean, threshold=0.6)
    assert custom["distance"] == pytest.approx(named["distance"], abs=1e-5)
    assert custom["verified"] is True and custom["facial_areas"] == named["facial_areas"]


def test_find_with_callable_metrics(dataset: Path, folder: Path) -> None:
    query = str(dataset / "img6.jpg")
    (named,) = DeepFace.find(query, str(folder), model_name="Dlib", distance_metric="euclidean",
                             threshold=0.6, silent=True)
    # return_type="pandas": the callable gets (gallery vector, query vector) per row
    (frame,) = DeepFace.find(query, str(folder), model_name="Dlib", distance_metric=_euclidean,
                             threshold=0.6, silent=True, return_type="pandas")
    assert list(frame["identity"]) == list(named["identity"])
    assert np.allclose(frame["distance"], named["distance"], atol=1e-5)
    assert set(frame["confidence"]) <= {51.0}

    # return_type="dict": called once with gallery (N, D) and queries (M, D), returns (M, N)
    shapes: list[Any] = []

    def batched(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
        shapes.append((gallery.shape, queries.shape))
        return np.linalg.norm(queries[:, None, :] - gallery[None, :, :], axis=2)

    (rows,) = DeepFace.find(query, str(folder), model_name="Dlib", distance_metric=batched,
                            threshold=0.6, silent=True, return_type="dict")
    assert shapes == [((3, 128), (1, 128))]
    assert [r["identity"] for r in rows] == list(named["identity"])

    def wrong_shape(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
        return np.zeros(len(gallery))

    with pytest.raises(DeepFace.InvalidEmbeddingsShapeError):
        DeepFace.find(query, str(folder), model_name="Dlib", distance_metric=wrong_shape,
                      threshold=0.6, silent=True, return_type="dict")


# ----------------------------------------------------------------------------- find options
def test_find_return_types(dataset: Path, folder: Path) -> None:
    query = str(dataset / "img6.jpg")
    (frame,) = DeepFace.find(query, str(folder), model_name="Dlib", silent=True, return_type="pandas")
    (rows,) = DeepFace.find(query, str(folder), model_name="Dlib", silent=True, return_type="dict")
    assert isinstance(rows, list) and [r["identity"] for r in rows] == list(frame["identity"])
    assert list(rows[0]) == list(frame.columns)  # same keys, confidence included (0.0.103)
    (legacy,) = DeepFace.find(query, str(folder), model_name="Dlib", silent=True, batched=True)
    assert "confidence" not in legacy[0]
    with pytest.raises(ValueError) as err:
        DeepFace.find(query, str(folder), model_name="Dlib", return_type="json")
    assert str(err.value) == "Unsupported return_type: json. Options: 'pandas', 'dict'."


def test_find_datastore_format_and_remote_db_paths(dataset: Path, folder: Path) -> None:
    query = str(dataset / "img6.jpg")
    # accepted and moot: facepipe's SQLite index serves every format, pyarrow is not needed
    (frame,) = DeepFace.find(query, str(folder), model_name="Dlib", silent=True, datastore_format="parquet")
    assert len(frame) == 2
    with pytest.raises(ValueError) as err:
        DeepFace.find(query, str(folder), model_name="Dlib", datastore_format="csv")
    assert str(err.value) == "Unsupported datastore_format csv. Options: feather, npz, parquet"
    with pytest.raises(DeepFace.UnimplementedError, match="aws s3 sync"):
        DeepFace.find(query, "s3://bucket/photos", model_name="Dlib")
    with pytest.raises(DeepFace.UnimplementedError, match="local folders only"):
        DeepFace.find(query, "ftp://user:pw@host/photos", model_name="Dlib")
    with pytest.raises(ValueError, match="^Unsupported db_path scheme http. Options: s3, ftp or local folder.$"):
        DeepFace.find(query, "http://host/photos", model_name="Dlib")


# ----------------------------------------------------------------------------- build_model
class _AgePlugin:
    """The shape of facepipe's Age analyzer output (one dict per crop), for the adapter alone."""

    action = "age"

    def __init__(self) -> None:
        self.crops: list[np.ndarray] = []

    def predict(self, crops: list[np.ndarray]) -> list[dict[str, Any]]:
        self.crops.extend(crops)
        return [{"age": 30.5 + i} for i in range(len(crops))]


def test_age_client_returns_numbers_like_deepface() -> None:
    plugin = _AgePlugin()
    client = AttributeClient(plugin, "Age")
    face = np.full((224, 224, 3), 0.5)  # deepface feeds 224x224 floats in [0, 1]
    single = client.predict(face)
    assert type(single) is np.float64 and single == 30.5
    assert plugin.crops[0].dtype == np.uint8 and plugin.crops[0][0, 0, 0] == 128
    ages = client.predict(np.stack([face, face]))
    assert isinstance(ages, np.ndarray) and ages.shape == (2,) and list(ages) == [30.5, 31.5]
    assert type(client.predict([face])) is np.float64  # deepface: a batch of one answers as one


def test_build_model_emotion_predicts_probabilities(synthetic_weights, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from facepipe.weights import manager as weights

    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    src = synthetic_weights("Emotion")
    shutil.copy(src, home / "weights" / src.name)
    monkeypatch.setenv("FACEPIPE_HOME", str(home))
    monkeypatch.setattr(weights, "_default", None)
    monkeypatch.setattr(DeepFace, "_built", {})
    model = DeepFace.build_model("Emotion", task="facial_attribute")
    assert model is DeepFace.build_model("Emotion", task="facial_attribute")
    faces = np.random.default_rng(0).random((3, 224, 224, 3))
    probs = model.predict(faces)
    assert isinstance(probs, np.ndarray) and probs.shape == (3, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    one = model.predict(faces[0])
    assert one.shape == (7,) and np.allclose(one, probs[0], atol=1e-5)
