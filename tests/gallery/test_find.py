"""find() over a folder with the incremental SQLite index (facepipe.gallery.find / facepipe.gallery.index_store).

The real pipeline (opencv detector, Dlib recognizer with its real weights, cosine) runs on copies
of the dataset photos.  Indexes are built once per module and copied, so each test pays only
for the files it changes.  The 1,000-image acceptance test uses the ``skip`` detector and a tiny
test recognizer: Dlib costs ~0.2-0.4 s per face on a CI core, which would make 1,000 faces a
multi-minute test while proving nothing more about the index.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
need("cv2")
need("dlib")

from facepipe import Pipeline  # noqa: E402
from facepipe.errors import (  # noqa: E402
    EmptyDatasourceError,
    FaceNotDetectedError,
    PathNotFoundError,
)
from facepipe.gallery.find import COLUMNS, INDEX_DIR_NAME, FaceIndex, find, list_images  # noqa: E402
from facepipe.gallery.index_store import face_crc  # noqa: E402
from facepipe.types import PluginConfig, Recognizer  # noqa: E402

CONFIG = {"detector": "opencv", "recognizer": "Dlib", "metric": "cosine", "detect_max_side": 800}
ANGELINA = {"img1.jpg", "img2.jpg", "img4.jpg", "img5.jpg", "img6.jpg", "img7.jpg", "img10.jpg",
            "img11.jpg", "couple.jpg"}
SMALL = ("img5.jpg", "img10.jpg", "img12.jpg")  # small photos: Angelina, Angelina, Jennifer


# ----------------------------------------------------------------------------------- helpers
class Counter:
    """Wraps pipeline.embed_faces / pipeline.faces to count what reaches the models."""

    def __init__(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.embed_calls = 0
        self.faces_embedded = 0
        self.images_detected = 0
        embed, faces = pipeline.embed_faces, pipeline.faces

        def counting_embed(items: Any) -> np.ndarray:
            self.embed_calls += 1
            self.faces_embedded += len(items)
            return embed(items)

        def counting_faces(sources: Any, **kw: Any) -> Any:
            self.images_detected += len(sources)
            return faces(sources, **kw)

        monkeypatch.setattr(pipeline, "embed_faces", counting_embed)
        monkeypatch.setattr(pipeline, "faces", counting_faces)


def names(result: Any) -> list[str]:
    return [os.path.basename(row["identity"]) for row in result.rows]


def copy_db(src: Path, dst: Path, *, keep_times: bool = True) -> Path:
    shutil.copytree(src, dst, copy_function=shutil.copy2 if keep_times else shutil.copy)
    return dst


def index_file(db: Path) -> Path:
    files = sorted((db / INDEX_DIR_NAME).glob("*.sqlite"))
    assert len(files) == 1, files
    return files[0]


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    p = Pipeline.from_config(CONFIG)
    yield p
    p.close()


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory, dataset: Path, pipeline: Pipeline) -> Path:
    """img1..img25 at the top, couple.jpg and the WebP-named-.jpg img47.jpg in a sub-folder; indexed."""
    db = tmp_path_factory.mktemp("find") / "base"
    (db / "more").mkdir(parents=True)
    for i in range(1, 26):
        shutil.copy2(dataset / f"img{i}.jpg", db / f"img{i}.jpg")
    shutil.copy2(dataset / "couple.jpg", db / "more" / "couple.jpg")
    shutil.copy2(dataset / "img47.jpg", db / "more" / "img47.jpg")
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
    assert (stats.added, stats.ignored, stats.errors) == (26, 1, 0)
    return db


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory, dataset: Path, pipeline: Pipeline) -> Path:
    db = tmp_path_factory.mktemp("find") / "small"
    db.mkdir()
    for name in SMALL:
        shutil.copy2(dataset / name, db / name)
    with FaceIndex.open(db, pipeline) as index:
        assert index.refresh(progress=False).embedded == 3
    return db


# ----------------------------------------------------------------------------------- search results
def test_query_img1_finds_itself_then_the_angelina_group(base_db: Path, dataset: Path, pipeline: Pipeline,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counter(pipeline, monkeypatch)
    results = find(pipeline, dataset / "img1.jpg", base_db)
    assert counter.embed_calls == 1 and counter.faces_embedded == 1  # the query only: the index is current
    assert len(results) == 1
    result = results[0]
    threshold = pipeline.threshold()
    assert result.threshold == threshold == 0.07
    first = result.rows[0]
    assert first["identity"] == os.path.join(str(base_db), "img1.jpg")
    assert first["distance"] < 1e-6 and first["confidence"] == 100.0
    # Every Angelina photo of the folder ranks ahead of everybody else, all within the threshold.
    top = names(result)[:len(ANGELINA)]
    assert set(top) == ANGELINA
    assert all(row["distance"] <= threshold for row in result.rows)
    assert all(51 <= row["confidence"] <= 100 for row in result.rows)
    distances = [row["distance"] for row in result.rows]
    assert distances == sorted(distances)
    assert all(d == round(d, 6) for d in distances)
    assert "img3.jpg" not in names(result)  # Jennifer
    # the query box and the stored box of img1 are the same face
    assert (first["source_x"], first["source_y"], first["source_w"]) == \
        (first["target_x"], first["target_y"], first["target_w"])


def test_rows_and_dataframe_have_deepfaces_columns(base_db: Path, dataset: Path, pipeline: Pipeline) -> None:
    result = find(pipeline, dataset / "img1.jpg", base_db, k=3)[0]
    assert len(result) == 3
    row = result.rows[0]
    assert set(row) == set(COLUMNS)
    assert len(row["hash"]) == 64
    assert all(isinstance(row[c], int) for c in ("target_x", "target_y", "target_w", "target_h",
                                                  "source_x", "source_y", "source_w", "source_h"))
    assert all(isinstance(row[c], float) for c in ("threshold", "distance", "confidence"))
    frame = result.to_pandas()
    assert list(frame.columns) == ["identity", "hash", "target_x", "target_y", "target_w", "target_h",
                                   "threshold", "source_x", "source_y", "source_w", "source_h", "distance",
                                   "confidence"]
    assert len(frame) == 3 and frame["distance"].is_monotonic_increasing
    empty = find(pipeline, dataset / "img1.jpg", base_db, threshold=-1.0)[0]
    assert len(empty) == 0 and list(empty.to_pandas().columns) == list(COLUMNS)


def test_threshold_k_and_similarity_search(base_db: Path, dataset: Path, pipeline: Pipeline) -> None:
    only_self = find(pipeline, dataset / "img1.jpg", base_db, threshold=0.0)[0]
    assert names(only_self) == ["img1.jpg"]
    everything = find(pipeline, dataset / "img1.jpg", base_db, similarity_search=True)[0]
    assert len(everything) == 27  # 25 photos + the 2 faces of couple.jpg; img47 is not indexed
    assert any(row["distance"] > row["threshold"] for row in everything.rows)
    assert all(row["confidence"] <= 49 for row in everything.rows if row["distance"] > row["threshold"])
    top = find(pipeline, dataset / "img1.jpg", base_db, similarity_search=True, k=16)[0]
    assert [r["identity"] for r in top.rows] == [r["identity"] for r in everything.rows[:16]]
    with pytest.raises(ValueError, match="k must be"):
        find(pipeline, dataset / "img1.jpg", base_db, k=0)


def test_webp_named_jpg_is_never_indexed_and_couple_gives_two_records(base_db: Path, pipeline: Pipeline) -> None:
    with FaceIndex.open(base_db, pipeline) as index:
        identities = [r.identity for r in index.records]
        assert not any("img47" in i for i in identities)
        assert identities.count("more/couple.jpg") == 2
        assert len(index.records) == 27 and index.n_files == 26
        assert index.embeddings.shape == (27, 128) and index.embeddings.dtype == np.float32
        couple = [r for r in index.records if r.identity == "more/couple.jpg"]
        assert [r.face_index for r in couple] == [0, 1] and couple[0].x != couple[1].x
    listed = list_images(base_db)
    assert len(listed) == 26 and not any("img47" in p for p in listed)


def test_multi_face_query_gives_one_result_per_face(base_db: Path, dataset: Path, pipeline: Pipeline) -> None:
    results = find(pipeline, dataset / "couple.jpg", base_db)
    assert len(results) == 2
    boxes = {(r.rows[0]["source_x"], r.rows[0]["source_y"]) for r in results}
    assert len(boxes) == 2
    for result in results:  # each face of the couple finds itself first
        assert names(result)[0] == "couple.jpg" and result.rows[0]["distance"] < 1e-6


def test_search_api(base_db: Path, dataset: Path, pipeline: Pipeline) -> None:
    query = pipeline.represent(dataset / "img2.jpg")[0].embedding
    with FaceIndex.open(base_db, pipeline) as index:
        hits = index.search(query[None, :], k=2)
        assert len(hits) == 1 and len(hits[0].indices) == 2
        assert index.records[int(hits[0].indices[0])].identity == "img2.jpg"
        assert hits[0].distances[0] < 1e-5 <= hits[0].distances[1]
        close = index.search([query], max_distance=0.07)[0]
        assert all(d <= 0.07 for d in close.distances)
        with pytest.raises(ValueError, match="dimensions|shape"):
            index.distances(np.zeros((1, 64), np.float32))


def test_query_without_a_face(base_db: Path, pipeline: Pipeline) -> None:
    blank = np.full((200, 200, 3), 90, dtype=np.uint8)
    with pytest.raises(FaceNotDetectedError):
        find(pipeline, blank, base_db)
    assert find(pipeline, blank, base_db, on_no_face="skip") == []


# ----------------------------------------------------------------------------------- errors
def test_missing_and_empty_folders(tmp_path: Path, dataset: Path, pipeline: Pipeline) -> None:
    with pytest.raises(PathNotFoundError):
        find(pipeline, dataset / "img1.jpg", tmp_path / "nope")
    with pytest.raises(PathNotFoundError):
        find(pipeline, dataset / "img1.jpg", dataset / "img1.jpg")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyDatasourceError, match="No item found"):
        find(pipeline, dataset / "img1.jpg", empty)
    webp_only = tmp_path / "webp"
    webp_only.mkdir()
    shutil.copy2(dataset / "img47.jpg", webp_only / "img47.jpg")
    (webp_only / "notes.txt").write_text("not a photo")
    with pytest.raises(EmptyDatasourceError):
        find(pipeline, dataset / "img1.jpg", webp_only)


def test_bad_images_are_skipped_not_fatal(small_db: Path, tmp_path: Path, dataset: Path, pipeline: Pipeline,
                                          caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    db = copy_db(small_db, tmp_path / "db")
    data = (dataset / "img5.jpg").read_bytes()
    (db / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (db / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(5000))  # JPEG magic, then noise
    (db / "random.png").write_bytes(os.urandom(3000))  # not a PNG at all: ignored
    buf = io.BytesIO()
    Image.new("RGB", (240, 240), (90, 120, 150)).save(buf, format="PNG")
    (db / "sub").mkdir()
    (db / "sub" / "Blank.PNG").write_bytes(buf.getvalue())  # decodes, has no face

    with caplog.at_level(logging.WARNING, logger="facepipe.gallery.find"), FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.ignored, stats.errors) == (3, 1, 2)
        assert index.unsearchable == {"truncated.jpg": "error", "garbage.jpg": "error", "sub/Blank.PNG": "noface"}
        assert {r.identity for r in index.records} == set(SMALL)
    assert "truncated.jpg" in caplog.text and "garbage.jpg" in caplog.text

    counter = Counter(pipeline, monkeypatch)  # the outcome is remembered: nothing is retried
    with FaceIndex.open(db, pipeline) as index:
        assert index.refresh(progress=False).embedded == 0
    assert counter.images_detected == 0
    result = find(pipeline, dataset / "img5.jpg", db, similarity_search=True)[0]
    assert {os.path.basename(r["identity"]) for r in result.rows} == set(SMALL)


# ----------------------------------------------------------------------------------- incremental
def test_adding_one_image_embeds_only_that_one(base_db: Path, tmp_path: Path, dataset: Path,
                                               pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    db = copy_db(base_db, tmp_path / "db")
    (db / "new").mkdir()
    shutil.copy2(dataset / "img27.jpg", db / "new" / "img27.jpg")
    counter = Counter(pipeline, monkeypatch)
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.removed, stats.changed, stats.unchanged) == (1, 0, 0, 26)
        assert stats.embedded == 1
        assert len(index.records) == 28
    assert counter.images_detected == 1 and counter.embed_calls == 1 and counter.faces_embedded == 1


def test_changed_content_is_embedded_again(base_db: Path, tmp_path: Path, dataset: Path, pipeline: Pipeline,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image, ImageOps

    db = copy_db(base_db, tmp_path / "db")
    with FaceIndex.open(db, pipeline) as index:
        before = {r.identity: r.sha256 for r in index.records}
    mirrored = ImageOps.mirror(Image.open(dataset / "img2.jpg").convert("RGB"))
    mirrored.save(db / "img2.jpg", format="JPEG", quality=92)
    shutil.copyfile(dataset / "img3.jpg", db / "img8.jpg")  # new content that the index already holds
    counter = Counter(pipeline, monkeypatch)
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.removed, stats.changed, stats.unchanged) == (0, 0, 2, 24)
        assert stats.embedded == 1
        after = {r.identity: r.sha256 for r in index.records}
    assert counter.faces_embedded == 1
    assert after["img2.jpg"] != before["img2.jpg"]
    assert after["img8.jpg"] == before["img3.jpg"]
    result = find(pipeline, dataset / "img3.jpg", db, threshold=0.0)[0]
    assert sorted(names(result)) == ["img3.jpg", "img8.jpg"]


def test_removed_file_is_dropped(base_db: Path, tmp_path: Path, dataset: Path, pipeline: Pipeline,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    db = copy_db(base_db, tmp_path / "db")
    (db / "img5.jpg").unlink()
    shutil.rmtree(db / "more")
    counter = Counter(pipeline, monkeypatch)
    result = find(pipeline, dataset / "img1.jpg", db, similarity_search=True)[0]
    assert counter.faces_embedded == 1  # the query
    found = names(result)
    assert "img5.jpg" not in found and "couple.jpg" not in found and len(found) == 24
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.removed, stats.unchanged) == (0, 0, 24)
        # contents nobody refers to are gone from the file too
        con = sqlite3.connect(index.path)
        assert con.execute("SELECT COUNT(*) FROM contents").fetchone()[0] == 24
        con.close()


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_copied_or_moved_folder_is_not_embedded_again(base_db: Path, tmp_path: Path, dataset: Path,
                                                      pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
                                                      how: str) -> None:
    db = copy_db(base_db, tmp_path / "first", keep_times=False)  # new mtimes: files are re-hashed
    if how == "moved":
        db = Path(shutil.move(str(db), str(tmp_path / "elsewhere" / "second")))
    counter = Counter(pipeline, monkeypatch)
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.removed, stats.changed, stats.unchanged, stats.embedded) == (0, 0, 0, 26, 0)
    assert counter.images_detected == 0 and counter.embed_calls == 0
    result = find(pipeline, dataset / "img1.jpg", db)[0]
    assert result.rows[0]["identity"] == os.path.join(str(db), "img1.jpg")
    assert counter.faces_embedded == 1  # the query only


def test_renamed_file_is_not_embedded_again(small_db: Path, tmp_path: Path, pipeline: Pipeline,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    db = copy_db(small_db, tmp_path / "db")
    (db / "people").mkdir()
    os.rename(db / "img5.jpg", db / "people" / "angelina.jpg")
    counter = Counter(pipeline, monkeypatch)
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.removed, stats.embedded) == (1, 1, 0)
        assert "people/angelina.jpg" in {r.identity for r in index.records}
    assert counter.embed_calls == 0


def test_interrupted_refresh_keeps_its_progress(small_db: Path, tmp_path: Path, pipeline: Pipeline,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db"
    db.mkdir()
    for name in SMALL:
        shutil.copy2(small_db / name, db / name)
    real = pipeline.embed_faces
    calls = {"n": 0}

    def failing(items: Any) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("interrupted")
        return real(items)

    monkeypatch.setattr(pipeline, "embed_faces", failing)
    with pytest.raises(RuntimeError, match="interrupted"), FaceIndex.open(db, pipeline, chunk_files=1) as index:
        index.refresh(progress=False)
    monkeypatch.setattr(pipeline, "embed_faces", real)
    seen: list[tuple[int, int]] = []
    with FaceIndex.open(db, pipeline, chunk_files=1) as index:
        stats = index.refresh(progress=lambda done, total: seen.append((done, total)))
        assert (stats.added, stats.unchanged, stats.embedded) == (2, 1, 2)
        assert len(index.records) == 3
    assert seen == [(1, 2), (2, 2)]


def test_index_is_keyed_by_the_pipeline_settings(small_db: Path, tmp_path: Path, dataset: Path,
                                                 pipeline: Pipeline) -> None:
    db = copy_db(small_db, tmp_path / "db")
    find(pipeline, dataset / "img5.jpg", db, align=False)
    files = sorted((db / INDEX_DIR_NAME).glob("*.sqlite"))
    assert len(files) == 2 and all(f.name.startswith("dlib-opencv-") for f in files)
    euclidean = Pipeline.from_config({**CONFIG, "metric": "euclidean_l2"})  # same embeddings: same index
    with FaceIndex.open(db, euclidean) as index, FaceIndex.open(db, pipeline) as default:
        assert index.path == default.path and index.exists
    contract = json.loads(sqlite3.connect(files[0]).execute(
        "SELECT value FROM meta WHERE name = 'contract'").fetchone()[0])
    assert contract["model"] == "Dlib" and contract["detector"] == "opencv"
    assert contract["recognizer"]["weights"]  # the weights checksum is part of the key


def test_index_dir_option_leaves_the_folder_untouched(small_db: Path, tmp_path: Path, dataset: Path,
                                                      pipeline: Pipeline) -> None:
    db = tmp_path / "db"
    db.mkdir()
    shutil.copy2(small_db / "img5.jpg", db / "img5.jpg")
    result = find(pipeline, dataset / "img5.jpg", db, index_dir=tmp_path / "indexes")[0]
    assert names(result) == ["img5.jpg"]
    assert sorted(p.name for p in db.iterdir()) == ["img5.jpg"]
    assert len(list((tmp_path / "indexes").glob("*.sqlite"))) == 1


# ----------------------------------------------------------------------------------- corruption
def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _wrong_schema(path: Path) -> None:
    path.unlink()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE stuff (a INTEGER)")
    con.commit()
    con.close()


def _wrong_dims_meta(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '64' WHERE name = 'dim'")
    con.commit()
    con.close()


def _wrong_dims_row(path: Path) -> None:
    # A well-formed row (valid checksum) whose embedding has the wrong length.
    con = sqlite3.connect(path)
    sha, index, x, y, w, h, conf = con.execute(
        "SELECT sha256, face_index, x, y, w, h, confidence FROM faces LIMIT 1").fetchone()
    blob = np.ones(64, dtype="<f4").tobytes()
    con.execute("UPDATE faces SET embedding = ?, crc = ? WHERE sha256 = ? AND face_index = ?",
                (blob, face_crc(sha, index, x, y, w, h, conf, blob), sha, index))
    con.commit()
    con.close()


def _flipped_value(path: Path) -> None:
    # Valid SQLite, but one stored embedding changed behind the index's back.
    con = sqlite3.connect(path)
    sha, blob = con.execute("SELECT sha256, embedding FROM faces LIMIT 1").fetchone()
    vector = np.frombuffer(blob, dtype="<f4").copy()
    vector[:] = vector[::-1]
    con.execute("UPDATE faces SET embedding = ? WHERE sha256 = ?", (vector.tobytes(), sha))
    con.commit()
    con.close()


@pytest.mark.parametrize("damage", [_garbage, _truncate, _wrong_schema, _wrong_dims_meta, _wrong_dims_row,
                                    _flipped_value], ids=lambda f: f.__name__.strip("_"))
def test_damaged_index_is_rebuilt_with_a_warning(small_db: Path, tmp_path: Path, dataset: Path,
                                                 pipeline: Pipeline, caplog: pytest.LogCaptureFixture,
                                                 damage: Any) -> None:
    db = copy_db(small_db, tmp_path / "db")
    damage(index_file(db))
    with caplog.at_level(logging.WARNING, logger="facepipe.gallery.find"):
        result = find(pipeline, dataset / "img5.jpg", db, similarity_search=True)[0]
    assert "damaged" in caplog.text and "rebuilt" in caplog.text
    assert names(result)[0] == "img5.jpg" and result.rows[0]["distance"] < 1e-6
    assert sorted(names(result)) == sorted(SMALL)
    assert (db / INDEX_DIR_NAME / (index_file(db).name + ".corrupt")).exists()
    with FaceIndex.open(db, pipeline) as index:  # the rebuilt index is sound and current
        assert index.refresh(progress=False).embedded == 0


def test_garbage_in_the_middle_never_gives_a_wrong_answer(small_db: Path, tmp_path: Path, dataset: Path,
                                                          pipeline: Pipeline) -> None:
    rng = np.random.default_rng(3)
    for trial in range(3):
        db = copy_db(small_db, tmp_path / f"db{trial}")
        path = index_file(db)
        data = bytearray(path.read_bytes())
        start = int(rng.integers(100, len(data) - 600))
        data[start:start + 512] = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
        result = find(pipeline, dataset / "img5.jpg", db, similarity_search=True)[0]
        assert names(result)[0] == "img5.jpg" and result.rows[0]["distance"] < 1e-6
        assert sorted(names(result)) == sorted(SMALL)


# ----------------------------------------------------------------------------------- processes
_WORKER = textwrap.dedent("""
    import json, sys
    from facepipe import Pipeline
    from facepipe.gallery.find import FaceIndex
    pipeline = Pipeline.from_config(json.loads(sys.argv[2]))
    with FaceIndex.open(sys.argv[1], pipeline, chunk_files=1) as index:
        stats = index.refresh(progress=False)
        print(json.dumps({"embedded": stats.embedded, "records": len(index.records)}))
