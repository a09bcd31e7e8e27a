"""The ``Fasnet`` anti-spoofing plugin: deepface 0.0.103 parity, the patch rule, weights handling.

The published MiniFASNet ``.onnx`` files cannot be downloaded here, so synthetic graphs of the
same layout and signature (``tests/helpers/synthetic_fasnet.py``) stand in for them.  deepface's
numbers on those graphs are committed in ``tests/reference/parity/fasnet.json`` (made by
``tests/tools/make_fasnet_reference.py`` with deepface 0.0.103 in a side venv), so this check
needs no deepface.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need

need("onnxruntime")
need("onnx")
need("cv2")

from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.plugins.antispoofers import fasnet  # noqa: E402
from facepipe.plugins.antispoofers._patch import context_patch, grown_box  # noqa: E402
from facepipe.registry import default_registry  # noqa: E402
from facepipe.testing import check_antispoofer, check_spec  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402
from tests.helpers.fasnet_cases import REFERENCE, cases, pixels_digest  # noqa: E402
from tests.helpers.paths import photo_dir  # noqa: E402
from tests.helpers.synthetic_fasnet import synthetic_fasnet, weights_digest  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="module")
def spoofer(reference: dict) -> fasnet.FasnetSpoofer:
    """The plugin on the reference's synthetic graphs, found through a weights home (its normal path)."""
    graphs = synthetic_fasnet(reference["seed"])
    home = graphs["V2"].parent / "home"
    (home / "weights").mkdir(parents=True, exist_ok=True)
    for path in graphs.values():
        target = home / "weights" / path.name
        if not target.is_file():
            shutil.copy(path, target)
    plugin = fasnet.FasnetSpoofer(weights=WeightsManager(home=home, offline=True))
    yield plugin
    plugin.close()


def test_synthetic_graphs_are_the_reference_ones(reference: dict) -> None:
    graphs = synthetic_fasnet(reference["seed"])
    assert {v: weights_digest(p) for v, p in graphs.items()} == reference["weights_digest"], \
        "the synthetic MiniFASNet weights differ from those fasnet.json was made with"
    assert reference["deepface"] == "0.0.103" and reference["model_class"].endswith("onnx.FasNet.Fasnet")


def test_scores_match_deepface(spoofer: fasnet.FasnetSpoofer, reference: dict) -> None:
    expected = {(c["image"], tuple(c["box"])): c for c in reference["cases"]}
    checked = 0
    for case in cases(photo_dir()):
        ref = expected[(case["image"], tuple(case["box"]))]
        if pixels_digest(case["pixels"]) != ref["pixels_sha256"]:
            continue  # this machine's JPEG decoder gives other pixels than the reference's
        (is_real, score), = spoofer.check(case["pixels"], [tuple(case["box"])])
        where = f"{case['image']} {case['box']}"
        assert is_real == ref["is_real"], where
        assert abs(score - ref["antispoof_score"]) <= TOLERANCE, f"{where}: {score} vs {ref['antispoof_score']}"
        summed = spoofer.probabilities(case["pixels"], [tuple(case["box"])])[0]
        np.testing.assert_allclose(summed, np.add(ref["v2"], ref["v1se"]), atol=TOLERANCE, err_msg=where)
        checked += 1
    assert checked >= 18, "the synthetic cases must always be checked"
    assert any(c["is_real"] for c in reference["cases"]) and not all(c["is_real"] for c in reference["cases"])


def test_all_boxes_of_an_image_at_once(spoofer: fasnet.FasnetSpoofer, reference: dict) -> None:
    synthetic = [c for c in cases(None) if c["image"] == "synthetic:rings"]
    image = synthetic[0]["pixels"]
    boxes = [tuple(c["box"]) for c in synthetic]
    check_antispoofer(spoofer, image, boxes)
    expected = {tuple(c["box"]): c for c in reference["cases"] if c["image"] == "synthetic:rings"}
    for box, (is_real, score) in zip(boxes, spoofer.check(image, boxes)):
        assert is_real == expected[box]["is_real"]
        assert abs(score - expected[box]["antispoof_score"]) <= TOLERANCE


def test_grey_images_are_checked_as_three_channels(spoofer: fasnet.FasnetSpoofer) -> None:
    grey = cases(None)[0]["pixels"][:, :, 1]
    box = (100, 60, 90, 90)
    assert spoofer.check(grey, [box]) == spoofer.check(np.repeat(grey[:, :, None], 3, axis=2), [box])


@pytest.mark.parametrize(("box", "scale", "expected"), [
    ((40, 40, 20, 20), 2.0, (30, 30, 70, 70)),       # grown around the centre
    ((0, 0, 20, 20), 2.0, (0, 0, 40, 40)),           # slid right/down to stay inside
    ((85, 85, 14, 14), 2.0, (71, 71, 99, 99)),       # slid left/up, far corner on the last pixel
    ((10, 10, 80, 80), 4.0, (0, 0, 99, 99)),         # scale capped at (side - 1) / box side
    ((10, 20, 0, 0), 2.7, (9, 19, 11, 21)),          # a degenerate box still gets a patch
])
def test_grown_box(box: tuple[int, int, int, int], scale: float, expected: tuple[int, int, int, int]) -> None:
    assert grown_box(100, 100, box, scale) == expected


def test_context_patch_is_80x80_uint8() -> None:
    image = cases(None)[0]["pixels"]
    patch = context_patch(image, (0, 0, 300, 200), 4.0, 80)
    assert patch.shape == (80, 80, 3) and patch.dtype == np.uint8


def test_registered_with_deepface_files() -> None:
    spec = default_registry().get("antispoofer", "fasnet")
    check_spec(spec)
    assert spec.name == "Fasnet" and default_registry().get("antispoofer", "MiniFASNet") is spec
    names = [wf.name for wf in spec.weights]
    assert names == ["2.7_80x80_MiniFASNetV2.onnx", "4_0_0_80x80_MiniFASNetV1SE.onnx"]
    for wf in spec.weights:
        assert wf.deepface_name == wf.name
        assert wf.urls == (f"https://github.com/serengil/deepface_models/releases/download/v1.0/{wf.name}",
                           f"https://huggingface.co/serengil/deepface/resolve/main/{wf.name}")


def test_offline_without_weights_names_the_file(tmp_path: Path) -> None:
    plugin = fasnet.FasnetSpoofer(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(OfflineError, match="2.7_80x80_MiniFASNetV2.onnx"):
        plugin.check(np.zeros((64, 64, 3), np.uint8), [(8, 8, 40, 40)])
    assert issubclass(OfflineError, WeightsError)


def test_explicit_paths_and_wrong_files(tmp_path: Path, reference: dict) -> None:
    graphs = synthetic_fasnet(reference["seed"])
    plugin = fasnet.FasnetSpoofer(fasnet.FasnetConfig(v2_weights_path=graphs["V2"], v1se_weights_path=graphs["V1SE"]),
                                  weights=WeightsManager(home=tmp_path / "nowhere", offline=True))
    assert len(plugin.check(np.zeros((90, 90, 3), np.uint8), [(20, 20, 40, 40)])) == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    broken = fasnet.FasnetSpoofer(fasnet.FasnetConfig(v2_weights_path=bad, v1se_weights_path=graphs["V1SE"]))
    with pytest.raises(WeightsError, match="bad.onnx"):
        broken.prepare()
    with pytest.raises(ValueError, match="not a file"):
        fasnet.FasnetConfig(v2_weights_path=tmp_path / "missing.onnx")
