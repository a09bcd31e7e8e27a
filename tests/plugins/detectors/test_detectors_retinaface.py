"""RetinaFace detector: architecture vs deepface's weights layout, numeric parity with deepface's
raw outputs (synthetic weights), the numpy decoder on hand-made tensors, and the weights
download path over loopback."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import facepipe.plugins.detectors.retinaface as rf
from facepipe.errors import OfflineError
from facepipe.registry import PluginRegistry
from facepipe.weights import WeightsManager
from tests.helpers.extras import need
from tests.helpers.loopback import serve_folder
from tests.helpers.paths import MANIFESTS



@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads((MANIFESTS / "RetinaFace.json").read_text())


# --------------------------------------------------------------------------------------------
# decoder (no keras needed)
# --------------------------------------------------------------------------------------------
def test_base_anchors_are_the_packages() -> None:
    # retina-face's fixed anchors (x1, y1, x2, y2) per stride
    np.testing.assert_array_equal(rf.base_anchors(32), [[-248, -248, 263, 263], [-120, -120, 135, 135]])
    np.testing.assert_array_equal(rf.base_anchors(16), [[-56, -56, 71, 71], [-24, -24, 39, 39]])
    np.testing.assert_array_equal(rf.base_anchors(8), [[-8, -8, 23, 23], [0, 0, 15, 15]])


def test_anchor_grid_order_is_row_column_anchor() -> None:
    grid = rf.anchor_grid(2, 3, 16)
    assert grid.shape == (12, 4)
    # row 1, column 2, anchor 1 -> index (1 * 3 + 2) * 2 + 1; shifted by (32, 16)
    np.testing.assert_array_equal(grid[11], [8, -8, 71, 55])
    np.testing.assert_array_equal(grid[0], [-56, -56, 71, 71])


def _empty_heads(height: int, width: int) -> list[np.ndarray]:
    """Heads for an input of height x width where nothing is a face (bg prob 1)."""
    heads = []
    for stride in rf.STRIDES:
        h, w = math.ceil(height / stride), math.ceil(width / stride)
        probs = np.zeros((1, h, w, 4), np.float32)
        probs[..., :2] = 1.0
        heads += [probs, np.zeros((1, h, w, 8), np.float32), np.zeros((1, h, w, 20), np.float32)]
    return heads


# Hand-computed case: stride 16, cell (row 1, col 2), anchor 1 (64 px) = [8, -8, 71, 55],
# centre (39.5, 23.5).  Deltas dx = dy = 0.1, dw = dh = log(0.5): centre (45.9, 29.9), size 32x32
# (legacy +1 convention) -> box x1 = 45.9 - 15.5, x2 = 45.9 + 15.5, same for y.
EXPECTED_BOX = (30.4, 14.4, 61.4, 45.4)
# Landmark deltas in anchor units (64 px) around the anchor centre, in model order.
LANDMARK_DELTAS = [(-0.25, -0.125), (0.25, -0.125), (0.0, 0.125), (-0.125, 0.25), (0.125, 0.25)]
EXPECTED_POINTS = {"right_eye": (23.5, 15.5), "left_eye": (55.5, 15.5), "nose": (39.5, 31.5),
                   "mouth_right": (31.5, 39.5), "mouth_left": (47.5, 39.5)}


def _one_face_heads(height: int = 64, width: int = 96, score: float = 0.95,
                    row: int = 1, col: int = 2) -> list[np.ndarray]:
    heads = _empty_heads(height, width)
    probs, boxes, marks = heads[3:6]  # stride 16
    probs[0, row, col, 1] = 1.0 - score  # anchor 1: background
    probs[0, row, col, 3] = score  # anchor 1: face
    boxes[0, row, col, 4:8] = [0.1, 0.1, math.log(0.5), math.log(0.5)]
    marks[0, row, col, 10:20] = np.asarray(LANDMARK_DELTAS, np.float32).ravel()
    return heads


def test_decode_one_anchor_gives_the_expected_box_and_landmarks() -> None:
    boxes, marks, scores = rf.decode_outputs(_one_face_heads(), (64, 96), threshold=0.9)
    assert boxes.shape == (1, 4) and marks.shape == (1, 5, 2)
    np.testing.assert_allclose(boxes[0], EXPECTED_BOX, atol=1e-5)
    np.testing.assert_allclose(scores, [0.95], atol=1e-6)
    for name, point in zip(rf.LANDMARKS, marks[0]):
        np.testing.assert_allclose(point, EXPECTED_POINTS[name], atol=1e-5, err_msg=name)


def test_decode_scales_back_and_thresholds() -> None:
    # the network saw the image at half size: everything doubles
    boxes, marks, _ = rf.decode_outputs(_one_face_heads(), (64, 96), scale=0.5, threshold=0.9)
    np.testing.assert_allclose(boxes[0], np.asarray(EXPECTED_BOX) * 2, atol=1e-5)
    np.testing.assert_allclose(marks[0, 1], np.asarray(EXPECTED_POINTS["left_eye"]) * 2, atol=1e-5)
    boxes, _, _ = rf.decode_outputs(_one_face_heads(score=0.95), (64, 96), threshold=0.96)
    assert boxes.shape == (0, 4)


def test_decode_clips_boxes_to_the_network_input() -> None:
    heads = _empty_heads(64, 96)
    probs = heads[6]  # stride 8, cell (0, 0), anchor 0 = [-8, -8, 23, 23]
    probs[0, 0, 0, 2] = 0.99
    out, _, _ = rf.decode_outputs(heads, (64, 96), threshold=0.5)
    np.testing.assert_allclose(out[0], [0, 0, 23, 23])


def test_nms_uses_inclusive_areas_and_iou_04() -> None:
    boxes = np.array([[0, 0, 9, 9], [1, 0, 10, 9], [5, 0, 14, 9], [20, 20, 29, 29]], float)
    scores = np.array([0.9, 0.95, 0.8, 0.7])
    # [1,0,10,9] wins; [0,0,9,9] overlaps it 90/110; [5,0,14,9] overlaps it 60/140 = 0.43 -> dropped
    assert rf.nms(boxes, scores, 0.4).tolist() == [1, 3]
    # [5,0,14,9] vs [0,0,9,9] alone: 50/150 = 0.33 -> both kept
    assert rf.nms(boxes[[0, 2]], scores[[0, 2]], 0.4).tolist() == [0, 1]


def test_scale_rule() -> None:
    assert rf.scale_factor(300, 400) == 1.0  # small images are left alone by default
    assert rf.scale_factor(300, 400, allow_upscaling=True) == pytest.approx(1024 / 300)
    assert rf.scale_factor(1536, 2048) == pytest.approx(1024 / 1536)
    assert rf.scale_factor(1000, 4000) == pytest.approx(1980 / 4000)  # long-side cap
    assert rf.scale_factor(500, 3000, allow_upscaling=True) == pytest.approx(1980 / 3000)


def test_detect_with_a_stub_network_resizes_and_maps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    need("cv2")
    seen: list[tuple[int, ...]] = []

    def fake_raw(self: Any, batch: np.ndarray) -> list[np.ndarray]:
        seen.append(batch.shape)
        return _one_face_heads(batch.shape[1], batch.shape[2], row=3, col=5)

    monkeypatch.setattr(rf.RetinaFaceDetector, "raw_outputs", fake_raw)
    det = rf.RetinaFaceDetector(rf.RetinaFaceConfig())
    image = np.zeros((1536, 2048, 3), np.uint8)
    faces = det.detect([image, image[:200, :300]])
    assert seen == [(1, 1024, 1365, 3), (1, 200, 300, 3)]  # big one shrunk to short side 1024
    # cell (3, 5) at stride 16 shifts the hand-computed case by (48, 32) network pixels
    shift = np.array([48.0, 32.0])
    for face, scale in ((faces[0][0], 1024 / 1536), (faces[1][0], 1.0)):
        x1, y1 = (np.array(EXPECTED_BOX[:2]) + shift) / scale
        x2, y2 = (np.array(EXPECTED_BOX[2:]) + shift) / scale
        assert face.x == pytest.approx(x1, abs=1e-3) and face.y == pytest.approx(y1, abs=1e-3)
        assert face.w == pytest.approx(x2 - x1, abs=1e-3) and face.h == pytest.approx(y2 - y1, abs=1e-3)
        assert face.confidence == pytest.approx(0.95)
        for name, point in EXPECTED_POINTS.items():
            np.testing.assert_allclose(getattr(face, name), (np.array(point) + shift) / scale, atol=1e-3)
        assert face.left_eye[0] > face.right_eye[0]  # person-centric
        assert face.mouth_left[0] > face.mouth_right[0]


def test_registration(manifest: dict[str, Any]) -> None:
    spec = PluginRegistry().get("detector", "retinaface")
    assert spec.factory == "facepipe.plugins.detectors.retinaface:RetinaFaceDetector"
    assert spec.extra == "retinaface" and "keras" in spec.requires and "h5py" in spec.requires
    (wf,) = spec.weights
    assert wf.name == "retinaface.h5"
    assert wf.urls == tuple(manifest["source_urls"])
    with pytest.raises(Exception, match="threshold"):
        PluginRegistry().validate_config("detector", "retinaface", {"threshold": 1.5})


def test_offline_without_file_says_where_to_put_it(tmp_path: Path) -> None:
    det = rf.RetinaFaceDetector(weights=WeightsManager(home=tmp_path, offline=True, deepface_home=tmp_path))
    with pytest.raises(OfflineError, match="retinaface.h5"):
        _ = det.model


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------
def test_weighted_layers_match_deepface_manifest(manifest: dict[str, Any]) -> None:
    need("keras")
    from facepipe.engines.keras_h5 import weighted_layers

    layers = manifest["load_target"]["layers"]
    model = rf.build_retinaface()
    got = [(type(layer).__name__, layer.name, [list(map(int, w.shape)) for w in layer.weights])
           for layer in weighted_layers(model)]
    assert got == [(cls, name, shapes) for cls, name, shapes, _ in layers]
    assert model.count_params() == 29495084


@pytest.fixture(scope="module")
def served_weights(synthetic_weights: Any) -> Iterator[tuple[str, Path]]:
    """deepface-layout synthetic retinaface.h5 served from a loopback HTTP server."""
    source = synthetic_weights("RetinaFace")
    with serve_folder(source.parent) as served:
        yield served.base, source


@pytest.fixture(scope="module")
def downloaded_home(served_weights: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A facepipe home whose retinaface.h5 was fetched by the weights manager over loopback."""
    mirror, _ = served_weights
    home = tmp_path_factory.mktemp("rf_home")
    manager = WeightsManager(home=home, offline=False, deepface_home=home / "none", mirrors=(mirror,),
                             timeout=10.0, retries=1, backoff=0.01, progress=False)
    with pytest.MonkeyPatch.context() as mp:  # never route loopback through a proxy
        mp.setenv("no_proxy", "*")
        mp.setenv("NO_PROXY", "*")
        path = manager.path(rf.RETINAFACE_WEIGHTS)
    assert path == home / "weights" / "retinaface.h5"
    return home


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_over_loopback(served_weights: tuple[str, Path], downloaded_home: Path) -> None:
    _, source = served_weights
    got = downloaded_home / "weights" / "retinaface.h5"
    assert got.stat().st_size == source.stat().st_size
    assert _sha256(got) == _sha256(source)
    assert not list((downloaded_home / "weights").glob("*.part"))


