"""YOLO face detectors: registration and weight declarations, the pure conversion of ultralytics'
result arrays, the plugin's glue (against a stand-in ``ultralytics`` module), the sha256 pinning of
pickled checkpoints, the weights download over loopback, and - only where ultralytics really works -
a random-weights pose model.  The ONNX engine running a real network: test_detectors_yolo_onnx.py."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import facepipe.plugins.detectors.yolo as yolo
from facepipe.errors import PluginUnavailableError, WeightsError
from facepipe.preprocess import as_bgr_uint8
from facepipe.registry import PluginRegistry
from facepipe.weights import WeightsManager
from tests.helpers.extras import need
from tests.helpers.loopback import Loopback

YAPALAB = "https://github.com/YapaLab/yolo-face/releases/download/1.0.0/"
AKANAMETOV = "https://github.com/akanametov/yolo-face/releases/download/1.0.0/"
# deepface's table (fact sheet §4)
EXPECTED_URLS = {
    "yolov8n": "https://drive.google.com/uc?id=1qcr9DbgsX3ryrz2uU8w4Xm3cOrRywXqb",
    **{v: YAPALAB + f"{v}-face.pt" for v in ("yolov8m", "yolov8l", "yolov11l", "yolov12n", "yolov12s",
                                              "yolov12m", "yolov12l")},
    **{v: AKANAMETOV + f"{v}-face.pt" for v in ("yolov11n", "yolov11s", "yolov11m")},
}


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------
def test_every_deepface_key_is_registered_with_its_weight_file() -> None:
    registry = PluginRegistry()
    for name, url in EXPECTED_URLS.items():
        spec = registry.get("detector", name)
        assert spec.name == name and spec.extra == "onnx" and "onnxruntime" in spec.requires
        assert "facepipe[yolo]" in spec.install_hint  # the .pt route's extra is named too
        (wf,) = spec.weights
        assert wf.name == f"{name}-face.pt" and wf.urls == (url,)
        assert registry.validate_config("detector", name, {}).variant == name
    assert registry.get("detector", "yolov8").name == "yolov8n"  # deepface's old key
    assert registry.get("detector", "yolo11s").name == "yolov11s"  # ultralytics' spelling


def test_config_defaults_and_fixed_variant() -> None:
    registry = PluginRegistry()
    cfg = registry.validate_config("detector", "yolov8m", {})
    assert cfg.confidence == 0.25 and cfg.iou_threshold == 0.7 and cfg.weights_path is None
    assert cfg.engine == "auto" and cfg.checkpoint_sha256 is None
    with pytest.raises(Exception, match="checkpoint_sha256"):
        registry.validate_config("detector", "yolov8m", {"checkpoint_sha256": "not-a-digest"})
    with pytest.raises(Exception, match="variant"):
        registry.validate_config("detector", "yolov8m", {"variant": "yolov8l"})
    with pytest.raises(Exception, match="confidence"):
        registry.validate_config("detector", "yolov8m", {"confidence": 2})
    assert yolo.VARIANTS["yolov11n"].min_ultralytics == "8.3.203"
    assert yolo.VARIANTS["yolov11n"].keypoints is False and yolo.VARIANTS["yolov8n"].keypoints is True


# --------------------------------------------------------------------------------------------
# pure conversion
# --------------------------------------------------------------------------------------------
def test_centre_boxes_become_top_left_and_keypoints_person_centric() -> None:
    xywh = np.array([[100.0, 80.0, 40.0, 60.0], [10.0, 10.0, 30.0, 30.0]])
    conf = np.array([0.9, 0.6])
    # model order: image-left eye, image-right eye, nose, image-left mouth, image-right mouth
    kps = np.array([[[90, 70], [110, 70], [100, 80], [92, 95], [108, 95]],
                    [[5, 5], [15, 5], [10, 10], [6, 15], [14, 15]]], dtype=float)
    faces = yolo.faces_from_arrays(xywh, conf, kps, width=200, height=150)
    a, b = faces
    assert (a.x, a.y, a.w, a.h, a.confidence) == (80.0, 50.0, 40.0, 60.0, pytest.approx(0.9))
    assert a.right_eye == (90.0, 70.0) and a.left_eye == (110.0, 70.0)
    assert a.nose == (100.0, 80.0) and a.mouth_right == (92.0, 95.0) and a.mouth_left == (108.0, 95.0)
    assert a.left_eye[0] > a.right_eye[0]  # person's left eye on the image's right
    # the second box starts at (-5, -5): clipped to the image
    assert (b.x, b.y, b.w, b.h) == (0.0, 0.0, 25.0, 25.0)


def test_threshold_missing_and_invisible_keypoints() -> None:
    xywh = np.array([[50.0, 50.0, 20.0, 20.0], [20.0, 20.0, 10.0, 10.0]])
    faces = yolo.faces_from_arrays(xywh, np.array([0.3, 0.2]), None, 100, 100, min_confidence=0.25)
    assert len(faces) == 1 and faces[0].left_eye is None and faces[0].nose is None
    kps = np.array([[[45, 45, 0.9], [55, 45, 0.1], [50, 50, 0.9], [np.nan, 55, 0.9], [55, 55, 0.9]]])
    (face,) = yolo.faces_from_arrays(xywh[:1], np.array([0.8]), kps, 100, 100, keypoint_min_confidence=0.5)
    assert face.right_eye == (45.0, 45.0) and face.left_eye is None  # visibility 0.1 < 0.5
    assert face.mouth_right is None and face.mouth_left == (55.0, 55.0)  # NaN dropped
    (face,) = yolo.faces_from_arrays(xywh[:1], np.array([0.8]), kps[:, :2], 100, 100)  # 2-point model
    assert face.right_eye == (45.0, 45.0) and face.left_eye == (55.0, 45.0) and face.nose is None
    with pytest.raises(ValueError):
        yolo.faces_from_arrays(xywh, np.array([0.8]), None, 100, 100)


# --------------------------------------------------------------------------------------------
# plugin glue, against a stand-in for the ultralytics package
# --------------------------------------------------------------------------------------------
class _Boxes:
    def __init__(self, xywh: np.ndarray, conf: np.ndarray) -> None:
        self.xywh, self.conf = xywh, conf


class _Result:
    def __init__(self, xywh: np.ndarray, conf: np.ndarray, kps: np.ndarray | None) -> None:
        self.boxes = _Boxes(xywh, conf)
        self.keypoints = None if kps is None else types.SimpleNamespace(data=kps)


def _fake_ultralytics(version: str, calls: list[tuple[str, Any]]) -> types.ModuleType:
    class YOLO:
        def __init__(self, path: str) -> None:
            calls.append(("load", path))

        def predict(self, images: list[np.ndarray], **kw: Any) -> list[_Result]:
            calls.append(("predict", (len(images), [im.shape for im in images], kw)))
            out = []
            for im in images:
                h, w = im.shape[:2]
                kps = np.array([[[w / 2 - 10, h / 2 - 5, 0.9], [w / 2 + 10, h / 2 - 5, 0.9], [w / 2, h / 2, 0.9],
                                 [w / 2 - 8, h / 2 + 10, 0.9], [w / 2 + 8, h / 2 + 10, 0.9]]])
                out.append(_Result(np.array([[w / 2, h / 2, 40.0, 50.0]]), np.array([0.8]), kps))
            return out

    module = types.ModuleType("ultralytics")
    module.__version__ = version  # type: ignore[attr-defined]
    module.YOLO = YOLO  # type: ignore[attr-defined]
    return module


CHECKPOINT = b"checkpoint"
PIN = hashlib.sha256(CHECKPOINT).hexdigest()  # what a user who trusts the stand-in file pins


def _home_with(tmp_path: Path, name: str, data: bytes = CHECKPOINT) -> WeightsManager:
    (tmp_path / "weights").mkdir(parents=True, exist_ok=True)
    (tmp_path / "weights" / name).write_bytes(data)
    return WeightsManager(home=tmp_path, offline=True, deepface_home=tmp_path / "none")


def test_detect_loads_the_managed_file_and_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics("8.3.210", calls))
    manager = _home_with(tmp_path, "yolov8m-face.pt")
    det = yolo.YoloDetector(yolo.CONFIGS["yolov8m"](confidence=0.4, image_size=320, checkpoint_sha256=PIN),
                            weights=manager)
    images = [np.zeros((100, 200, 3), np.uint8), as_bgr_uint8(np.zeros((60, 60), np.uint8))]  # as the pipeline hands it
    faces = det.detect(images)
    assert calls[0] == ("load", str(tmp_path / "weights" / "yolov8m-face.pt"))
    n, shapes, kw = calls[1][1]
    assert n == 2 and shapes == [(100, 200, 3), (60, 60, 3)]  # gray promoted to 3 channels
    assert kw == {"conf": 0.4, "iou": 0.7, "verbose": False, "imgsz": 320}
    a = faces[0][0]
    assert (a.x, a.y, a.w, a.h) == (80.0, 25.0, 40.0, 50.0) and a.confidence == pytest.approx(0.8)
    assert a.right_eye == (90.0, 45.0) and a.left_eye == (110.0, 45.0) and a.mouth_left == (108.0, 60.0)
    b = faces[1][0]
    assert (b.x, b.y, b.w, b.h) == (10.0, 5.0, 40.0, 50.0)
    det.detect(images[:1])
    assert [c[0] for c in calls] == ["load", "predict", "predict"]  # loaded once
    assert det.detect([]) == []


def test_old_ultralytics_is_refused_for_v11(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics("8.2.0", []))
    det = yolo.YoloDetector(yolo.CONFIGS["yolov11n"](checkpoint_sha256=PIN),
                            weights=_home_with(tmp_path, "yolov11n-face.pt"))
    with pytest.raises(PluginUnavailableError, match="8.3.203"):
        det.detect([np.zeros((10, 10, 3), np.uint8)])
    ok = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](checkpoint_sha256=PIN),
                           weights=_home_with(tmp_path, "yolov8n-face.pt"))
    assert len(ok.detect([np.zeros((10, 10, 3), np.uint8)])) == 1  # 8.1.6 suffices for v8


def test_missing_ultralytics_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import fails
    det = yolo.YoloDetector(yolo.CONFIGS["yolov12s"](checkpoint_sha256=PIN),
                            weights=_home_with(tmp_path, "yolov12s-face.pt"))
    with pytest.raises(PluginUnavailableError, match=r"facepipe\[yolo\].*engine='onnx'"):
        det.detect([np.zeros((10, 10, 3), np.uint8)])


# --------------------------------------------------------------------------------------------
# pickled checkpoints only when their sha256 is pinned
# --------------------------------------------------------------------------------------------
def test_unpinned_checkpoint_is_refused_before_ultralytics_sees_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics("8.3.210", calls))
    manager = _home_with(tmp_path, "yolov8n-face.pt")
    det = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](), weights=manager)
    with pytest.raises(WeightsError, match="runs code") as info:
        det.detect([np.zeros((10, 10, 3), np.uint8)])
    # the message names the way out: the digest to pin, or an ONNX export
    assert f"checkpoint_sha256='{PIN}'" in str(info.value) and "format=onnx" in str(info.value)
    wrong = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](checkpoint_sha256="0" * 64), weights=manager)
    with pytest.raises(WeightsError, match=f"its sha256 is {PIN}, but 0{{64}} is pinned"):
        wrong.detect([np.zeros((10, 10, 3), np.uint8)])
    given = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](weights_path=tmp_path / "weights" / "yolov8n-face.pt"))
    with pytest.raises(WeightsError, match="runs code"):  # an explicit path is no exception
        given.detect([np.zeros((10, 10, 3), np.uint8)])
    assert calls == []  # ultralytics never got the file


def test_checkpoint_pinned_by_its_weight_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics("8.3.210", calls))
    variant = yolo.VARIANTS["yolov8l"]
    pinned = dataclasses.replace(variant, weights=dataclasses.replace(variant.weights, sha256=PIN))
    monkeypatch.setitem(yolo.VARIANTS, "yolov8l", pinned)
    det = yolo.YoloDetector(yolo.CONFIGS["yolov8l"](), weights=_home_with(tmp_path, "yolov8l-face.pt"))
    assert len(det.detect([np.zeros((10, 10, 3), np.uint8)])[0]) == 1
    assert det.engine == "ultralytics" and calls[0][0] == "load"


# --------------------------------------------------------------------------------------------
# download over loopback
# --------------------------------------------------------------------------------------------
def _manager(home: Path, **kw: Any) -> WeightsManager:
    return WeightsManager(home=home, offline=False, deepface_home=home / "none", timeout=5.0, retries=1,
                          backoff=0.01, progress=False, **kw)


@pytest.mark.parametrize("variant", ["yolov8n", "yolov11s"])
def test_download_over_loopback_then_load(variant: str, loopback: Loopback, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    base, root = loopback.base, loopback.root
    assert root is not None
    payload = np.random.default_rng(0).bytes(300_000)
    wf = yolo.VARIANTS[variant].weights
    (root / wf.name).write_bytes(payload)
    home = tmp_path / "home"
    if variant == "yolov8n":
        # the declared URL is Google Drive: a mirror prefix is tried first, as <prefix>/<name>
        manager = _manager(home, mirrors=(base,))
        path = manager.path(wf)
    else:
        # a copy of the declaration pointing at the local server (no mirror)
        manager = _manager(home, mirrors=())
        path = manager.path(dataclasses.replace(wf, urls=(f"{base}/{wf.name}",)))
    assert path == home / "weights" / wf.name
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(payload).digest()

    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "ultralytics", _fake_ultralytics("8.3.210", calls))
    offline = WeightsManager(home=home, offline=True, deepface_home=home / "none")
    pin = hashlib.sha256(payload).hexdigest()
    det = yolo.YoloDetector(yolo.CONFIGS[variant](checkpoint_sha256=pin), weights=offline)
    det.detect([np.zeros((32, 32, 3), np.uint8)])
    assert calls[0] == ("load", str(path))


# --------------------------------------------------------------------------------------------
# the real ultralytics path (needs ultralytics + a working torchvision; skipped otherwise)
# --------------------------------------------------------------------------------------------
def test_real_ultralytics_pose_model_with_random_weights(tmp_path: Path, dataset: Path) -> None:
    try:  # a torchvision built for another torch fails with RuntimeError, not ImportError
        import torchvision  # noqa: F401
        import ultralytics  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"ultralytics cannot run here: {type(exc).__name__}: {exc}")
    cv2 = need("cv2")
    import torch
    from ultralytics.nn.tasks import PoseModel

    # a YOLOv8n-pose network shaped like the face models: 1 class, 5 keypoints (x, y, visibility)
    net = PoseModel("yolov8n-pose.yaml", nc=1, data_kpt_shape=(5, 3), verbose=False)
    net.names = {0: "face"}
    ckpt = tmp_path / "yolov8n-face.pt"
    torch.save({"model": net, "train_args": {"task": "pose", "imgsz": 640}}, ckpt)

    pin = hashlib.sha256(ckpt.read_bytes()).hexdigest()  # we made it, so we trust it
    det = yolo.YoloDetector(yolo.CONFIGS["yolov8n"](confidence=0.0, weights_path=ckpt, checkpoint_sha256=pin))
    image = cv2.imread(str(dataset / "img1.jpg"))
    (faces,) = det.detect([image])
    h, w = image.shape[:2]
    for face in faces:  # random weights: only the form of the results is checked
        assert 0 <= face.x <= face.x + face.w <= w and 0 <= face.y <= face.y + face.h <= h
        assert 0.0 <= face.confidence <= 1.0
        assert face.right_eye is not None and face.mouth_left is not None