""")


def test_two_processes_refreshing_at_once_leave_a_consistent_index(tmp_path: Path, dataset: Path,
                                                                   pipeline: Pipeline) -> None:
    db = tmp_path / "db"
    db.mkdir()
    names_ = ["img5.jpg", "img10.jpg", "img12.jpg", "img21.jpg", "img25.jpg"]
    for name in names_:
        shutil.copy2(dataset / name, db / name)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "FACEPIPE_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, str(script), str(db), json.dumps(CONFIG)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["embedded"] for o in outputs) == [0, len(names_)]  # one did the work, once
    assert all(o["records"] == len(names_) for o in outputs)
    with FaceIndex.open(db, pipeline) as index:
        assert index.refresh(progress=False).embedded == 0
        assert sorted(r.identity for r in index.records) == sorted(names_)
        con = sqlite3.connect(index.path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()


# ----------------------------------------------------------------------------------- 1,000 images
class TinyConfig(PluginConfig):
    """No options."""


class TinyRecognizer(Recognizer):
    """A test recognizer: the 8x8 colour thumbnail of the crop (192-d).  Fast enough for 1,000 faces."""

    config_class = TinyConfig
    input_size = (8, 8)
    embedding_size = 192
    thresholds = {"cosine": 0.001}

    def preprocess(self, faces: Any) -> np.ndarray:
        import cv2

        return np.stack([cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA) for f in faces]).astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), -1) / 255.0


def _tiny_pipeline() -> Pipeline:
    from facepipe.registry import PluginRegistry
    from facepipe.specs import RecognizerSpec

    registry = PluginRegistry()
    registry.add(RecognizerSpec(name="TinyTest", factory=f"{__name__}:TinyRecognizer", config=TinyConfig))
    return Pipeline.from_config({"detector": "skip", "recognizer": "TinyTest", "metric": "cosine"},
                                registry=registry)


def _variants(dataset: Path, out: Path, count: int, seed: int) -> list[Path]:
    """``count`` distinct ~150x150 JPEGs: random crops / flips / brightness of dataset photos."""
    from PIL import Image, ImageEnhance, ImageOps

    rng = np.random.default_rng(seed)
    sources = [Image.open(dataset / n).convert("RGB") for n in ("img5.jpg", "img12.jpg", "img25.jpg", "img21.jpg")]
    paths = []
    for i in range(count):
        img = sources[i % len(sources)]
        side = int(rng.integers(120, min(img.size)))
        x, y = int(rng.integers(0, img.width - side + 1)), int(rng.integers(0, img.height - side + 1))
        tile = img.crop((x, y, x + side, y + side)).resize((150, 150))
        if rng.random() < 0.5:
            tile = ImageOps.mirror(tile)
        tile = ImageEnhance.Brightness(tile).enhance(float(rng.uniform(0.7, 1.3)))
        path = out / f"p{i // 100:02d}" / f"face{i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        tile.save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def test_adding_one_image_to_a_folder_of_1000_embeds_only_that_image(tmp_path: Path, dataset: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _tiny_pipeline()
    db = tmp_path / "thousand"
    paths = _variants(dataset, db, 1000, seed=7)
    assert len({p.read_bytes() for p in paths}) == 1000
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.embedded, stats.faces) == (1000, 1000, 1000)
    extra = _variants(dataset, tmp_path / "extra", 1, seed=99)[0]
    shutil.copy2(extra, db / "p05" / "new.jpg")
    counter = Counter(pipeline, monkeypatch)
    with FaceIndex.open(db, pipeline) as index:
        stats = index.refresh(progress=False)
        assert (stats.added, stats.unchanged, stats.embedded) == (1, 1000, 1)
        assert len(index.records) == 1001
    assert counter.images_detected == 1 and counter.faces_embedded == 1
    result = find(pipeline, extra, db, threshold=0.0)[0]
    assert names(result) == ["new.jpg"]
