"""``Gallery`` over the embedded store, and ``Pipeline.register`` / ``Pipeline.search``.

Hermetic tests use the blob detector and grid recognizer of :mod:`facepipe.testing`; one test uses
real Dlib on the dataset photos (skipped without ``$FACEPIPE_DATA`` or dlib).
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from facepipe import Gallery, Pipeline
from facepipe.errors import ConfigError, StoreMismatchError, StoreURLError
from facepipe.testing import HERMETIC_CONFIG, check_store, hermetic_registry, synthetic_face_image


def test_embedded_store_through_the_registry_passes_the_kit(tmp_path: Path) -> None:
    counter = itertools.count()
    check_store(lambda **options: Gallery(str(tmp_path / f"g{next(counter)}"), **options).store)


def test_add_search_delete_and_persistence_across_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(10, 8)).astype(np.float32)
    with Gallery(str(tmp_path / "g"), fingerprint="m1") as g:
        assert g.add(vectors, ids=[f"id{i}" for i in range(10)], identities=["ann"] * 5 + ["bob"] * 5) == 10
        assert g.add(vectors, ids=[f"id{i}" for i in range(10)], identities=["ann"] * 10) == 0  # idempotent
        hits = g.search(vectors[7], k=3)
        assert len(hits) == 1 and hits[0][0].id == "id7" and hits[0][0].identity == "bob"
        assert hits[0][0].distance == pytest.approx(0.0, abs=1e-6) and hits[0][0].verified is None
        assert g.delete("id7") == 1 and len(g) == 9
    with Gallery(str(tmp_path / "g")) as again:  # reopened: everything but the deleted face is there
        assert len(again) == 9 and again.identities() == ["ann", "bob"] and again.fingerprint() == "m1"
        assert again.search(vectors[7], k=1)[0][0].id != "id7"
        assert again.add(vectors[:1] * 2, meta=[{"identity": "cy", "note": "x"}]) == 1  # id from the vector bytes
        assert "cy" in again.identities()
    with pytest.raises(StoreMismatchError):
        Gallery(str(tmp_path / "g"), fingerprint="m2")


def test_url_dispatch_errors_name_the_installed_schemes(tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match="installed schemes: .*file"):
        Gallery("redis://localhost/0")
    with pytest.raises(ConfigError, match="unknown key"):
        Gallery(str(tmp_path / "g"), not_an_option=1)
    with pytest.raises(ConfigError):
        Gallery(str(tmp_path / "g"), metric="manhattan")
    assert Gallery(f"file://{tmp_path / 'f'}").spec.name == "embedded"


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from facepipe import Gallery
    g = Gallery(sys.argv[1], fingerprint="fp")
    rng = np.random.default_rng(0)
    for batch in range(10_000):
        ids = [f"b{batch}-{i}" for i in range(50)]
        g.add(rng.normal(size=(50, 64)).astype(np.float32), ids=ids, identities=[f"p{batch}"] * 50)
        print(batch, flush=True)
""")


def test_a_killed_writer_leaves_a_consistent_store(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(4):  # let a few batches commit, then kill it mid-stream
            assert proc.stdout.readline(), "the writer died before writing"
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    db = sqlite3.connect(folder / "gallery.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Gallery(str(folder)) as g:
        n = len(g)
        assert n >= 200 and n % 50 == 0, f"{n} rows: a batch was half-written"
        assert len(g.identities()) == n // 50
        assert sum(len(row) for row in g.search(np.ones((1, 64)), k=n)) == n
        assert g.add(np.ones((1, 64)), ids=["after"], identities=["z"]) == 1  # still writable


# ------------------------------------------------------------------------------ pipeline
@pytest.fixture
def hermetic() -> Pipeline:
    pipeline = Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())
    yield pipeline
    pipeline.close()


def test_register_then_search_with_a_hermetic_pipeline(tmp_path: Path, hermetic: Pipeline) -> None:
    alice = synthetic_face_image([(1, 40, 30, 96)], seed=1)
    bob = synthetic_face_image([(2, 40, 30, 96)], seed=2)
    group = synthetic_face_image([(1, 10, 20, 64), (3, 110, 20, 64)], size=(160, 200), noise=4, seed=3)
    with Gallery(str(tmp_path / "g")) as g:
        stored = hermetic.register(alice, "alice", g, meta={"camera": "front"})
        assert len(stored) == 1 and stored[0].fingerprint == hermetic.fingerprint
        assert stored[0].meta["camera"] == "front"
        hermetic.register([bob], "bob", g)
        assert hermetic.register(alice.copy(), "alice", g) == stored  # same pixels: same id, nothing new
        assert len(g) == 2 and g.identities() == ["alice", "bob"]
        results = hermetic.search(group, g, k=2)
        assert len(results) == 2  # one entry per face of the group photo
        first, second = results
        assert first.hits[0].identity == "alice" and first.hits[0].verified
        assert not any(h.verified for h in second.hits)  # identity 3 was never registered
        batch = hermetic.search([alice, bob], g, k=1)
        assert [[m.hits[0].identity for m in image] for image in batch] == [["alice"], ["bob"]]


def test_search_refuses_a_gallery_of_another_pipeline_or_metric(tmp_path: Path, hermetic: Pipeline) -> None:
    image = synthetic_face_image([(1, 40, 30, 96)])
    with Gallery(str(tmp_path / "g"), fingerprint="someone-else") as g:
        with pytest.raises(StoreMismatchError):
            hermetic.register(image, "alice", g)
        assert len(g) == 0
        with pytest.raises(StoreMismatchError, match="fingerprint"):
            hermetic.search(image, g)
    with Gallery(str(tmp_path / "e"), metric="euclidean") as g:
        with pytest.raises(ConfigError, match="metric"):
            hermetic.search(image, g)


def test_fingerprint_follows_what_changes_embeddings() -> None:
    registry = hermetic_registry()
    base = Pipeline.from_config(HERMETIC_CONFIG, registry=registry)
    same = Pipeline.from_config({**HERMETIC_CONFIG, "batch_size": 3, "threshold": 0.1}, registry=registry)
    other = Pipeline.from_config({**HERMETIC_CONFIG, "expand_percentage": 10}, registry=registry)
    assert base.fingerprint == same.fingerprint  # batching and thresholds do not change embeddings
    assert base.fingerprint != other.fingerprint and base.fingerprint.startswith("grid-")


def test_register_and_search_dataset_photos_with_dlib(tmp_path: Path, dataset: Path) -> None:
    pytest.importorskip("dlib")
    pipeline = Pipeline.from_config({"detector": "dlib", "recognizer": "dlib", "metric": "cosine"})
    try:
        with Gallery(str(tmp_path / "g")) as g:
            pipeline.register(dataset / "img1.jpg", "angelina", g)
            pipeline.register(dataset / "img3.jpg", "scarlett", g)  # deepface's dataset: img3 is not img1's person
            (matches,) = pipeline.search(dataset / "img2.jpg", g, k=2)  # img2 is img1's person
            assert matches.hits[0].identity == "angelina" and matches.hits[0].verified
            assert not matches.hits[1].verified
    finally:
        pipeline.close()
