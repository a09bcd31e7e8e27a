"""The `facepipe` commands that detect and recognise, run in-process on the hermetic plugins.

``main(argv, registry=hermetic_registry())`` swaps the installed plugins for facepipe.testing's
numpy-only blob detector and grid recognizer, so every check here runs on any machine; photos
are synthetic (tests.helpers.synthetic_faces).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facepipe.apps.cli import main
from facepipe.apps.draw import KNOWN
from facepipe.testing import hermetic_registry
from tests.helpers.synthetic_faces import group_photo, photo, write_png

HERMETIC = ["--detector", "blob", "--recognizer", "grid", "--metric", "cosine", "--no-align"]


@pytest.fixture(scope="module")
def registry() -> Any:
    return hermetic_registry()


def run(registry: Any, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), registry=registry)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    return {
        "alice1": write_png(tmp_path / "alice1.png", photo(1, 0)),
        "alice2": write_png(tmp_path / "alice2.png", photo(1, 2)),
        "bob": write_png(tmp_path / "bob.png", photo(2, 1)),
        "group": write_png(tmp_path / "group.png", group_photo(1, 2)),
        "blank": write_png(tmp_path / "blank.png", np.zeros((120, 160, 3), np.uint8)),
    }


# ------------------------------------------------------------------------------------ verify
def test_verify_exit_code_says_same_or_different(registry: Any, capsys: Any, photos: dict[str, Path]) -> None:
    a, b, c = str(photos["alice1"]), str(photos["alice2"]), str(photos["bob"])
    code, out, _ = run(registry, capsys, "verify", a, b, "--exit-code", *HERMETIC)
    assert (code, out.split(":")[0]) == (0, "same person")
    code, out, _ = run(registry, capsys, "verify", a, c, "--exit-code", *HERMETIC)
    assert (code, out.split(":")[0]) == (1, "different people")
    code, _, _ = run(registry, capsys, "verify", a, c, *HERMETIC)  # without --exit-code: 0 as before
    assert code == 0


def test_on_no_face_policies(registry: Any, capsys: Any, photos: dict[str, Path]) -> None:
    blank = str(photos["blank"])
    code, out, err = run(registry, capsys, "represent", blank, *HERMETIC)
    assert code == 2 and out == "" and "no face could be detected" in err
    assert err.count("\n") == 1  # one line, no traceback
    code, out, _ = run(registry, capsys, "represent", blank, "--on-no-face", "skip", *HERMETIC)
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(registry, capsys, "represent", blank, "--on-no-face", "whole_image", *HERMETIC)
    (face,) = json.loads(out)
    assert face["facial_area"]["w"] == 160 and face["facial_area"]["h"] == 120
    code, out, _ = run(registry, capsys, "verify", blank, str(photos["bob"]), "--on-no-face", "whole_image",
                       "--json", *HERMETIC)
    assert code == 0 and json.loads(out)["verified"] is False


def test_represent_prints_one_compact_line_per_face(registry: Any, capsys: Any, photos: dict[str, Path]) -> None:
    code, out, _ = run(registry, capsys, "represent", str(photos["group"]), *HERMETIC)
    assert code == 0
    lines = out.strip().splitlines()
    faces = json.loads(out)
    assert len(lines) == len(faces) == 2
    assert all(len(face["embedding"]) == 64 for face in faces)
    assert " " not in lines[0]  # compact separators
    assert faces[0]["facial_area"]["x"] < faces[1]["facial_area"]["x"]


# ------------------------------------------------------------------------------------ draw
def test_draw_writes_boxes_landmarks_and_labels(registry: Any, capsys: Any, photos: dict[str, Path],
                                               tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    target = tmp_path / "out" / "drawn.png"
    code, out, _ = run(registry, capsys, "draw", str(photos["group"]), "--output", str(target), "--json", *HERMETIC)
    assert code == 0
    report = json.loads(out)
    assert report["output"] == str(target) and len(report["faces"]) == 2
    assert report["faces"][0]["label"] == "1.00"  # the detection confidence
    drawn = cv2.imread(str(target))
    original = cv2.imread(str(photos["group"]))
    assert drawn.shape == original.shape
    face = report["faces"][1]
    x, y, h = face["x"], face["y"], face["h"]
    assert tuple(drawn[y + h // 2, x]) == KNOWN  # the left edge of the box
    eye_x, eye_y = face["left_eye"]
    assert tuple(drawn[eye_y, eye_x]) != tuple(original[eye_y, eye_x])  # a landmark dot
    bare = tmp_path / "bare.png"
    run(registry, capsys, "draw", str(photos["group"]), "-o", str(bare), "--no-landmarks", *HERMETIC)
    assert tuple(cv2.imread(str(bare))[eye_y, eye_x]) == tuple(original[eye_y, eye_x])


def test_draw_rejects_an_unknown_image_format(registry: Any, capsys: Any, photos: dict[str, Path],
                                             tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    code, _, err = run(registry, capsys, "draw", str(photos["bob"]), "-o", str(tmp_path / "x.nope"), *HERMETIC)
    assert code == 2 and ".nope" in err


# ------------------------------------------------------------------------------------ video
def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    cv2 = pytest.importorskip("cv2")
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_video_identifies_faces_writes_output_and_summarises(registry: Any, capsys: Any, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    write_png(tmp_path / "gallery" / "alice.png", photo(1, 0))
    write_png(tmp_path / "gallery" / "bob.png", photo(2, 0))
    frames = [photo(1, 1)] * 3 + [photo(2, 2)] * 2 + [photo(7, 1)]  # alice, then bob, then a stranger
    video = _write_video(tmp_path / "in.avi", frames)
    output = tmp_path / "annotated.mp4"
    code, out, err = run(registry, capsys, "--progress", "video", str(video), "--db", str(tmp_path / "gallery"),
                         "--output", str(output), "--every", "1", *HERMETIC)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    per_frame, summary = lines[:-1], lines[-1]["summary"]
    assert [item["frame"] for item in per_frame] == list(range(6))
    names = [Path(f["identity"]).name if f["identity"] else None for item in per_frame for f in item["faces"]]
    assert names == ["alice.png"] * 3 + ["bob.png"] * 2 + [None]
    assert summary["frames"] == 6 and summary["processed"] == 6 and summary["faces"] == 6
    assert {Path(k).name: v for k, v in summary["identities"].items()} == {"alice.png": 3, "bob.png": 2}
    assert "Frames" in err and "Indexing faces" in err  # progress bars, forced on
    capture = cv2.VideoCapture(str(output))
    written = 0
    while capture.read()[0]:
        written += 1
    capture.release()
    assert written == 6


def test_video_every_and_summary_only(registry: Any, capsys: Any, tmp_path: Path) -> None:
    video = _write_video(tmp_path / "in.avi", [photo(1, k % 3) for k in range(7)])
    code, out, err = run(registry, capsys, "video", str(video), "--every", "3", *HERMETIC)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [item["frame"] for item in lines[:-1]] == [0, 3, 6]
    assert lines[-1]["summary"]["frames"] == 7 and lines[-1]["summary"]["processed"] == 3
    assert err == ""  # stderr is not a terminal here: no bar unless forced
    code, out, _ = run(registry, capsys, "video", str(video), "--summary-only", "--max-frames", "4", *HERMETIC)
    (line,) = out.splitlines()
    assert json.loads(line)["summary"]["frames"] == 4


def test_video_that_cannot_be_opened_is_a_clear_error(registry: Any, capsys: Any, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    code, out, err = run(registry, capsys, "video", str(tmp_path / "missing.mp4"), *HERMETIC)
    assert code == 2 and out == "" and "could not open the video" in err


# ------------------------------------------------------------------------------------ progress
def test_find_progress_follows_quiet_and_progress(registry: Any, capsys: Any, tmp_path: Path) -> None:
    for identity in (1, 2, 3):
        write_png(tmp_path / f"g{identity}" / f"p{identity}.png", photo(identity, 0))
    query = str(write_png(tmp_path / "q.png", photo(2, 1)))

    def find(*flags: str, folder: str) -> str:
        code, out, err = run(registry, capsys, *flags, "find", query, str(tmp_path / folder), *HERMETIC)
        assert code == 0, err
        (rows,) = json.loads(out)
        expected = ["p2.png"] if folder == "g2" else []  # the query shows person 2
        assert [Path(r["identity"]).name for r in rows] == expected
        return err

    assert "Indexing faces" in find("--progress", folder="g2")
    assert find("--quiet", folder="g1") == ""
    assert find(folder="g3") == ""  # not a terminal


def test_progress_flag_after_the_command(registry: Any, capsys: Any, tmp_path: Path) -> None:
    for identity in (1, 2):
        write_png(tmp_path / "gallery" / f"p{identity}.png", photo(identity, 0))
    query = str(write_png(tmp_path / "q.png", photo(1, 1)))
    code, _, err = run(registry, capsys, "find", query, str(tmp_path / "gallery"), "--progress", *HERMETIC)
    assert code == 0 and "Indexing faces" in err


def test_calibrate_shows_progress(registry: Any, capsys: Any, tmp_path: Path) -> None:
    rows = ["file_x,file_y,Decision"]
    for identity in range(1, 5):
        write_png(tmp_path / f"a{identity}.png", photo(identity, 0))
        write_png(tmp_path / f"b{identity}.png", photo(identity, 1))
        rows.append(f"a{identity}.png,b{identity}.png,Yes")
        rows.append(f"a{identity}.png,b{identity % 4 + 1}.png,No")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(registry, capsys, "--progress", "calibrate", str(tmp_path / "pairs.csv"), "--far", "0",
                         "--json", *HERMETIC)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == 1.0
    assert "Embedding photos" in err and "8/8" in err
