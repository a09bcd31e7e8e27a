"""Every registered plugin that can run here passes the conformance kit.

One test per plugin of the default registry, by name.  A plugin runs when its extra is installed
and its weights are available offline (shipped in a package, or already cached); otherwise the
test skips, saying which.  Plugins without real weights here are also run on files made in their
real formats (a YuNet-shaped ONNX graph, a tiny Caffe SSD, deepface-format RetinaFace weights).
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

REGISTRY = PluginRegistry()
KINDS = ("detector", "recognizer", "analyzer", "metric")
SPECS = [REGISTRY.get(kind, name) for kind in KINDS for name in REGISTRY.names(kind)]


def _id(spec: PluginSpec) -> str:
    return f"{spec.kind}:{spec.name}"


def runnable(spec: PluginSpec) -> None:
    """Skip unless the plugin's extra is installed and its weights are here (tests are offline)."""
    if REGISTRY.status(spec) != "ok":
        pytest.skip(f"{spec.name} needs {spec.install_hint or 'a missing extra'}")
    manager = default_manager()
    missing = [wf.name for wf in spec.weights if manager.status(wf)["where"] == "missing"]
    if missing:
        pytest.skip(f"{spec.name}: weights not available offline ({', '.join(missing)}; "
                    f"no package ships them and downloads are off in tests)")


def _images() -> list[np.ndarray]:
    return [*sample_images(), synthetic_face_image(), np.zeros((64, 64, 3), np.uint8)]


CHECKS: dict[str, Callable[[Any], None]] = {
    "detector": lambda plugin: check_detector(plugin, _images()),
    "recognizer": lambda plugin: check_recognizer(plugin, _images()),
    "analyzer": lambda plugin: check_analyzer(plugin, _images()),
    "metric": check_metric,
}


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_every_spec_is_complete(spec: PluginSpec) -> None:
    check_spec(spec)


@pytest.mark.parametrize("spec", SPECS, ids=_id)
def test_plugin_conforms(spec: PluginSpec) -> None:
    runnable(spec)
    CHECKS[spec.kind](REGISTRY.create(spec.kind, spec.name))


def test_hermetic_plugins_conform() -> None:
    check_detector(BlobDetector(), _images())
    check_recognizer(GridRecognizer(), _images())


def test_yunet_conformance_with_generated_model(tmp_path: Path) -> None:
    need("cv2")
    path = make_yunet_onnx(tmp_path / "yunet.onnx")
    check_detector(REGISTRY.create("detector", "yunet", {"weights_path": str(path)}))


def test_ssd_conformance_with_tiny_caffe_net(tmp_path: Path) -> None:
    need("cv2")
    (tmp_path / "deploy.prototxt").write_text(MINI_PROTOTXT)
    (tmp_path / "mini.caffemodel").write_bytes(MINI_CAFFEMODEL)
    check_detector(REGISTRY.create("detector", "ssd", {"prototxt_path": str(tmp_path / "deploy.prototxt"),
                                                       "weights_path": str(tmp_path / "mini.caffemodel")}))


def test_retinaface_conformance_with_synthetic_weights(synthetic_weights: Callable[[str], Path]) -> None:
    need("keras")
    path = synthetic_weights("RetinaFace")
    check_detector(REGISTRY.create("detector", "retinaface", {"weights_path": str(path)}))
