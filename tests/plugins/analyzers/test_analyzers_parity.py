"""deepface's attribute models (Age, Gender, Race, Emotion): loading and numerical parity.

Synthetic weights in deepface's exact ``.h5`` layout (``synthetic_weights`` fixture) are loaded
through each plugin's normal path (a weights manager whose cache holds the file); the model-level
``forward`` on the reference inputs must reproduce deepface's outputs (parity/README.md).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.paths import MANIFESTS, parity_npz
from facepipe.weights import WeightsManager

need("keras")
need("h5py")
cv2 = need("cv2")

from facepipe.errors import OfflineError, WeightsError
from facepipe.plugins.analyzers import _common
from facepipe.plugins.analyzers.age import AgeAnalyzer
from facepipe.plugins.analyzers.emotion import EmotionAnalyzer, EmotionConfig, to_gray48
from facepipe.plugins.analyzers.gender import GenderAnalyzer
from facepipe.plugins.analyzers.race import RaceAnalyzer

MODULES = ("age", "gender", "race", "emotion", "age_gender_onnx", "fer_emotion")
ANALYZERS = {"Age": AgeAnalyzer, "Gender": GenderAnalyzer, "Race": RaceAnalyzer, "Emotion": EmotionAnalyzer}


def manager_holding(home: Path, weights_file: Path) -> WeightsManager:
    """An offline weights manager whose cache holds ``weights_file`` under its own name."""
    cache = home / "weights"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / weights_file.name
    if not link.exists():
        link.symlink_to(weights_file)
    return WeightsManager(home=home, offline=True)


def assert_parity(out: np.ndarray, ref: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * scale)


def reference(parity_dir: Path, model: str) -> dict:
    with np.load(parity_npz(model)) as data:
        return {k: data[k] for k in data.files}


def check_results(results: list[dict], action: str, probs: np.ndarray, labels: list[str], renormalize: bool) -> None:
    assert len(results) == len(probs)
    for res, p in zip(results, probs):
        assert set(res) == {action, f"dominant_{action}"}
        assert list(res[action]) == labels
        assert all(type(v) is float for v in res[action].values())
        expected = 100.0 * p / (p.sum() if renormalize else 1.0)
        np.testing.assert_allclose(list(res[action].values()), expected, rtol=1e-4, atol=1e-3)
        assert res[f"dominant_{action}"] == labels[int(np.argmax(p))]
        if renormalize:
            assert math.isclose(sum(res[action].values()), 100.0, abs_tol=1e-6)


# ------------------------------------------------------------------------------- Emotion (6 MB)
@pytest.fixture(scope="module")
def emotion(synthetic_weights, tmp_path_factory) -> EmotionAnalyzer:
    path = synthetic_weights("Emotion")
    return EmotionAnalyzer(weights=manager_holding(tmp_path_factory.mktemp("home"), path))


def test_emotion_forward_matches_deepface(emotion, parity_dir):
    ref = reference(parity_dir, "Emotion")
    out = emotion.forward(ref["inputs"])
    assert out.shape == (3, 7) and out.dtype == np.float32
    assert_parity(out, ref["outputs"])


def test_emotion_predict_on_224_crops(emotion, parity_dir):
    """The shared 224x224 inputs, given as crops, go through deepface's gray conversion."""
    age_ref, ref = reference(parity_dir, "Age"), reference(parity_dir, "Emotion")
    crops = list(age_ref["inputs"])  # resize_pad of a 224x224 [0, 1] crop is the identity
    np.testing.assert_array_equal(emotion.preprocess(crops), ref["inputs"])
    check_results(emotion.predict(crops), "emotion", ref["outputs"].astype(np.float64),
                  [str(x) for x in ref["labels"]], renormalize=True)


def test_emotion_gray_conversion_is_bit_exact(parity_dir):
    np.testing.assert_array_equal(to_gray48(reference(parity_dir, "Age")["inputs"]),
                                  reference(parity_dir, "Emotion")["inputs"])


def test_emotion_chunking_does_not_change_results(synthetic_weights, tmp_path, parity_dir):
    crops = list(reference(parity_dir, "Age")["inputs"])
    wm = manager_holding(tmp_path, synthetic_weights("Emotion"))
    one = EmotionAnalyzer(EmotionConfig(batch_size=1), weights=wm).probabilities(crops)
    ref = reference(parity_dir, "Emotion")["outputs"]
    assert_parity(one, ref)


def test_emotion_weights_path_option(synthetic_weights, parity_dir):
    analyzer = EmotionAnalyzer(EmotionConfig(weights_path=synthetic_weights("Emotion")),
                               weights=WeightsManager(home="/nonexistent", offline=True))
    ref = reference(parity_dir, "Emotion")
    assert_parity(analyzer.forward(ref["inputs"]), ref["outputs"])


