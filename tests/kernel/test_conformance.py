"""Every registered plugin that can run here passes the conformance kit.

One test per plugin of the default registry, by name.  A plugin runs when its extra is installed
(otherwise the test skips, naming the pip command).  It runs on its real weights when they are
available offline (shipped in a package, or already cached); the plugins whose weights cannot be
had offline run on stand-in files in their real formats instead:

* deepface-format synthetic ``.h5`` weights (``tests/tools/make_synthetic_weights.py``, cached in
  ``.cache/synthetic`` and shared with the parity tests) for the Keras recognizers and analyzers
  and RetinaFace;
* a YuNet-shaped ONNX graph and a tiny Caffe SSD (``tests/helpers/mini_detectors.py``);
* an ONNX graph with SFace's signature (``tests/helpers/sface_like.py``);
* a YOLOv8n-face network exported like an ultralytics pose model (``tests/helpers/yolo_net.py``),
  for every YOLO variant (their ONNX engine reads the same output layout);
* a Buffalo_L-like ONNX graph (``tests/helpers/buffalo_l_like.py``);
* synthetic MiniFASNet graphs of the published layout for Fasnet (``tests/helpers/synthetic_fasnet.py``).

VGG-Face and DeepFace are marked ``slow``: their synthetic files are ~0.5 GB each (the slow parity
tests of the same run write them into the same cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from facepipe import PluginRegistry
from facepipe.specs import PluginSpec
from facepipe.testing import (
    BlobDetector,
    GridRecognizer,
    check_analyzer,
    check_antispoofer,
    check_detector,
    check_metric,
    check_recognizer,
    check_spec,
    sample_images,
    synthetic_face_image,
)
from facepipe.weights.manager import default_manager
from tests.helpers.extras import need
from tests.helpers.mini_detectors import MINI_CAFFEMODEL, MINI_PROTOTXT, make_yunet_onnx
from tests.helpers.sface_like import make_sface_like_onnx

REGISTRY = PluginRegistry()
KINDS = ("detector", "recognizer", "analyzer", "metric", "antispoofer")
SPECS = [REGISTRY.get(kind, name) for kind in KINDS for name in REGISTRY.names(kind)]


def _id(spec: PluginSpec) -> str:
    return f"{spec.kind}:{spec.name}"


#: plugin name -> the deepface model whose synthetic weights (weights manifest) it loads
DEEPFACE_FORMAT = {
    "retinaface": "RetinaFace", "VGG-Face": "VGG-Face", "Facenet": "Facenet", "Facenet512": "Facenet512",
    "OpenFace": "OpenFace", "DeepFace": "DeepFace", "DeepID": "DeepID", "ArcFace": "ArcFace",
    "GhostFaceNet": "GhostFaceNet", "Age": "Age", "Gender": "Gender", "Emotion": "Emotion", "Race": "Race",
}
#: ~0.5 GB synthetic files and a VGG-sized network: run with the slow tests
SLOW = {"VGG-Face", "DeepFace"}


def _is_yolo(spec: PluginSpec) -> bool:
    return spec.kind == "detector" and spec.name.startswith("yolo")


def missing_weights(spec: PluginSpec) -> list[str]:
    manager = default_manager()
    return [wf.name for wf in spec.weights if manager.status(wf)["where"] == "missing"]


def has_stand_in(spec: PluginSpec) -> bool:
    return (spec.name in DEEPFACE_FORMAT or spec.name in {"yunet", "ssd", "SFace", "Buffalo_L", "Fasnet"}
            or _is_yolo(spec))


class StandIns:
    """Stand-in weight files in the plugins' real formats, made once per session."""

    def __init__(self, request: pytest.FixtureRequest, folder: Path) -> None:
        self.request = request
        self.folder = folder
        self.made: dict[str, dict[str, str]] = {}

    def config(self, spec: PluginSpec) -> dict[str, str]:
        key = "yolo" if _is_yolo(spec) else spec.name
        if key not in self.made:
            self.made[key] = self._make(key)
        return self.made[key]

    def _make(self, key: str) -> dict[str, str]:
        folder = self.folder / key
        folder.mkdir(parents=True, exist_ok=True)
        if key in DEEPFACE_FORMAT:
            need("keras")
            synthetic_weights = self.request.getfixturevalue("synthetic_weights")
            return {"weights_path": str(synthetic_weights(DEEPFACE_FORMAT[key]))}
        if key == "yunet":
            return {"weights_path": str(make_yunet_onnx(folder / "yunet.onnx"))}
        if key == "ssd":
            (folder / "deploy.prototxt").write_text(MINI_PROTOTXT)
            (folder / "mini.caffemodel").write_bytes(MINI_CAFFEMODEL)
            return {"prototxt_path": str(folder / "deploy.prototxt"), "weights_path": str(folder / "mini.caffemodel")}
        if key == "SFace":
            return {"weights_path": str(make_sface_like_onnx(folder / "face_recognition_sface_2021dec.onnx"))}
        if key == "Buffalo_L":
            need("onnx")
            from tests.helpers.buffalo_l_like import write_buffalo_l_like

            return {"weights_path": str(write_buffalo_l_like(folder / "webface_r50.onnx"))}
        if key == "Fasnet":
            need("onnx")
            from tests.helpers.synthetic_fasnet import synthetic_fasnet

            graphs = synthetic_fasnet(7)
            return {"v2_weights_path": str(graphs["V2"]), "v1se_weights_path": str(graphs["V1SE"])}
        if key == "yolo":
            need("torch", "yolo")
            need("onnx")
            from tests.helpers import yolo_net

            return {"weights_path": str(yolo_net.export_onnx(yolo_net.build(seed=0), folder / "yolov8n-face.onnx"))}
        raise KeyError(key)


