"""The whole Pipeline (load, detect, crop, embed, compare, decide) with the hermetic plugins.

No dlib, no OpenCV, no photos and no weights: it runs on every machine.  The real-photo suite
(``test_end_to_end.py``) proves the same paths with the real models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facepipe import Pipeline
from facepipe.errors import FaceNotDetectedError
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry
from tests.helpers.synthetic_faces import group_photo, photo, write_png


@pytest.fixture(scope="module")
def pipeline() -> Any:
    p = Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())
    yield p
    p.close()


def test_same_person_is_verified_and_others_are_not(pipeline: Pipeline) -> None:
    same = pipeline.verify(photo(1, 0), photo(1, 2))
    assert same.verified and same.distance < pipeline.threshold()
    other = pipeline.verify(photo(1, 0), photo(2, 0))
    assert not other.verified and other.distance > pipeline.threshold()


def test_paths_arrays_and_bytes_give_the_same_result(pipeline: Pipeline, tmp_path: Path) -> None:
    path = write_png(tmp_path / "p1.png", photo(1, 1))
    by_array = pipeline.verify(photo(1, 0), photo(1, 1)).distance
    assert pipeline.verify(photo(1, 0), path).distance == pytest.approx(by_array, abs=1e-6)
    assert pipeline.verify(photo(1, 0), str(path)).distance == pytest.approx(by_array, abs=1e-6)
    assert pipeline.verify(photo(1, 0), path.read_bytes()).distance == pytest.approx(by_array, abs=1e-6)


def test_represent_and_precomputed_embeddings(pipeline: Pipeline) -> None:
    (rep,) = pipeline.represent(photo(2, 1))
    assert rep.embedding.shape == (64,) and rep.face.area.w > 0
    by_vector = pipeline.verify(photo(2, 0), rep.embedding.tolist())
    assert by_vector.verified
    assert by_vector.distance == pytest.approx(pipeline.verify(photo(2, 0), photo(2, 1)).distance, abs=1e-6)


def test_every_face_of_a_group_is_found_in_reading_order(pipeline: Pipeline) -> None:
    reps = pipeline.represent(group_photo(1, 2, 3))
    assert [r.face.area.x for r in reps] == sorted(r.face.area.x for r in reps) and len(reps) == 3
    (alone,) = pipeline.represent(photo(2, 0))
    distances = [float(np.linalg.norm(r.embedding - alone.embedding)) for r in reps]
    assert int(np.argmin(distances)) == 1


def test_no_face_raises_a_typed_error(pipeline: Pipeline) -> None:
    with pytest.raises(FaceNotDetectedError):
        pipeline.represent(np.zeros((64, 64, 3), np.uint8))