def test_emotion_rejects_a_foreign_weight_file(synthetic_weights):
    analyzer = EmotionAnalyzer(EmotionConfig(weights_path=synthetic_weights("DeepID")))
    with pytest.raises(WeightsError, match="weighted layers|shape"):
        analyzer.forward(np.zeros((1, 48, 48, 1), np.float32))


def test_missing_weights_offline_names_the_file(tmp_path):
    analyzer = EmotionAnalyzer(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(OfflineError, match="facial_expression_model_weights.h5"):
        analyzer.predict([np.zeros((60, 50, 3), np.uint8)])


def test_empty_input_gives_empty_output(emotion):
    assert emotion.predict([]) == []


def test_weights_path_must_exist(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a file"):
        EmotionConfig(weights_path=tmp_path / "missing.h5")


# ----------------------------------------------------------- preprocessing from the photos
def _deepface_crop(img: np.ndarray, area: dict) -> np.ndarray:
    """The aligned crop deepface cuts for a known opencv box + eyes (fact sheet §3)."""
    h_img, w_img = img.shape[:2]
    x, y, w, h = area["x"], area["y"], area["w"], area["h"]
    rx, ry = int(0.5 * w), int(0.5 * h)
    ph, pw = h + 2 * ry, w + 2 * rx
    patch = np.zeros((ph, pw, 3), np.uint8)  # the context patch, black outside the photo
    y0, x0 = y - ry, x - rx
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y0 + ph, h_img), min(x0 + pw, w_img)
    patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    (lx, ly), (rx_e, ry_e) = area["left_eye"], area["right_eye"]
    angle = math.degrees(math.atan2(ly - ry_e, lx - rx_e))
    rot = cv2.getRotationMatrix2D((pw // 2, ph // 2), angle, 1.0)
    patch = cv2.warpAffine(patch, rot, (pw, ph), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return patch[ry:ry + h, rx:rx + w]


def test_preprocessing_reproduces_reference_inputs_from_photos(parity_dir, dataset):
    """Crops cut from the photos the way deepface does, run through the analyzers' preprocess.

    Not bit-exact: the reference used another OpenCV build (JPEG decoder, cubic warp); measured
    max 0.0093 (2.4/255) and mean 0.0012. A wrong channel order, padding or scale is far off.
    """
    age_ref, emo_ref = reference(parity_dir, "Age"), reference(parity_dir, "Emotion")
    areas = json.loads(str(age_ref["facial_areas"]))
    crops = [_deepface_crop(cv2.imread(str(dataset / str(name))), area)
             for name, area in zip(age_ref["source_images"], areas)]
    x224 = AgeAnalyzer().preprocess(crops)  # building the plugin loads no weights
    assert x224.shape == (3, 224, 224, 3) and x224.dtype == np.float32
    diff = np.abs(x224 - age_ref["inputs"])
    assert diff.max() < 4 / 255 and diff.mean() < 2e-3
    gray = EmotionAnalyzer().preprocess(crops)
    diff = np.abs(gray - emo_ref["inputs"])
    assert diff.max() < 4 / 255 and diff.mean() < 2e-3


# ----------------------------------------------------------------- Age/Gender/Race (540 MB)
@pytest.mark.slow
@pytest.mark.parametrize("model", ["Age", "Gender", "Race"])
def test_vgg_attribute_model_matches_deepface(model, synthetic_weights, tmp_path, parity_dir):
    ref = reference(parity_dir, model)
    analyzer = ANALYZERS[model](weights=manager_holding(tmp_path, synthetic_weights(model)))
    try:
        out = analyzer.forward(ref["inputs"])
        assert_parity(out, ref["outputs"])
        results = analyzer.format_results(out)
        if model == "Age":
            ages = [r["age"] for r in results]
            assert all(type(a) is float for a in ages)
            np.testing.assert_allclose(ages, ref["apparent_age"], rtol=1e-4,
                                       atol=1e-4 * max(1.0, float(np.abs(ref["apparent_age"]).max())))
        else:
            check_results(results, model.lower(), ref["outputs"].astype(np.float64),
                          [str(x) for x in ref["labels"]], renormalize=model == "Race")
    finally:
        analyzer.close()


# ------------------------------------------------------------------------- plumbing / specs
def test_result_formatting_helpers():
    probs = np.array([[0.2, 0.2, 0.6], [0.5, 0.5, 0.0], [0.1, 0.1, 0.3]], np.float32)
    res = _common.labelled_results("x", probs, ["a", "b", "c"], renormalize=True)
    assert res[0]["dominant_x"] == "c" and res[1]["dominant_x"] == "a"  # tie: first label
    assert math.isclose(res[2]["x"]["c"], 60.0, rel_tol=1e-6)
    raw = _common.labelled_results("x", probs, ["a", "b", "c"], renormalize=False)
    assert math.isclose(raw[2]["x"]["c"], 30.0, rel_tol=1e-6)
    assert _common.expected_values(np.array([[0.5, 0.5]]), [10.0, 20.0]) == [15.0]
    with pytest.raises(ValueError):
        _common.labelled_results("x", probs, ["a", "b"], renormalize=True)


def test_specs_match_deepface_manifests():
    import importlib

    from facepipe.registry import PluginRegistry

    registry = PluginRegistry(autoload=False)
    for name in MODULES:
        registry.register_module(importlib.import_module(f"facepipe.plugins.analyzers.{name}"))
    assert {"Age", "Gender", "Race", "Emotion", "age-offline", "gender-offline", "emotion-offline"} <= set(
        registry.names("analyzer"))
    manifests = MANIFESTS
    for model, cls in ANALYZERS.items():
        spec = registry.get("analyzer", model)
        assert spec.factory.endswith(cls.__name__)
        if (manifests / f"{model}.json").is_file():
            manifest = json.loads((manifests / f"{model}.json").read_text())
            (wf,) = spec.weights
            assert wf.name == manifest["weights_file"] and list(wf.urls) == manifest["source_urls"]
        assert registry.create("analyzer", model).action == model.lower()
    assert registry.get("analyzer", "fer").name == "emotion-offline"


def test_plugin_modules_import_no_ml_runtime():
    code = (
        "import sys\n"
        + "".join(f"import facepipe.plugins.analyzers.{m}\n" for m in MODULES)
        + "bad = [m for m in ('keras', 'tensorflow', 'torch', 'cv2', 'onnxruntime', 'h5py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


# ------------------------------------------------------------------------------ engine="onnx"
def test_emotion_onnx_engine_matches_deepface(synthetic_weights, tmp_path, parity_dir):
    """Emotion through ONNX Runtime (exported by the direct chain writer) gives deepface's numbers."""
    need("onnxruntime")
    ref = reference(parity_dir, "Emotion")
    config = EmotionConfig(engine="onnx", onnx_cache_dir=tmp_path / "onnx")
    analyzer = EmotionAnalyzer(config, weights=manager_holding(tmp_path / "home", synthetic_weights("Emotion")))
    assert_parity(analyzer.forward(ref["inputs"]), ref["outputs"])
    assert analyzer._keras_model is None  # freed after the export: ONNX Runtime holds the model
    assert list((tmp_path / "onnx").glob("Emotion-*.onnx"))
    # A later process runs on the cached export alone: no Keras, no TensorFlow, same numbers.
    np.save(tmp_path / "inputs.npy", ref["inputs"])
    code = (
        "import sys, numpy as np\n"
        "from facepipe.plugins.analyzers.emotion import EmotionAnalyzer, EmotionConfig\n"
        "from facepipe.weights import WeightsManager\n"
        f"home, cache, folder = {str(tmp_path / 'home')!r}, {str(tmp_path / 'onnx')!r}, {str(tmp_path)!r}\n"
        "analyzer = EmotionAnalyzer(EmotionConfig(engine='onnx', onnx_cache_dir=cache),\n"
        "                           weights=WeightsManager(home=home, offline=True))\n"
        "np.save(folder + '/outputs.npy', analyzer.forward(np.load(folder + '/inputs.npy')))\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'torch', 'tf2onnx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert_parity(np.load(tmp_path / "outputs.npy"), ref["outputs"])


@pytest.mark.slow
def test_age_onnx_engine_matches_deepface(synthetic_weights, tmp_path, parity_dir):
    """A 540 MB VGG-16 exported without tf2onnx and run by ONNX Runtime keeps deepface's outputs,
    and a second process-like start reuses the cached file without Keras."""
    need("onnxruntime")
    from facepipe.plugins.analyzers.age import AgeConfig

    ref = reference(parity_dir, "Age")
    config = AgeConfig(engine="onnx", onnx_cache_dir=tmp_path / "onnx")
    manager = manager_holding(tmp_path / "home", synthetic_weights("Age"))
    first = AgeAnalyzer(config, weights=manager)
    assert_parity(first.forward(ref["inputs"]), ref["outputs"])
    first.close()
    again = AgeAnalyzer(config, weights=manager)
    assert_parity(again.forward(ref["inputs"]), ref["outputs"])
    assert again._keras_model is None  # opened from the cache: nothing was built
    again.close()
