"""The YOLO detectors' ONNX engine: letterbox and decoding on known arrays, then a real network.

The network is YOLOv8n-face's architecture built in torch with synthetic weights
(``tests/helpers/yolo_net.py``) and exported to ONNX with the signature of an ultralytics pose
export; the plugin runs it on ONNX Runtime on a real photo.  Its detections must equal a direct
torch forward of the same network followed by the same decoding, and be well formed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import facepipe.plugins.detectors.yolo as yolo
from facepipe.errors import WeightsError
from facepipe.plugins.detectors import yolo_onnx
from facepipe.plugins.detectors.yolo_onnx import Letterbox, OutputLayout
from facepipe.registry import PluginRegistry
from facepipe.weights import WeightsManager
from tests.helpers.extras import need

cv2 = need("cv2")


# --------------------------------------------------------------------------------------------
# letterbox and decoding on known arrays
# --------------------------------------------------------------------------------------------
def test_letterbox_centres_the_image_and_maps_back() -> None:
    image = np.full((100, 200, 3), 7, np.uint8)
    canvas, box = yolo_onnx.letterbox(image, 640, 640)
    assert canvas.shape == (640, 640, 3) and box == Letterbox(gain=3.2, left=0, top=160)
    assert (canvas[:160] == 114).all() and (canvas[480:] == 114).all() and (canvas[160:480] == 7).all()
    # input pixels -> image pixels: the corners of the pasted image are the image's corners
    assert box.to_image(np.array([[0.0, 160.0], [640.0, 480.0]])).tolist() == [[0.0, 0.0], [200.0, 100.0]]
    # odd padding: the extra pixel goes to the bottom, as ultralytics does
    _, odd = yolo_onnx.letterbox(np.zeros((3, 641, 3), np.uint8), 640, 640)
    assert (odd.left, odd.top) == (0, 318)
    batch = yolo_onnx.to_input([canvas])
    assert batch.shape == (1, 3, 640, 640) and batch.dtype == np.float32
    assert batch[0, :, 200, 100].tolist() == pytest.approx([7 / 255] * 3)


def _raw(columns: list[tuple[list[float], float, list[float]]]) -> np.ndarray:
    """A (20, N) output from (cx, cy, w, h), score, 15 keypoint values per candidate."""
    return np.array([[*b, s, *k] for b, s, k in columns], dtype=np.float32).T


def test_decode_filters_suppresses_and_undoes_the_letterbox() -> None:
    kp = [float(v) for v in range(1, 16)]
    raw = _raw([
        ([100, 200, 40, 60], 0.60, kp),  # kept
        ([102, 201, 40, 60], 0.90, kp),  # kept, best: suppresses the first (IoU > 0.7)
        ([400, 300, 20, 20], 0.30, kp),  # kept: no overlap
        ([500, 300, 20, 20], 0.25, kp),  # dropped: scores must be above the threshold
        ([630, 630, 40, 40], 0.80, kp),  # kept, clipped to the image
    ])
    layout = OutputLayout(classes=1, keypoints=5, values=3)
    box = Letterbox(gain=2.0, left=0, top=80)  # a 320 x 240 image in a 640 x 640 input
    xywh, conf, kps = yolo_onnx.decode(raw, layout, box, 320, 240, confidence=0.25, iou=0.7)
    assert conf.tolist() == pytest.approx([0.9, 0.8, 0.3])
    assert xywh[0].tolist() == pytest.approx([51.0, 60.5, 20.0, 30.0])
    assert xywh[2].tolist() == pytest.approx([200.0, 110.0, 10.0, 10.0])
    # (610..650, 610..650) -> x 305..320 (clipped), y 265..285 -> 240 (clipped): a sliver
    assert xywh[1].tolist() == pytest.approx([312.5, 240.0, 15.0, 0.0])
    assert kps is not None and kps.shape == (3, 5, 3)
    assert kps[0, 0].tolist() == pytest.approx([0.5, 0.0, 3.0])  # (1, 2) -> (0.5, -39) -> clipped y
    assert kps[0, 4].tolist() == pytest.approx([6.5, 0.0, 15.0])
    # (N, C) outputs read the same; a box-only model has no keypoints
    again = yolo_onnx.decode(raw.T, layout, box, 320, 240, confidence=0.25, iou=0.7)
    assert np.array_equal(again[0], xywh)
    xywh5, _, none = yolo_onnx.decode(raw[:5], OutputLayout(), box, 320, 240, confidence=0.25, iou=0.7)
    assert none is None and len(xywh5) == 3
    empty = yolo_onnx.decode(raw, layout, box, 320, 240, confidence=0.95, iou=0.7)
    assert empty[0].shape == (0, 4) and empty[2] is not None and empty[2].shape == (0, 5, 3)


def test_output_layout_from_metadata_or_channels() -> None:
    assert yolo_onnx.layout_from({"names": "{0: 'face'}", "kpt_shape": "[5, 3]"}, 20) == OutputLayout(1, 5, 3)
    assert yolo_onnx.layout_from({}, 20) == OutputLayout(1, 5, 3)
    assert yolo_onnx.layout_from({}, 15) == OutputLayout(1, 5, 2)
    assert yolo_onnx.layout_from({"names": "{0: 'face'}"}, 5) == OutputLayout(1, 0, 0)
    with pytest.raises(WeightsError, match="20 channels"):
        yolo_onnx.layout_from({"kpt_shape": "[17, 3]"}, 20)
    # metadata is parsed as a literal, never evaluated
    assert yolo_onnx.layout_from({"names": "__import__('os').system('false')"}, 5) == OutputLayout(1, 0, 0)


# --------------------------------------------------------------------------------------------
# a real network graph (YOLOv8n-face architecture, synthetic weights) on a real photo
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    need("onnxruntime")
    from tests.helpers import yolo_net

    net = yolo_net.build(seed=0)
    path = yolo_net.export_onnx(net, tmp_path_factory.mktemp("yolo") / "yolov8n-face.onnx")
    return net, path


def _torch_reference(net, image: np.ndarray, confidence: float, iou: float):  # type: ignore[no-untyped-def]
    """The network run by torch on the same input, then facepipe's decoding."""
    import torch

    canvas, box = yolo_onnx.letterbox(image, 640, 640)
    with torch.no_grad():
        out = net(torch.from_numpy(yolo_onnx.to_input([canvas]))).numpy()
    layout = OutputLayout(1, 5, 3)
    return out[0], yolo_onnx.decode(out[0], layout, box, image.shape[1], image.shape[0],
                                    confidence=confidence, iou=iou)