@pytest.fixture(scope="module")
def detector(downloaded_home: Path) -> Any:
    """The plugin built by the registry, its weights found by an offline manager in the cache."""
    need("keras")
    manager = WeightsManager(home=downloaded_home, offline=True, deepface_home=downloaded_home / "none")
    return PluginRegistry().create("detector", "retinaface", {}, weights=manager)


def test_parity_with_deepface_raw_outputs(detector: Any, parity_arrays: Any) -> None:
    ref = np.load(parity_arrays("RetinaFace"))
    # inputs 0 and 2 (320x237, 178x256) have sides that are not multiples of 32: crop layers
    assert sum(bool(ref[f"input_{i}"].shape[1] % 32 or ref[f"input_{i}"].shape[2] % 32) for i in range(3)) >= 2
    for i in range(3):
        x = ref[f"input_{i}"]
        outs = detector.raw_outputs(x)
        assert len(outs) == 9
        for k, out in enumerate(outs):
            want = ref[f"output_{i}_{k}"]
            assert out.shape == want.shape, (i, k)
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * scale, err_msg=f"input {i} head {k}")


def test_detect_on_a_photo_with_synthetic_weights(detector: Any, dataset: Path) -> None:
    cv2 = need("cv2")
    image = cv2.imread(str(dataset / "img1.jpg"))
    small = cv2.resize(image, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    (faces,) = detector.detect([small])
    # random weights: no claim about *where* faces are, only that results are well formed
    h, w = small.shape[:2]
    for face in faces:
        assert 0 <= face.x <= face.x + face.w <= w and 0 <= face.y <= face.y + face.h <= h
        assert 0.9 <= face.confidence <= 1.0
        assert all(getattr(face, k) is not None for k in rf.LANDMARKS)
