"""Every registered plugin that can run here passes the conformance kit."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe import PluginRegistry
from facepipe.testing import check_detector, check_metric, check_spec

REGISTRY = PluginRegistry()
# Detectors that can run with real (or package-shipped) weights on this machine.
RUNNABLE_DETECTORS = ["skip", "opencv", "dlib", "mtcnn", "fastmtcnn", "centerface", "mediapipe"]


@pytest.mark.parametrize("spec", [REGISTRY.get(k, n) for k in ("detector", "recognizer", "analyzer", "metric")
                                  for n in REGISTRY.names(k)], ids=lambda s: f"{s.kind}:{s.name}")
def test_every_spec_is_complete(spec) -> None:  # type: ignore[no-untyped-def]
    check_spec(spec)


@pytest.mark.parametrize("name", RUNNABLE_DETECTORS)
def test_detector_conformance(name: str, dataset) -> None:  # type: ignore[no-untyped-def]
    if not REGISTRY.has("detector", name):
        pytest.fail(f"detector {name} is not registered")
    spec = REGISTRY.get("detector", name)
    if REGISTRY.status(spec) != "ok":
        pytest.skip(f"{name}: {spec.install_hint}")
    from facepipe.pipeline.image import load_image

    detector = REGISTRY.create("detector", name)
    photos = [load_image(dataset / f).image for f in ("img5.jpg", "img12.jpg", "img25.jpg")]
    check_detector(detector, photos + [np.zeros((64, 64, 3), np.uint8)])


@pytest.mark.parametrize("name", REGISTRY.names("metric"))
def test_metric_conformance(name: str) -> None:
    check_metric(REGISTRY.create("metric", name))


# Detectors without real weights here: the conformance kit runs them on files made here in the
# real formats (a YuNet-shaped ONNX graph, a tiny Caffe SSD, deepface-format RetinaFace weights).
def test_yunet_conformance_with_generated_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx")
    from test_detectors_synthetic import make_yunet_onnx

    path = make_yunet_onnx(tmp_path / "yunet.onnx")
    check_detector(REGISTRY.create("detector", "yunet", {"weights_path": str(path)}))


def test_ssd_conformance_with_tiny_caffe_net(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_detectors_synthetic import MINI_CAFFEMODEL, MINI_PROTOTXT

    (tmp_path / "deploy.prototxt").write_text(MINI_PROTOTXT)
    (tmp_path / "mini.caffemodel").write_bytes(MINI_CAFFEMODEL)
    check_detector(REGISTRY.create("detector", "ssd", {"prototxt_path": str(tmp_path / "deploy.prototxt"),
                                                       "weights_path": str(tmp_path / "mini.caffemodel")}))


def test_retinaface_conformance_with_synthetic_weights(synthetic_weights) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("keras")
    path = synthetic_weights("RetinaFace")
    check_detector(REGISTRY.create("detector", "retinaface", {"weights_path": str(path)}))