def test_onnx_network_on_a_real_photo_matches_torch(network, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    net, path = network
    image = cv2.imread(str(dataset / "img1.jpg"))
    det = PluginRegistry().create("detector", "yolov8n", {"weights_path": str(path)})
    (faces,) = det.detect([image])
    assert det.engine == "onnx"

    raw_torch, (xywh, conf, kps) = _torch_reference(net, image, 0.25, 0.7)
    raw_onnx = det.model.raw(yolo_onnx.to_input([yolo_onnx.letterbox(image, 640, 640)[0]]))[0]
    assert np.allclose(raw_onnx, raw_torch, rtol=1e-4, atol=1e-3)  # pixels up to 640, scores 0..1

    assert len(faces) == len(conf) >= 1
    h, w = image.shape[:2]
    for face, box, score, points in zip(faces, xywh, conf, kps):
        assert (face.x + face.w / 2, face.y + face.h / 2, face.w, face.h) == pytest.approx(tuple(box), abs=0.05)
        assert face.confidence == pytest.approx(score, abs=1e-4) and 0.25 < face.confidence <= 1.0
        assert 0 <= face.x <= face.x + face.w <= w and 0 <= face.y <= face.y + face.h <= h and face.w > 0
        assert face.right_eye == pytest.approx(tuple(points[0, :2]), abs=0.05)
        assert face.mouth_left == pytest.approx(tuple(points[4, :2]), abs=0.05)
    # best first, and NMS left no pair overlapping above the threshold
    assert [f.confidence for f in faces] == sorted((f.confidence for f in faces), reverse=True)


def test_cached_export_is_picked_and_batches_agree(network, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, path = network
    (tmp_path / "weights").mkdir()
    shutil.copy(path, tmp_path / "weights" / "yolov8n-face.onnx")  # where `auto` looks
    manager = WeightsManager(home=tmp_path, offline=True, deepface_home=tmp_path / "none")
    det = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](confidence=0.1), weights=manager)
    assert det.resolve() == ("onnx", tmp_path / "weights" / "yolov8n-face.onnx")
    one = cv2.imread(str(dataset / "img1.jpg"))
    two = cv2.imread(str(dataset / "img2.jpg"))
    together = det.detect([one, two])
    apart = det.detect([one]) + det.detect([two])
    assert [len(f) for f in together] == [len(f) for f in apart] and len(together[0]) >= 1
    for a, b in zip(together, apart):
        assert [(f.x, f.y, f.w, f.h, f.confidence) for f in a] == [(f.x, f.y, f.w, f.h, f.confidence) for f in b]


def test_onnx_engine_errors(network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, path = network
    manager = WeightsManager(home=tmp_path, offline=True, deepface_home=tmp_path / "none")
    det = yolo.YoloDetector(yolo.CONFIGS["yolov11s"](engine="onnx"), weights=manager)
    with pytest.raises(WeightsError, match=r"yolo export model=yolov11s-face.pt format=onnx"):
        det.detect([np.zeros((32, 32, 3), np.uint8)])
    fixed = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](weights_path=path, image_size=320))
    with pytest.raises(WeightsError, match="640×640"):
        fixed.detect([np.zeros((32, 32, 3), np.uint8)])


def test_onnx_engine_passes_the_conformance_kit(network) -> None:  # type: ignore[no-untyped-def]
    from facepipe.testing import check_detector

    _, path = network
    check_detector(PluginRegistry().create("detector", "yolov12n", {"weights_path": str(path)}))


def test_pipeline_extracts_aligned_faces_with_the_onnx_engine(network, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    from facepipe.pipeline import Pipeline, PipelineConfig

    _, path = network
    config = PipelineConfig(detector={"name": "yolov8n", "weights_path": str(path)})
    pipeline = Pipeline(config)
    try:
        faces = pipeline.extract_faces(str(dataset / "img1.jpg"))
    finally:
        pipeline.close()
    assert len(faces) >= 1 and pipeline.detector_name == "yolov8n"
    for face in faces:  # the keypoints' eyes reach the alignment
        assert face.crop.ndim == 3 and face.crop.size > 0 and face.detected
        assert face.area.left_eye is not None and face.area.right_eye is not None
