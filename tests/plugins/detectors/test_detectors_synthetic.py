"""yunet and ssd without their real weights (no package ships them).

* YuNet: an ONNX graph with YuNet 2023mar's input and twelve output names/layouts is generated with
  the ``onnx`` package.  Its "weights" make the outputs known: the class score of each stride-32
  cell is the mean red value of that cell / 255, objectness is 1, and box / landmark offsets are
  constants.  A red square on a black image is therefore a face at a known box, which the real
  ``cv2.FaceDetectorYN`` decodes and the plugin must return in original-image coordinates.
* SSD: the decoder is tested on hand-made ``(1, 1, N, 7)`` tensors, and the whole plugin runs
  through ``cv2.dnn.readNetFromCaffe`` on a weight-free Caffe SSD (pooling → softmax → PriorBox →
  DetectionOutput) whose face score is ``sigmoid(R - G)`` of the mean-subtracted input, served
  by a loopback HTTP server under deepface's file names to exercise the download path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
cv2 = need("cv2")

from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402
from facepipe.plugins.detectors import ssd as ssd_plugin  # noqa: E402
from facepipe.plugins.detectors.ssd import SsdConfig, SsdDetector, decode_detections  # noqa: E402
from facepipe.plugins.detectors.yunet import YunetConfig, YunetDetector, faces_from_yunet  # noqa: E402
from tests.helpers.loopback import Loopback  # noqa: E402
from tests.helpers.mini_detectors import (  # noqa: E402
    BBOX,
    KPS,
    MINI_CAFFEMODEL,
    MINI_PROTOTXT,
    YUNET_FILE,
    make_yunet_onnx,
)


# ============================================================================== YuNet
@pytest.fixture(scope="module")
def yunet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A facepipe home whose weights cache holds the generated model under deepface's file name."""
    home = tmp_path_factory.mktemp("yunet_home")
    (home / "weights").mkdir()
    make_yunet_onnx(home / "weights" / YUNET_FILE)
    return home


def yunet(home: Path, **options: Any) -> YunetDetector:
    manager = WeightsManager(home=home, offline=True, deepface_home=home / "no-deepface")
    return YunetDetector(YunetConfig(**options), weights=manager)


def expected_face(col: int, row: int, stride: int = 32) -> dict[str, float]:
    """What the generated network reports for a face in stride-32 cell (row, col)."""
    cx, cy = (col + BBOX[0]) * stride, (row + BBOX[1]) * stride
    w, h = np.exp(BBOX[2]) * stride, np.exp(BBOX[3]) * stride
    pts = [((col + KPS[2 * i]) * stride, (row + KPS[2 * i + 1]) * stride) for i in range(5)]
    return {"x": cx - w / 2, "y": cy - h / 2, "w": w, "h": h, "right_eye": pts[0], "left_eye": pts[1],
            "nose": pts[2], "mouth_right": pts[3], "mouth_left": pts[4]}


def test_yunet_large_image_is_shrunk_and_results_scaled_back(yunet_home: Path) -> None:
    img = np.zeros((960, 1280, 3), np.uint8)
    img[320:384, 448:512] = (0, 0, 230)  # after the 0.5x shrink: exactly stride-32 cell (row 5, col 7)
    (face,), = yunet(yunet_home).detect([img])
    want = expected_face(7, 5)
    np.testing.assert_allclose([face.x, face.y, face.w, face.h],
                               [2 * want["x"], 2 * want["y"], 2 * want["w"], 2 * want["h"]], atol=1e-3)
    assert (face.x, face.y, face.w, face.h) == pytest.approx((416, 272, 128, 160), abs=1e-3)
    for name in ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left"):
        np.testing.assert_allclose(getattr(face, name), 2 * np.array(want[name]), atol=1e-3)
    assert face.left_eye[0] > face.right_eye[0] and face.mouth_left[0] > face.mouth_right[0]
    assert face.confidence == pytest.approx(np.sqrt(230 / 255), abs=1e-4)  # sqrt(cls * obj)


