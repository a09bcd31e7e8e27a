"""Bulk ingest of a folder of photos into the embedded store: in-process, killed and resumed,
and on a real local 2-worker Ray cluster bound to 127.0.0.1 (hermetic plugins throughout)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepipe.gallery.gallery import Gallery
from facepipe.gallery.ingest import fingerprint_of, identity_of, ingest, pixels_sha256
from facepipe.pipeline.orchestrator import Pipeline
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry, synthetic_face_image
from facepipe.types import face_id

from tests.helpers.listeners import is_loopback, listening

REGISTRY_PATH = "facepipe.testing:hermetic_registry"


def write_photos(root: Path, people: int, per_person: int) -> dict[str, str]:
    """``root/p<i>/<k>.png`` photos with one synthetic face each; returns {path: identity}."""
    photos = {}
    for who in range(people):
        folder = root / f"p{who}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_person):
            path = folder / f"{k}.png"
            cv2.imwrite(str(path), synthetic_face_image(((who, 20 + 3 * k, 30, 96),), noise=4, seed=who * 100 + k))
            photos[str(path)] = f"p{who}"
    return photos


def expected_ids(photos: dict[str, str], fingerprint: str) -> set[str]:
    return {face_id(pixels_sha256(path), 0, fingerprint) for path in photos}


@pytest.fixture()
def pipeline():
    pipe = Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())
    yield pipe
    pipe.close()


def test_identity_from_folder_or_filename(tmp_path: Path) -> None:
    nested = str(tmp_path / "alice" / "2019" / "a.jpg")
    assert identity_of(nested, str(tmp_path), "folder") == "alice"
    assert identity_of(nested, str(tmp_path), "filename") == "a"
    assert identity_of(str(tmp_path / "bob.png"), str(tmp_path), "folder") == "bob"  # top level: the name


def test_in_process_ingest_is_idempotent(tmp_path: Path, pipeline: Pipeline) -> None:
    photos = write_photos(tmp_path / "photos", people=3, per_person=3)
    cv2.imwrite(str(tmp_path / "photos" / "p0" / "empty.png"), synthetic_face_image((), seed=5))
    calls: list[tuple[int, int]] = []

    report = ingest(tmp_path / "photos", str(tmp_path / "store"), pipeline, batch=4,
                    progress=lambda done, total: calls.append((done, total)))
    assert (report.photos, report.embedded, report.faces_added, report.no_face) == (10, 10, 9, 1)
    assert calls[-1] == (10, 10)

    fingerprint = fingerprint_of(pipeline)
    with Gallery(str(tmp_path / "store")) as gallery:
        assert len(gallery) == 9 and gallery.identities() == ["p0", "p1", "p2"]
        ids = sorted(expected_ids(photos, fingerprint))
        rows = gallery.get(ids)
        assert all(row is not None and row.fingerprint == fingerprint for row in rows)
        by_path = {os.path.join(str(tmp_path / "photos"), row.meta["path"]): row for row in rows}
        assert {path: row.identity for path, row in by_path.items()} == photos
        # the stored vector is the pipeline's embedding of the photo
        probe = next(iter(photos))
        hit = gallery.search(pipeline.represent(probe)[0].embedding, k=1)[0][0]
        assert hit.id == face_id(pixels_sha256(probe), 0, fingerprint) and hit.distance < 1e-5
        # Pipeline.register gives a photo the same ids: registering an ingested photo adds nothing
        assert [f.id for f in pipeline.register(probe, "p0", gallery)] == [hit.id]
        assert len(gallery) == 9

    again = ingest(tmp_path / "photos", str(tmp_path / "store"), pipeline, batch=4)
    assert (again.skipped, again.faces_added) == (9, 0)  # only the face-less photo is looked at again


def test_cli_ingest(tmp_path: Path) -> None:
    from facepipe.apps.cli import main

    write_photos(tmp_path / "photos", people=2, per_person=2)
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps(HERMETIC_CONFIG))
    argv = ["-q", "gallery", "ingest", str(tmp_path / "photos"), "--store", str(tmp_path / "store"),
            "--config", str(config), "--registry", REGISTRY_PATH, "--batch", "3"]
    assert main(argv) == 0
    assert main([*argv, "--json"]) == 0
    with Gallery(str(tmp_path / "store")) as gallery:
        assert len(gallery) == 4


_SLOW_INGEST = textwrap.dedent("""
    import sys, time
    from facepipe.gallery.ingest import ingest
    from facepipe.testing import HERMETIC_CONFIG, hermetic_registry
    # a pause after each batch, so the test can kill the run halfway
    ingest(sys.argv[1], sys.argv[2], HERMETIC_CONFIG, registry=hermetic_registry(), batch=2,
           progress=lambda done, total: time.sleep(0.15))
