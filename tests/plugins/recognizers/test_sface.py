"""SFace recognizer (OpenCV ``FaceRecognizerSF``).

The real ONNX model cannot be downloaded here, so the tests build a small random network with
the real model's signature (input ``data`` float32 [1, 3, 112, 112], output ``fc1`` [1, 128])
and check that OpenCV loads it through the plugin's normal path and that the plugin computes
what onnxruntime computes on the same preprocessed faces.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.sface_like import make_sface_like_onnx
cv2 = need("cv2")
if not hasattr(cv2, "FaceRecognizerSF"):
    pytest.skip("this OpenCV build has no FaceRecognizerSF", allow_module_level=True)

from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.plugins.recognizers import sface  # noqa: E402
from facepipe.preprocess import resize_pad_batch  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402

PHOTOS = ("img1.jpg", "img3.jpg", "img14.jpg")


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory) -> Path:
    """A facepipe home whose weights cache holds an SFace-like ONNX under SFace's file name."""
    home = tmp_path_factory.mktemp("sface_home")
    (home / "weights").mkdir()
    make_sface_like_onnx(home / "weights" / sface.SFACE_WEIGHTS.name)
    return home


@pytest.fixture(scope="module")
def recognizer(onnx_home):
    rec = sface.SFaceRecognizer(weights=WeightsManager(home=onnx_home, offline=True))
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def faces(dataset) -> list[np.ndarray]:
    crops = []
    for name in PHOTOS:
        img = cv2.imread(str(dataset / name))
        h, w = img.shape[:2]
        crops.append(img[h // 5: 4 * h // 5, w // 5: 4 * w // 5])  # non-square crops: exercises the padding
    return crops


def onnxruntime_reference(model_path: Path, faces: list[np.ndarray]) -> np.ndarray:
    """What deepface + OpenCV feed the network, run by onnxruntime: [0, 1] floats -> uint8
    (truncated) -> RGB (FaceRecognizerSF swaps channels) -> NCHW float 0..255."""
    ort = need("onnxruntime")
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    batch = resize_pad_batch(faces, (112, 112))
    as_uint8 = (batch * 255).astype(np.uint8)
    out = []
    for face in as_uint8:
        blob = np.ascontiguousarray(face[:, :, ::-1].astype(np.float32).transpose(2, 0, 1)[None])
        out.append(session.run(["fc1"], {"data": blob})[0][0])
    return np.asarray(out, dtype=np.float32)


def test_opencv_loads_the_model_and_embeds(recognizer, faces):
    emb = recognizer.embed(faces)
    assert emb.shape == (len(faces), 128) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    assert np.abs(emb[0] - emb[1]).max() > 1e-3  # different faces, different features
    assert recognizer.embed([]).shape == (0, 128)


def test_matches_onnxruntime(recognizer, faces, onnx_home):
    expected = onnxruntime_reference(onnx_home / "weights" / sface.SFACE_WEIGHTS.name, faces)
    np.testing.assert_allclose(recognizer.embed(faces), expected, rtol=1e-4, atol=1e-4)
    # BGR is kept: feeding the faces flipped must give different features
    flipped = recognizer.embed([f[:, :, ::-1] for f in faces])
    assert np.abs(flipped - expected).max() > 1e-3


def test_preprocess_is_deepfaces_uint8_cast(recognizer, faces):
    batch = recognizer.preprocess(faces)
    floats = resize_pad_batch(faces, (112, 112))
    assert batch.dtype == np.uint8 and batch.shape == (len(faces), 112, 112, 3)
    np.testing.assert_array_equal(batch, (floats * 255).astype(np.uint8))  # truncation, not rounding
    # forward accepts deepface's [0, 1] float input too, with the same result
    np.testing.assert_allclose(recognizer.forward(floats), recognizer.forward(batch), rtol=0, atol=0)


def test_uint8_conversion_truncates_and_clips():
    x = np.array([[0.0, 0.999, 0.5, 1.0, -0.2, 1.7]], np.float32)
    np.testing.assert_array_equal(sface.to_uint8_faces(x), [[0, 254, 127, 255, 0, 255]])
    u = np.array([1, 2, 3], np.uint8)
    assert sface.to_uint8_faces(u) is not None and sface.to_uint8_faces(u).tolist() == [1, 2, 3]


def test_bad_batch_shape(recognizer):
    with pytest.raises(ValueError, match="112, 112, 3"):
        recognizer.forward(np.zeros((1, 100, 100, 3), np.uint8))


def test_concurrent_calls_agree(recognizer, faces):
    expected = recognizer.embed(faces)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(recognizer.embed(faces))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_weights_path_config(onnx_home, faces):
    path = onnx_home / "weights" / sface.SFACE_WEIGHTS.name
    rec = sface.SFaceRecognizer(sface.SFaceConfig(weights_path=path),
                                weights=WeightsManager(home=onnx_home / "nowhere", offline=True))
    assert rec.embed(faces[:1]).shape == (1, 128)
    with pytest.raises(ValueError, match="not a file"):
        sface.SFaceConfig(weights_path=onnx_home / "missing.onnx")


def test_missing_and_corrupt_weights(tmp_path):
    rec = sface.SFaceRecognizer(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(OfflineError, match="face_recognition_sface_2021dec.onnx"):
        rec.forward(np.zeros((1, 112, 112, 3), np.uint8))
    bad = tmp_path / "weights" / sface.SFACE_WEIGHTS.name
    bad.parent.mkdir()
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(WeightsError, match="could not load"):
        rec.forward(np.zeros((1, 112, 112, 3), np.uint8))


def test_registration():
    registry = PluginRegistry(autoload=False)
    registry.register_module(sface)
    spec = registry.get("recognizer", "sface")
    assert spec.name == "SFace" and spec.extra == "opencv" and spec.requires == ("cv2",)
    wf = spec.weights[0]
    assert wf.name == wf.deepface_name == "face_recognition_sface_2021dec.onnx"
    assert wf.urls[0].startswith("https://github.com/opencv/opencv_zoo/")
    cls = registry.load_factory(spec)
    assert cls.input_size == (112, 112) and cls.embedding_size == 128
    assert cls.thresholds == pytest.approx({"cosine": 0.593, "euclidean": 10.734, "euclidean_l2": 1.055,
                                            "angular": 0.36})
