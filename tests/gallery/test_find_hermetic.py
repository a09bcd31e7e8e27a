"""find() and the face index with the hermetic plugins: no dlib, no OpenCV, no photos.

The real-photo suite (``test_find.py``) proves real behaviour; this one makes sure find/index
logic is tested on every machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from facepipe import Pipeline
from facepipe.errors import EmptyDatasourceError, PathNotFoundError
from facepipe.gallery.find import FaceIndex, find
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry
from tests.helpers.synthetic_faces import group_photo, photo, write_png


@pytest.fixture
def pipeline() -> Any:
    p = Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())
    yield p
    p.close()


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """Persons 1 and 2 twice each, person 3 once in a sub-folder, and a group photo."""
    db = tmp_path / "db"
    write_png(db / "p1_a.png", photo(1, 0))
    write_png(db / "p1_b.png", photo(1, 2))
    write_png(db / "p2_a.png", photo(2, 0))
    write_png(db / "p2_b.png", photo(2, 1))
    write_png(db / "more" / "p3.png", photo(3, 0))
    write_png(db / "more" / "group.png", group_photo(4, 2))
    return db


def names(result: Any) -> list[str]:
    return [os.path.basename(row["identity"]) for row in result.rows]


def test_find_returns_the_same_person_closest_first(pipeline: Pipeline, gallery: Path) -> None:
    (result,) = find(pipeline, photo(2, 2), gallery)
    assert sorted(names(result)) == ["group.png", "p2_a.png", "p2_b.png"]
    distances = [row["distance"] for row in result.rows]
    assert distances == sorted(distances) and distances[-1] <= pipeline.threshold()


def test_group_query_gives_one_result_per_face(pipeline: Pipeline, gallery: Path) -> None:
    results = find(pipeline, group_photo(1, 3), gallery)
    assert [sorted(names(r)) for r in results] == [["p1_a.png", "p1_b.png"], ["p3.png"]]


def test_similarity_search_and_k(pipeline: Pipeline, gallery: Path) -> None:
    (everything,) = find(pipeline, photo(1, 1), gallery, similarity_search=True)
    assert len(everything.rows) == 7  # one row per indexed face
    (top,) = find(pipeline, photo(1, 1), gallery, similarity_search=True, k=2)
    assert sorted(names(top)) == ["p1_a.png", "p1_b.png"]


def test_new_and_removed_files_update_the_index(pipeline: Pipeline, gallery: Path) -> None:
    find(pipeline, photo(3, 1), gallery)
    write_png(gallery / "p3_new.png", photo(3, 2))
    (gallery / "more" / "p3.png").unlink()
    (result,) = find(pipeline, photo(3, 1), gallery)
    assert names(result) == ["p3_new.png"]


def test_index_reopens_without_embedding_again(pipeline: Pipeline, gallery: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    find(pipeline, photo(1), gallery)
    calls: list[int] = []
    embed = pipeline.embed_faces

    def counting(items: Any) -> Any:
        calls.append(len(items))
        return embed(items)

    monkeypatch.setattr(pipeline, "embed_faces", counting)
    index = FaceIndex.open(gallery, pipeline)
    index.refresh(progress=False)
    index.close()
    assert sum(calls) == 0  # every file was already indexed


def test_missing_and_empty_folders(pipeline: Pipeline, tmp_path: Path) -> None:
    with pytest.raises(PathNotFoundError):
        find(pipeline, photo(1), tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyDatasourceError):
        find(pipeline, photo(1), tmp_path / "empty")