""")


def test_killed_ingest_resumes_without_duplicates(tmp_path: Path, pipeline: Pipeline) -> None:
    photos = write_photos(tmp_path / "photos", people=4, per_person=8)
    store = str(tmp_path / "store")
    script = tmp_path / "slow_ingest.py"
    script.write_text(_SLOW_INGEST)
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path / "photos"), store])
    try:
        stored = 0
        deadline = time.monotonic() + 120
        while stored < 8:
            assert run.poll() is None, "the ingest ended before it could be killed"
            assert time.monotonic() < deadline, "the ingest stored nothing in time"
            if (Path(store) / "gallery.sqlite").exists():
                with Gallery(store) as gallery:
                    stored = len(gallery)
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    with Gallery(store) as gallery:
        halfway = len(gallery)
    assert 8 <= halfway < len(photos)

    report = ingest(tmp_path / "photos", store, pipeline, batch=5)
    assert report.skipped == halfway and report.faces_added == len(photos) - halfway
    with Gallery(store) as gallery:
        assert len(gallery) == len(photos)
        assert all(row is not None for row in gallery.get(sorted(expected_ids(photos, fingerprint_of(pipeline)))))


@pytest.mark.slow
def test_ray_local_cluster_matches_in_process(tmp_path: Path, pipeline: Pipeline) -> None:
    pytest.importorskip("ray", reason="needs facepipe[ray] (ray is not installed)")
    photos = write_photos(tmp_path / "photos", people=3, per_person=4)
    cv2.imwrite(str(tmp_path / "photos" / "p1" / "empty.png"), synthetic_face_image((), seed=7))
    ingest(tmp_path / "photos", str(tmp_path / "here"), pipeline, batch=4)

    seen: list[tuple[str, int]] = []
    report = ingest(tmp_path / "photos", str(tmp_path / "ray"), HERMETIC_CONFIG, registry=REGISTRY_PATH,
                    batch=4, ray="local", ray_workers=2,
                    progress=lambda done, total: seen.extend(listening(os.getpid())))
    assert (report.embedded, report.faces_added, report.no_face) == (len(photos) + 1, len(photos), 1)
    assert seen, "no listening socket of the Ray cluster was seen"
    exposed = sorted({(host, port) for host, port in seen if not is_loopback(host)})
    assert not exposed, f"Ray listened off loopback: {exposed}"

    ids = sorted(expected_ids(photos, fingerprint_of(pipeline)))
    with Gallery(str(tmp_path / "here")) as here, Gallery(str(tmp_path / "ray")) as there:
        assert len(here) == len(there) == len(photos)
        assert [(f.identity, f.facial_area) for f in here.get(ids)] == [(f.identity, f.facial_area)
                                                                        for f in there.get(ids)]
        probe = pipeline.represent(next(iter(photos)))[0].embedding
        near_here = [(h.id, round(h.distance, 6)) for h in here.search(probe, k=len(photos))[0]]
        near_there = [(h.id, round(h.distance, 6)) for h in there.search(probe, k=len(photos))[0]]
        assert near_here == near_there
    assert np.isfinite(report.seconds)
