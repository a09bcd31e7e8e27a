"""stream(): a real video file through detection, identification and analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
cv2 = need("cv2")
need("dlib")

from facepipe import Pipeline  # noqa: E402
from facepipe.apps.stream import iter_stream, stream  # noqa: E402


def _letterbox(image: np.ndarray, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(size[0] / h, size[1] / w)
    small = cv2.resize(image, (int(w * scale), int(h * scale)))
    out = np.zeros((*size, 3), np.uint8)
    out[: small.shape[0], : small.shape[1]] = small
    return out


@pytest.fixture(scope="module")
def video(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for name in ("img1.jpg", "img1.jpg", "img12.jpg", "img12.jpg"):
        writer.write(_letterbox(cv2.imread(str(dataset / name))))
    writer.release()
    return path


@pytest.fixture(scope="module")
def gallery(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gallery")
    for name in ("img2.jpg", "img3.jpg"):  # Angelina, Jennifer
        shutil.copy(dataset / name, folder / name)
    return folder


def test_stream_identifies_and_writes_video(video: Path, gallery: Path, tmp_path: Path) -> None:
    pipeline = Pipeline.from_config({"detector": "opencv", "recognizer": "Dlib", "detect_max_side": 800,
                                     "analyzers": {"gender": "gender-offline"}})
    out = tmp_path / "annotated.mp4"
    results = stream(video, pipeline=pipeline, db_path=gallery, actions=["gender"], every_n_frames=2,
                     output_path=out)
    assert [r.frame_index for r in results] == [0, 2]
    (first,), (second,) = results[0].faces, results[1].faces
    assert Path(first.identity).name == "img2.jpg" and first.distance < pipeline.threshold()
    assert Path(second.identity).name == "img3.jpg"
    assert first.attributes["dominant_gender"] == "Woman"
    check = cv2.VideoCapture(str(out))
    assert int(check.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    check.release()


def test_iter_stream_yields_every_frame(video: Path) -> None:
    pipeline = Pipeline.from_config({"detector": "opencv", "recognizer": "Dlib", "detect_max_side": 800})
    items = list(iter_stream(video, pipeline, every_n_frames=3))
    assert [i for i, _, _ in items] == [0, 1, 2, 3]
    assert [r is not None for _, _, r in items] == [True, False, False, True]


def test_unopenable_source_is_a_typed_error(tmp_path: Path) -> None:
    pipeline = Pipeline.from_config({"detector": "opencv", "recognizer": "Dlib"})
    with pytest.raises(ValueError, match="could not open the video source"):
        list(iter_stream(tmp_path / "missing.mp4", pipeline))
