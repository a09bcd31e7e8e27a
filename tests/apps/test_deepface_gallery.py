"""DeepFace.register / search / identify / build_index on the embedded store (database_type="sqlite")
with the real Dlib recognizer on dataset photos; deepface's signed-datastore find outcomes (PAIRS.md
§2.3) replayed through register + search."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.extras import need

need("dlib")
need("cv2")

from facepipe.apps import deepface as DeepFace  # noqa: E402
from facepipe.apps.deepface_gallery import SEARCH_COLUMNS  # noqa: E402
from facepipe.apps.gallery_ops import FaceIdNotFoundError  # noqa: E402
from facepipe.errors import EmptyDatasourceError, StoreMismatchError  # noqa: E402

OPTS = {"model_name": "Dlib", "detector_backend": "opencv", "database_type": "sqlite"}


@pytest.fixture(scope="module")
def db(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = str(tmp_path_factory.mktemp("faces") / "store")
    for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
        assert DeepFace.register(str(dataset / name), connection_details=folder, **OPTS) == {"inserted": 1}
    return folder


def test_register_is_idempotent(db: str, dataset: Path) -> None:
    assert DeepFace.register(str(dataset / "img1.jpg"), connection_details=db, **OPTS) == {"inserted": 0}


@pytest.mark.parametrize("query", ["img6.jpg", "img7.jpg"])
def test_signed_datastore_outcomes(db: str, dataset: Path, query: str) -> None:
    # PAIRS.md §2.3: a database of img1, img2, img3; img6 and img7 find exactly img1 and img2
    (rows,) = DeepFace.search(str(dataset / query), connection_details=db, return_type="dict", **OPTS)
    assert sorted(Path(r["img_name"]).name for r in rows) == ["img1.jpg", "img2.jpg"]
    assert all(r["distance"] <= r["threshold"] and 51 <= r["confidence"] <= 100 for r in rows)
    assert list(rows[0]) == list(SEARCH_COLUMNS)
    assert rows == sorted(rows, key=lambda r: r["distance"])


def test_similarity_search_k_and_dataframes(db: str, dataset: Path) -> None:
    (frame,) = DeepFace.search(str(dataset / "img6.jpg"), connection_details=db, similarity_search=True, k=3,
                               return_type="pandas", **OPTS)
    assert list(frame.columns) == list(SEARCH_COLUMNS) and len(frame) == 3
    assert Path(frame.iloc[-1]["img_name"]).name == "img3.jpg"  # the other person is farthest


def test_identify(db: str, dataset: Path) -> None:
    (rows,) = DeepFace.search(str(dataset / "img6.jpg"), connection_details=db, return_type="dict", **OPTS)
    same = DeepFace.identify(str(dataset / "img6.jpg"), rows[0]["id"], connection_details=db, **OPTS)
    assert same["verified"] is True and same["id"] == rows[0]["id"] and same["facial_areas"]["img2"] is None
    (everyone,) = DeepFace.search(str(dataset / "img6.jpg"), connection_details=db, similarity_search=True,
                                  return_type="dict", **OPTS)
    other = next(r for r in everyone if r["img_name"].endswith("img3.jpg"))
    assert DeepFace.identify(str(dataset / "img6.jpg"), other["id"], connection_details=db, **OPTS)["verified"] is False
    with pytest.raises(FaceIdNotFoundError):
        DeepFace.identify(str(dataset / "img6.jpg"), "nope", connection_details=db, **OPTS)


def test_build_index_and_ann(db: str, dataset: Path) -> None:
    assert DeepFace.build_index(connection_details=db, **{k: v for k, v in OPTS.items()}) is None
    (rows,) = DeepFace.search(str(dataset / "img6.jpg"), connection_details=db, search_method="ann",
                              l2_normalize=True, return_type="dict", **OPTS)
    assert rows and rows[0]["search_method"] == "ann" and rows[0]["distance_metric"] == "cosine"


def test_bad_inputs(db: str, dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(EmptyDatasourceError):
        DeepFace.search(str(dataset / "img6.jpg"), connection_details=str(tmp_path / "empty"), **OPTS)
    with pytest.raises(StoreMismatchError):  # the store holds Dlib + opencv embeddings
        DeepFace.register(str(dataset / "img6.jpg"), connection_details=db, model_name="Dlib",
                          detector_backend="mtcnn", database_type="sqlite")
    with pytest.raises(ValueError, match="Unsupported search method"):
        DeepFace.search(str(dataset / "img6.jpg"), connection_details=db, search_method="fuzzy", **OPTS)
