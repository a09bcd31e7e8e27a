"""The three stores give the same exact answers: embedded (SQLite + numpy), pgvector and Milvus.

Every face of the dataset photos is embedded once (the default pipeline: dlib's HOG detector and
the Dlib recognizer, cosine), the same rows go into a fresh gallery of each store through
:class:`facepipe.Gallery`, and each face's exact k=5 neighbours must be the same ids at the same
distances in all three, and equal to a float64 numpy reference.  Servers run on 127.0.0.1 only
(tests/conftest.py's ``postgres_server`` and ``milvus_url``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facepipe.gallery.gallery import Gallery
from facepipe.pipeline.metrics import pairwise
from tests.helpers.extras import need

K = 5
pytestmark = pytest.mark.slow  # embedding ~70 faces with Dlib takes a minute or two on 2 shared cores


@dataclass(frozen=True)
class Embedded:
    """Every dataset face, embedded once: vectors (N, 128), ids, identities, the pipeline."""

    vectors: np.ndarray
    ids: list[str]
    identities: list[str]
    pipeline: object


@pytest.fixture(scope="session")
def embedded_faces(dataset: Path) -> Iterator[Embedded]:
    need("dlib")
    from facepipe.pipeline.orchestrator import Pipeline

    photos = sorted(p for p in dataset.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert photos, f"no photos in {dataset}"
    pipeline = Pipeline()
    assert (pipeline.config.detector.name, pipeline.config.recognizer.name) == ("dlib", "Dlib")
    per_photo = pipeline.represent([str(p) for p in photos], on_no_face="skip")
    vectors, ids, identities = [], [], []
    for photo, reps in zip(photos, per_photo):
        for index, rep in enumerate(reps):
            vectors.append(np.asarray(rep.embedding, dtype=np.float32))
            ids.append(f"{photo.stem}-{index}")
            identities.append(photo.stem)
    assert len(vectors) >= 50, f"only {len(vectors)} faces found in {len(photos)} photos"
    yield Embedded(np.stack(vectors), ids, identities, pipeline)
    pipeline.close()


def _fill(url: str, faces: Embedded) -> Gallery:
    pipeline = faces.pipeline
    gallery = Gallery(url, metric=pipeline.metric_name, fingerprint=pipeline.fingerprint)  # type: ignore[attr-defined]
    assert gallery.add(faces.vectors, ids=faces.ids, identities=faces.identities) == len(faces.ids)
    assert len(gallery) == len(faces.ids)
    return gallery


@pytest.fixture(scope="module")
def galleries(embedded_faces: Embedded, postgres_server: object, milvus_url: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Gallery]]:
    table = f"agree_{uuid.uuid4().hex[:10]}"
    opened = {
        "embedded": _fill(str(tmp_path_factory.mktemp("agree") / "faces"), embedded_faces),
        "pgvector": _fill(postgres_server.url() + f"?table={table}", embedded_faces),  # type: ignore[attr-defined]
        "milvus": _fill(f"{milvus_url}/agree_{uuid.uuid4().hex[:10]}", embedded_faces),
    }
    assert [g.spec.name for g in opened.values()] == list(opened)
    yield opened
    for gallery in opened.values():
        gallery.close()


def _canonical(hits: list[tuple[str, float]]) -> list[tuple[float, str]]:
    """Hits ordered by (distance to 1e-6, id): stores may order exact ties differently."""
    return sorted((round(d, 6), i) for i, d in hits)


def test_exact_top_k_is_the_same_in_every_store(embedded_faces: Embedded, galleries: dict[str, Gallery]) -> None:
    faces = embedded_faces
    truth = pairwise(faces.vectors.astype(np.float64), faces.vectors.astype(np.float64), "cosine")
    answers = {name: g.search(faces.vectors, k=K, exact=True) for name, g in galleries.items()}
    ties = 0
    for q, query_id in enumerate(faces.ids):
        order = np.argsort(truth[q], kind="stable")
        # a tie across the k-th place would make the set itself ambiguous; the photos have none
        assert truth[q][order[K]] - truth[q][order[K - 1]] > 1e-6, f"{query_id}: tie at the k-th place"
        want = {faces.ids[j]: truth[q][j] for j in order[:K]}
        rows = {name: [(h.id, h.distance) for h in found[q]] for name, found in answers.items()}
        for name, hits in rows.items():
            assert len(hits) == K, f"{name}: {len(hits)} hits for {query_id}"
            assert hits[0][0] == query_id or want[hits[0][0]] < 1e-6, f"{name}: {query_id} is not its own nearest"
            assert {i for i, _ in hits} == set(want), f"{name} top-{K} of {query_id}: {hits} vs {want}"
            np.testing.assert_allclose([d for _, d in hits], [want[i] for i, _ in hits], atol=1e-5,
                                       err_msg=f"{name} distances of {query_id}")
            assert all(a[1] <= b[1] + 1e-6 for a, b in zip(hits, hits[1:])), f"{name}: not nearest first"
            assert [h.identity for h in answers[name][q]] == [faces.identities[faces.ids.index(i)] for i, _ in hits]
        reference = rows["embedded"]
        for name in ("pgvector", "milvus"):
            if [i for i, _ in rows[name]] != [i for i, _ in reference]:
                ties += 1
                assert _canonical(rows[name]) == _canonical(reference), f"{name} vs embedded for {query_id}"
            np.testing.assert_allclose(sorted(d for _, d in rows[name]), sorted(d for _, d in reference),
                                       atol=1e-5, err_msg=f"{name} vs embedded distances of {query_id}")
    assert ties <= len(faces.ids) // 10, f"{ties} queries ordered differently (only exact ties may)"


def test_pipeline_search_agrees_across_stores(embedded_faces: Embedded, galleries: dict[str, Gallery],
                                              dataset: Path) -> None:
    """Pipeline.search (detect + embed the photo again) gives each store the same hits."""
    pipeline = embedded_faces.pipeline
    photo = dataset / "img1.jpg"
    results = {name: pipeline.search(str(photo), g, k=K) for name, g in galleries.items()}  # type: ignore[attr-defined]
    reference = results["embedded"]
    assert len(reference) == 1 and reference[0].hits[0].id == "img1-0"
    assert reference[0].hits[0].distance < 1e-5 and reference[0].hits[0].verified
    for name, found in results.items():
        assert [h.id for h in found[0].hits] == [h.id for h in reference[0].hits], name
        np.testing.assert_allclose([h.distance for h in found[0].hits], [h.distance for h in reference[0].hits],
                                   atol=1e-5, err_msg=name)
        assert [h.verified for h in found[0].hits] == [h.verified for h in reference[0].hits], name