def test_yunet_without_shrinking(yunet_home: Path) -> None:
    img = np.zeros((960, 1280, 3), np.uint8)
    img[320:352, 448:480] = (0, 0, 255)  # stride-32 cell (row 10, col 14) of the full image
    (face,), = yunet(yunet_home, max_size=None).detect([img])
    want = expected_face(14, 10)
    np.testing.assert_allclose([face.x, face.y, face.w, face.h], [want["x"], want["y"], want["w"], want["h"]],
                               atol=1e-3)
    assert face.confidence == pytest.approx(1.0)


def test_yunet_threshold_channel_order_clipping_and_batch(yunet_home: Path) -> None:
    img = np.zeros((256, 320, 3), np.uint8)  # below max_size: not resized
    img[0:32, 0:32] = (0, 0, 255)      # corner cell: the box starts at (-16, -24) → clipped to 0
    img[64:96, 128:160] = (0, 0, 200)  # score sqrt(200/255) = 0.886: below the default 0.9
    img[192:224, 256:288] = (255, 0, 0)  # blue: the network reads red, so BGR must reach it unswapped
    strict, loose = yunet(yunet_home), yunet(yunet_home, score_threshold=0.85)
    (corner,), = strict.detect([img])
    want = expected_face(0, 0)
    assert (corner.x, corner.y) == (0.0, 0.0)
    assert corner.w == pytest.approx(want["x"] + want["w"]) and corner.h == pytest.approx(want["y"] + want["h"])
    faces = loose.detect([img])[0]
    assert len(faces) == 2
    weak = min(faces, key=lambda f: f.confidence)
    assert weak.confidence == pytest.approx(np.sqrt(200 / 255), abs=1e-4)
    assert (weak.x, weak.y) == pytest.approx((expected_face(4, 2)["x"], expected_face(4, 2)["y"]))
    # one call, several images of different sizes, results in input order
    big = np.zeros((960, 1280, 3), np.uint8)
    big[320:384, 448:512] = (0, 0, 230)
    found = strict.detect([img, np.zeros((100, 100, 3), np.uint8), big])
    assert [len(f) for f in found] == [1, 0, 1]
    assert found[2][0].x == pytest.approx(416, abs=1e-3)
    assert strict.detect([]) == []


def test_yunet_weights_path_option_and_offline_error(yunet_home: Path, tmp_path: Path) -> None:
    det = YunetDetector(YunetConfig(weights_path=yunet_home / "weights" / YUNET_FILE))
    img = np.zeros((128, 128, 3), np.uint8)
    img[32:64, 32:64] = (0, 0, 255)
    assert len(det.detect([img])[0]) == 1
    with pytest.raises(OfflineError, match=YUNET_FILE):
        yunet(tmp_path)  # empty home, offline
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(WeightsError):
        YunetDetector(YunetConfig(weights_path=bad))


def test_faces_from_yunet_rows() -> None:
    rows = np.array([[-10, 5, 50, 60, 10, 20, 30, 20, 20, 30, 12, 40, 28, 40, 0.95]], np.float32)
    (face,) = faces_from_yunet(rows, (0.5, 0.25), 100, 200)
    assert (face.x, face.y, face.w) == (0.0, 20.0, 80.0)  # x -20 clipped to 0: width shrinks by 20
    assert face.h == 240 - 20 - 40  # 20..260 clipped at 200
    assert face.right_eye == (20.0, 80.0) and face.left_eye == (60.0, 80.0)
    assert face.confidence == pytest.approx(0.95)
    assert faces_from_yunet(None, (1.0, 1.0), 10, 10) == []