@pytest.fixture(scope="session")
def stand_ins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StandIns:
    return StandIns(request, tmp_path_factory.mktemp("stand_ins"))


def plugin_config(spec: PluginSpec, stand_ins: StandIns) -> dict[str, str]:
    """``{}`` for real weights; a stand-in's paths otherwise.  Skips only for a missing extra."""
    if REGISTRY.status(spec) != "ok":
        pytest.skip(f"{spec.name} needs {spec.install_hint or 'a missing extra'}")
    missing = missing_weights(spec)
    if not missing:
        return {}
    assert has_stand_in(spec), (f"{spec.name}: weights not available offline ({', '.join(missing)}) and "
                                f"the conformance kit has no stand-in for them: add one to StandIns")
    return stand_ins.config(spec)


def _images() -> list[np.ndarray]:
    return [*sample_images(), synthetic_face_image(), np.zeros((64, 64, 3), np.uint8)]


CHECKS: dict[str, Callable[[Any], None]] = {
    "detector": lambda plugin: check_detector(plugin, _images()),
    "recognizer": lambda plugin: check_recognizer(plugin, _images()),
    "analyzer": lambda plugin: check_analyzer(plugin, _images()),
    "metric": check_metric,
    "antispoofer": lambda plugin: check_antispoofer(plugin, synthetic_face_image()),
}


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_every_spec_is_complete(spec: PluginSpec) -> None:
    check_spec(spec)


@pytest.mark.parametrize("spec", [pytest.param(spec, marks=[pytest.mark.slow] if spec.name in SLOW else [])
                                  for spec in SPECS], ids=_id)
def test_plugin_conforms(spec: PluginSpec, stand_ins: StandIns) -> None:
    plugin = REGISTRY.create(spec.kind, spec.name, plugin_config(spec, stand_ins))
    try:
        CHECKS[spec.kind](plugin)
    finally:
        close = getattr(plugin, "close", None)
        if callable(close):
            close()


def test_hermetic_plugins_conform() -> None:
    check_detector(BlobDetector(), _images())
    check_recognizer(GridRecognizer(), _images())
