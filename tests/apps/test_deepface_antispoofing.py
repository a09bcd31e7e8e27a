"""``anti_spoofing=True`` in the DeepFace facade: deepface's keys, error type and exact messages.

The Fasnet plugin runs on synthetic MiniFASNet graphs (``tests/helpers/synthetic_fasnet.py``)
put in a fresh ``$FACEPIPE_HOME``: the neutral seed-7 graphs of the parity reference, or graphs
that lean to "real" or to "fake" so the verdict is known.  Detection and recognition are the real
OpenCV + Dlib, on the dataset photos.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need

need("dlib")
need("cv2")
need("onnxruntime")
need("onnx")

from facepipe import DeepFace  # noqa: E402
from facepipe.errors import WeightsError  # noqa: E402
from facepipe.functions import clear_models  # noqa: E402
from facepipe.plugins.antispoofers.fasnet import FasnetConfig, FasnetSpoofer  # noqa: E402
from facepipe.weights import manager as weights  # noqa: E402
from tests.helpers.synthetic_fasnet import synthetic_fasnet  # noqa: E402

KEYS = ["face", "facial_area", "confidence", "is_real", "antispoof_score"]


@pytest.fixture
def fasnet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """``fasnet_home(lean)`` points facepipe at a fresh home holding those synthetic graphs."""

    def use(lean: str = "", seed: int = 7, extra: tuple[Path, ...] = ()) -> Path:
        home = tmp_path / f"home-{lean or 'neutral'}-{seed}"
        (home / "weights").mkdir(parents=True, exist_ok=True)
        for path in (*synthetic_fasnet(seed, lean).values(), *extra):
            shutil.copy(path, home / "weights" / path.name)
        _fresh(monkeypatch, home)
        return home

    yield use
    _forget()


def _fresh(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("FACEPIPE_HOME", str(home))
    monkeypatch.setattr(weights, "_default", None)
    _forget()


def _forget() -> None:
    # Cached pipelines and plugin instances hold the previous home's sessions.
    clear_models()
    DeepFace._built.clear()


def test_extract_faces_reports_fasnets_verdict(dataset: Path, fasnet_home: Callable[..., Path]) -> None:
    import cv2

    home = fasnet_home()
    faces = DeepFace.extract_faces(str(dataset / "couple.jpg"), anti_spoofing=True)
    assert len(faces) == 2
    image = cv2.imread(str(dataset / "couple.jpg"))
    plugin = FasnetSpoofer(FasnetConfig(v2_weights_path=home / "weights" / "2.7_80x80_MiniFASNetV2.onnx",
                                        v1se_weights_path=home / "weights" / "4_0_0_80x80_MiniFASNetV1SE.onnx"))
    for face in faces:
        assert list(face) == KEYS
        assert type(face["is_real"]) is bool and type(face["antispoof_score"]) is float
        area = face["facial_area"]
        is_real, score = plugin.analyze(image, (area["x"], area["y"], area["w"], area["h"]))
        assert face["is_real"] is is_real and face["antispoof_score"] == pytest.approx(score, abs=1e-4)
    json.dumps([{k: v for k, v in f.items() if k != "face"} for f in faces])
    # without the flag the keys are absent, as in deepface
    assert list(DeepFace.extract_faces(str(dataset / "couple.jpg"))[0]) == KEYS[:3]


def test_real_faces_pass_everywhere(dataset: Path, fasnet_home: Callable[..., Path], synthetic_weights) -> None:
    fasnet_home("real", extra=(synthetic_weights("Emotion"),))
    img1, img2 = str(dataset / "img1.jpg"), str(dataset / "img2.jpg")
    (face,) = DeepFace.extract_faces(img1, anti_spoofing=True)
    assert face["is_real"] is True and face["antispoof_score"] > 0.9
    checked = DeepFace.verify(img1, img2, model_name="Dlib", anti_spoofing=True)
    assert checked["verified"] is True
    assert checked["distance"] == DeepFace.verify(img1, img2, model_name="Dlib")["distance"]
    (rep,) = DeepFace.represent(img1, model_name="Dlib", anti_spoofing=True)
    assert len(rep["embedding"]) == 128
    (item,) = DeepFace.analyze(img1, actions=("emotion",), anti_spoofing=True)
    assert item["dominant_emotion"] in item["emotion"]


def test_real_query_is_searched(dataset: Path, fasnet_home: Callable[..., Path], tmp_path: Path) -> None:
    fasnet_home("real")
    folder = tmp_path / "db"
    folder.mkdir()
    for name in ("img1.jpg", "img2.jpg", "img3.jpg"):
        shutil.copy(dataset / name, folder / name)
    (frame,) = DeepFace.find(str(dataset / "img6.jpg"), str(folder), model_name="Dlib", silent=True,
                             anti_spoofing=True)
    assert sorted(Path(p).name for p in frame["identity"]) == ["img1.jpg", "img2.jpg"]


def test_fake_faces_raise_deepfaces_error(dataset: Path, fasnet_home: Callable[..., Path], tmp_path: Path) -> None:
    fasnet_home("fake")
    img1, img2 = str(dataset / "img1.jpg"), str(dataset / "img2.jpg")
    folder = tmp_path / "db"
    folder.mkdir()
    shutil.copy(dataset / "img2.jpg", folder / "img2.jpg")
    (face,) = DeepFace.extract_faces(img1, anti_spoofing=True)
    assert face["is_real"] is False and face["antispoof_score"] > 0.9
    with pytest.raises(DeepFace.SpoofDetected) as verify_error:
        DeepFace.verify(img1, img2, model_name="Dlib", anti_spoofing=True)
    assert str(verify_error.value) == "Spoof detected in given image."  # deepface's verify wording
    assert isinstance(verify_error.value, ValueError)
    calls = {
        "represent": lambda: DeepFace.represent(img1, model_name="Dlib", anti_spoofing=True),
        "analyze": lambda: DeepFace.analyze(img1, actions=("emotion",), anti_spoofing=True),
        "find": lambda: DeepFace.find(img1, str(folder), model_name="Dlib", silent=True, anti_spoofing=True),
    }
    for name, call in calls.items():
        with pytest.raises(DeepFace.SpoofDetected) as error:
            call()
        assert str(error.value) == "Spoof detected in the given image.", name
    # the flag off: nothing is judged
    assert DeepFace.verify(img1, img2, model_name="Dlib")["verified"] is True


def test_build_model_spoofing_task(fasnet_home: Callable[..., Path]) -> None:
    fasnet_home("real")
    model = DeepFace.build_model("Fasnet", task="spoofing")
    assert model is DeepFace.build_model("Fasnet", task="spoofing")
    is_real, score = model.analyze(np.full((120, 120, 3), 128, np.uint8), (30, 30, 60, 60))
    assert is_real is True and 0.5 < score <= 1.0


def test_offline_without_fasnet_weights_names_the_file(dataset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh(monkeypatch, tmp_path / "empty-home")
    try:
        with pytest.raises(WeightsError, match=r"2\.7_80x80_MiniFASNetV2\.onnx"):
            DeepFace.extract_faces(str(dataset / "img1.jpg"), anti_spoofing=True)
    finally:
        _forget()