def test_yunet_registration() -> None:
    spec = PluginRegistry().get("detector", "yunet")
    assert spec.extra == "opencv" and spec.requires == ("cv2",)
    (wf,) = spec.weights
    assert wf.name == YUNET_FILE
    assert wf.urls == ("https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                       "face_detection_yunet_2023mar.onnx",)


# ============================================================================== SSD decoder
def test_decode_detections_filters_scales_clips_and_orders() -> None:
    rows = np.array([
        [0, 1, 0.95, 0.10, 0.20, 0.30, 0.60],   # kept
        [0, 1, 0.99, -0.1, 0.50, 0.20, 1.20],   # kept, clipped on the left and bottom
        [0, 0, 0.99, 0.10, 0.10, 0.20, 0.20],   # background label
        [0, 1, 0.89, 0.10, 0.10, 0.20, 0.20],   # below the threshold
        [0, 1, 0.97, 1.10, 0.10, 1.30, 0.20],   # entirely outside → empty → dropped
        [0, 1, np.nan, 0.1, 0.1, 0.2, 0.2],     # padding garbage
        [1, 1, 0.93, 0.50, 0.50, 1.00, 1.00],   # second image
        [5, 1, 0.99, 0.10, 0.10, 0.20, 0.20],   # image id out of range
    ], np.float32)[None, None]
    first, second = decode_detections(rows, [(200, 100), (40, 30)], 0.9)
    assert [round(f.confidence, 2) for f in first] == [0.99, 0.95]  # best first
    a, b = first
    assert (a.x, a.y, a.w, a.h) == pytest.approx((0, 50, 40, 50), abs=1e-4)
    assert (b.x, b.y, b.w, b.h) == pytest.approx((20, 20, 40, 40), abs=1e-4)
    assert a.left_eye is None and a.right_eye is None
    (c,) = second
    assert (c.x, c.y, c.w, c.h) == pytest.approx((20, 15, 20, 15), abs=1e-4)
    assert decode_detections(rows, [(200, 100), (40, 30)], 0.999) == [[], []]
    assert decode_detections(np.zeros((1, 1, 0, 7)), [(10, 10)], 0.5) == [[]]


# ============================================================================== SSD through cv2.dnn
# The tiny Caffe SSD (tests/helpers/mini_detectors.py) has no learned weights: the face score is
# sigmoid(R - G) of the mean-subtracted input and the box is the single prior, the central third.
def solid(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bgr
    return img


@pytest.fixture(scope="module")
def ssd_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mini_ssd")
    (folder / "deploy.prototxt").write_text(MINI_PROTOTXT)
    (folder / "mini.caffemodel").write_bytes(MINI_CAFFEMODEL)
    return folder / "deploy.prototxt", folder / "mini.caffemodel"


def mini_ssd(files: tuple[Path, Path], **options: Any) -> SsdDetector:
    return SsdDetector(SsdConfig(prototxt_path=files[0], weights_path=files[1], **options))


def test_ssd_subtracts_the_training_mean_by_default(ssd_files) -> None:  # type: ignore[no-untyped-def]
    gray = solid(120, 240, (128, 128, 128))
    # with the training mean (104, 177, 123): R - G = (128 - 123) - (128 - 177) = 54 → score ≈ 1
    (face,), = mini_ssd(ssd_files).detect([gray])
    assert face.confidence == pytest.approx(1.0)
    assert (face.x, face.y, face.w, face.h) == pytest.approx((80, 40, 80, 40), abs=1e-3)  # central third
    assert face.left_eye is None
    # deepface's raw input (no mean): R - G = 0 → score 0.5, under the 0.9 threshold
    assert mini_ssd(ssd_files, mean=(0, 0, 0)).detect([gray]) == [[]]
    (half,), = mini_ssd(ssd_files, mean=(0, 0, 0), confidence_threshold=0.4).detect([gray])
    assert half.confidence == pytest.approx(0.5, abs=1e-4)


def test_ssd_blob_is_bgr_300(ssd_files) -> None:  # type: ignore[no-untyped-def]
    det = mini_ssd(ssd_files)
    blob = det.blob([solid(50, 80, (10, 20, 30))])
    assert blob.shape == (1, 3, 300, 300) and blob.dtype == np.float32
    np.testing.assert_allclose(blob[0, :, 150, 150], [10 - 104, 20 - 177, 30 - 123])


def test_ssd_batches_carry_image_ids(ssd_files) -> None:  # type: ignore[no-untyped-def]
    imgs = [solid(120, 240, (128, 128, 128)), solid(90, 60, (0, 200, 0)), solid(300, 150, (0, 0, 255))]
    singles = [mini_ssd(ssd_files).detect([img])[0] for img in imgs]
    batched = mini_ssd(ssd_files, batch_size=3).detect(imgs)
    assert [len(f) for f in batched] == [1, 0, 1]  # the green image scores sigmoid(-146) ≈ 0
    assert batched == singles
    (red,) = batched[2]
    assert (red.x, red.y, red.w, red.h) == pytest.approx((50, 100, 50, 100), abs=1e-3)
    assert mini_ssd(ssd_files, batch_size=2).detect(imgs) == singles
    assert mini_ssd(ssd_files).detect([]) == []


# ============================================================================== SSD download
def serve_files(loopback: Loopback, files: dict[str, bytes]) -> None:
    assert loopback.root is not None
    for name, data in files.items():
        (loopback.root / name).write_bytes(data)


def test_ssd_downloads_deepface_files_through_the_manager(loopback: Loopback, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The real sources are deepface's (fact sheet §4) ...
    assert ssd_plugin.PROTOTXT.urls == (
        "https://github.com/opencv/opencv/raw/3.4.0/samples/dnn/face_detector/deploy.prototxt",)
    assert ssd_plugin.CAFFEMODEL.urls == (
        "https://github.com/opencv/opencv_3rdparty/raw/dnn_samples_face_detector_20170830/"
        "res10_300x300_ssd_iter_140000.caffemodel",)
    # ... and for the test they point at the loopback server, same file names.
    for const in ("PROTOTXT", "CAFFEMODEL"):
        wf = getattr(ssd_plugin, const)
        monkeypatch.setattr(ssd_plugin, const, dataclasses.replace(wf, urls=(loopback.url(wf.name),)))
    serve_files(loopback, {"deploy.prototxt": MINI_PROTOTXT.encode(),
                           "res10_300x300_ssd_iter_140000.caffemodel": MINI_CAFFEMODEL})
    manager = WeightsManager(home=tmp_path / "home", offline=False, deepface_home=tmp_path / "df",
                             mirrors=(), retries=0, timeout=5.0, progress=False)
    det = SsdDetector(weights=manager)
    assert sorted(loopback.requests) == ["/deploy.prototxt", "/res10_300x300_ssd_iter_140000.caffemodel"]
    cached = tmp_path / "home" / "weights"
    assert (cached / "deploy.prototxt").read_text() == MINI_PROTOTXT
    assert (cached / "res10_300x300_ssd_iter_140000.caffemodel").read_bytes() == MINI_CAFFEMODEL
    assert len(det.detect([solid(60, 60, (128, 128, 128))])[0]) == 1
    # a second detector is served from the cache
    SsdDetector(weights=manager)
    assert len(loopback.requests) == 2


def test_ssd_bad_download_and_offline(loopback: Loopback, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for const in ("PROTOTXT", "CAFFEMODEL"):
        wf = getattr(ssd_plugin, const)
        monkeypatch.setattr(ssd_plugin, const, dataclasses.replace(wf, urls=(loopback.url(wf.name),)))
    serve_files(loopback, {"deploy.prototxt": b"this is not a prototxt {",
                           "res10_300x300_ssd_iter_140000.caffemodel": MINI_CAFFEMODEL})
    manager = WeightsManager(home=tmp_path / "home", offline=False, deepface_home=tmp_path / "df",
                             mirrors=(), retries=0, timeout=5.0, progress=False)
    with pytest.raises(WeightsError, match="could not load"):
        SsdDetector(weights=manager)
    offline = WeightsManager(home=tmp_path / "empty", offline=True, deepface_home=tmp_path / "df")
    with pytest.raises(OfflineError, match="deploy.prototxt"):
        SsdDetector(weights=offline)


def test_ssd_registration() -> None:
    spec = PluginRegistry().get("detector", "ssd")
    assert spec.extra == "opencv" and spec.requires == ("cv2",)
    assert [wf.name for wf in spec.weights] == ["deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel"]
    assert SsdDetector.provides_eyes is False
    assert SsdConfig().mean == (104.0, 177.0, 123.0) and SsdConfig().confidence_threshold == 0.9
