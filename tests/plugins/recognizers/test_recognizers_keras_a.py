"""Keras recognizers Facenet, Facenet512, OpenFace, DeepID, ArcFace: architecture, parity, embed.

Backend-agnostic: Keras picks its backend from ``KERAS_BACKEND`` when first imported, so the same
module runs as ``pytest tests/test_recognizers_keras_a.py`` (TensorFlow) and as
``KERAS_BACKEND=torch pytest tests/test_recognizers_keras_a.py``.

Parity: deepface-format synthetic weights (``synthetic_weights`` fixture, seed 1) are loaded
through each plugin's normal path (a ``WeightsManager`` whose home holds the file, or the
``weights_path`` option); the plugin's ``forward()`` on the reference ``inputs`` must give
deepface's ``outputs`` within ``rtol=1e-4, atol=1e-4 * max(1, max|ref|)``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.paths import MANIFESTS, parity_npz
keras = need("keras")
need("h5py")
BACKEND = keras.backend.backend()
need(BACKEND, "keras")  # the Keras backend in use (tensorflow, torch or jax)


from facepipe.engines.keras_h5 import layer_signature  # noqa: E402
from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402

# name -> (module, class, embedding size, input (h, w))
MODELS: dict[str, tuple[str, str, int, tuple[int, int]]] = {
    "Facenet": ("facenet", "FacenetRecognizer", 128, (160, 160)),
    "Facenet512": ("facenet512", "Facenet512Recognizer", 512, (160, 160)),
    "OpenFace": ("openface", "OpenFaceRecognizer", 128, (96, 96)),
    "DeepID": ("deepid", "DeepIDRecognizer", 160, (55, 47)),
    "ArcFace": ("arcface", "ArcFaceRecognizer", 512, (112, 112)),
}

#: layer classes whose Keras 3 name differs from the tf_keras name in the manifests.  None of
#: the layers these five models use was renamed (Conv2D, BatchNormalization, Dense, PReLU).
KERAS3_CLASS_NAMES: dict[str, str] = {}


def _plugin_class(name: str) -> type:
    module, cls, _, _ = MODELS[name]
    return getattr(importlib.import_module(f"facepipe.plugins.recognizers.{module}"), cls)


def _manifest(name: str) -> dict[str, Any]:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def _tolerance(ref: np.ndarray) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-4 * max(1.0, float(np.abs(ref).max()))}


@pytest.fixture(scope="module")
def loaded(synthetic_weights, tmp_path_factory):
    """``loaded("Facenet")`` -> plugin with synthetic weights, found by a WeightsManager (built once)."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            source = synthetic_weights(name)
            home = tmp_path_factory.mktemp(f"home_{name}")
            (home / "weights").mkdir()
            (home / "weights" / source.name).symlink_to(source)
            cls = _plugin_class(name)
            assert cls.weight_file.name == source.name
            cache[name] = cls(weights=WeightsManager(home=home, offline=True))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def crops(dataset) -> list[np.ndarray]:
    """Three real face-ish crops (centre regions of dataset photos), different sizes."""
    cv2 = need("cv2")
    out = []
    for file in ("img1.jpg", "img3.jpg", "img14.jpg"):
        img = cv2.imread(str(dataset / file))
        assert img is not None, file
        h, w = img.shape[:2]
        out.append(np.ascontiguousarray(img[h // 8: h - h // 4, w // 6: w - w // 6]))
    return out


# --------------------------------------------------------------------------------------------
# registration (cheap, no runtime)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_registration_matches_manifest(name: str) -> None:
    module = importlib.import_module(f"facepipe.plugins.recognizers.{MODELS[name][0]}")
    specs: list[Any] = []
    module.facepipe_register_recognizers(register=specs.append)
    (spec,) = specs
    manifest = _manifest(name)
    assert spec.name == name and spec.kind == "recognizer"
    assert spec.extra == "keras" and {"keras", "h5py"} <= set(spec.requires)
    (wf,) = spec.weights
    assert wf.name == wf.deepface_name == manifest["weights_file"]
    assert list(wf.urls) == manifest["source_urls"]
    cls = _plugin_class(name)
    assert spec.factory == f"{cls.__module__}:{cls.__name__}"
    assert cls.embedding_size == MODELS[name][2] and cls.input_size == MODELS[name][3]
    assert tuple(manifest["load_target"]["input_shape"][1:3]) == cls.input_size
    assert manifest["load_target"]["output_shape"][-1] == cls.embedding_size
    assert set(cls.thresholds) == {"cosine", "euclidean", "euclidean_l2", "angular"}


# --------------------------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_layer_signature_matches_manifest(name: str) -> None:
    model = _plugin_class(name)().build_model()
    ours = [(KERAS3_CLASS_NAMES.get(c, c), shapes) for c, shapes in layer_signature(model)]
    manifest_layers = _manifest(name)["load_target"]["layers"]
    theirs = [(KERAS3_CLASS_NAMES.get(c, c), shapes) for c, _layer_name, shapes, *_ in manifest_layers]
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"weighted layer #{index}: model {a} != manifest {b}"
    assert model.count_params() == _manifest(name)["load_target"]["total_params"]


# --------------------------------------------------------------------------------------------
# parity with deepface (synthetic weights)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_parity_with_deepface(name: str, loaded, parity_dir: Path) -> None:
    ref = np.load(parity_npz(name))
    plugin = loaded(name)
    out = plugin.forward(ref["inputs"])
    assert out.dtype == np.float32 and out.shape == ref["outputs"].shape == (3, MODELS[name][2])
    np.testing.assert_allclose(out, ref["outputs"], **_tolerance(ref["outputs"]))
    # one face at a time (deepface's n=1 path) gives the same numbers
    single = np.concatenate([plugin.forward(ref["inputs"][i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(single, ref["outputs"], **_tolerance(ref["outputs"]))


def test_openface_parity_strict(loaded, parity_dir: Path) -> None:
    """OpenFace outputs are small (|x| <= 0.25): the generic tolerance would not notice a missing
    local response normalisation (6e-5 off); ours is within 1e-6 on both backends."""
    ref = np.load(parity_npz("OpenFace"))
    out = loaded("OpenFace").forward(ref["inputs"])
    np.testing.assert_allclose(out, ref["outputs"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_weights_path_option_and_chunking(synthetic_weights, parity_dir: Path, tmp_path: Path) -> None:
    """``weights_path`` overrides the manager (an empty, offline one here); batch_size chunks."""
    cls = _plugin_class("DeepID")
    ref = np.load(parity_npz("DeepID"))
    plugin = cls(cls.config_class(weights_path=synthetic_weights("DeepID"), batch_size=2),
                 weights=WeightsManager(home=tmp_path, offline=True))
    np.testing.assert_allclose(plugin.forward(ref["inputs"]), ref["outputs"], **_tolerance(ref["outputs"]))


def test_device_option(synthetic_weights, parity_dir: Path) -> None:
    """``device`` is handed to the backend (names adapted: 'CPU:0' works on TF and torch)."""
    cls = _plugin_class("DeepID")
    ref = np.load(parity_npz("DeepID"))
    plugin = cls(cls.config_class(weights_path=synthetic_weights("DeepID"), device="CPU:0"))
    np.testing.assert_allclose(plugin.forward(ref["inputs"]), ref["outputs"], **_tolerance(ref["outputs"]))
    with pytest.raises(ValueError, match="not a device name"):
        cls.config_class(device="potato")


def test_missing_weights_offline_raises(tmp_path: Path) -> None:
    plugin = _plugin_class("DeepID")(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(OfflineError, match="deepid_keras_weights.h5"):
        plugin.forward(np.zeros((1, 55, 47, 3), np.float32))


def test_wrong_weights_file_is_rejected(synthetic_weights, tmp_path: Path) -> None:
    """An architecture/file mismatch fails loudly instead of loading garbage."""
    cls = _plugin_class("DeepID")
    plugin = cls(cls.config_class(weights_path=synthetic_weights("OpenFace")))
    with pytest.raises(WeightsError, match="weighted layers"):
        plugin.forward(np.zeros((1, 55, 47, 3), np.float32))


def test_wrong_input_shape_is_rejected(loaded) -> None:
    with pytest.raises(ValueError, match="expects input"):
        loaded("DeepID").forward(np.zeros((1, 47, 55, 3), np.float32))


def test_concurrent_first_calls_build_once(synthetic_weights, parity_dir: Path, tmp_path: Path) -> None:
    cls = _plugin_class("DeepID")
    ref = np.load(parity_npz("DeepID"))
    # A weight file of its own: networks are shared per (class, file, device), and an earlier test
    # may already have built DeepID from the cached synthetic file.
    own_copy = tmp_path / "deepid.h5"
    shutil.copyfile(synthetic_weights("DeepID"), own_copy)
    plugin = cls(cls.config_class(weights_path=own_copy))
    builds = []
    original = plugin.build_model

    def counting_build() -> Any:
        builds.append(1)
        return original()

    plugin.build_model = counting_build  # type: ignore[method-assign]
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(plugin.forward(ref["inputs"]))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, ref["outputs"], **_tolerance(ref["outputs"]))


# --------------------------------------------------------------------------------------------
# embed() on real crops
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(MODELS))
def test_embed_real_crops(name: str, loaded, crops: list[np.ndarray]) -> None:
    plugin = loaded(name)
    dim = MODELS[name][2]
    emb = plugin.embed(crops)
    assert emb.shape == (len(crops), dim) and emb.dtype == np.float32
    assert np.isfinite(emb).all()
    # deterministic, and a face's embedding does not depend on its batch neighbours
    np.testing.assert_array_equal(plugin.embed(crops), emb)
    alone = plugin.embed(crops[1:2])
    np.testing.assert_allclose(alone[0], emb[1], rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(emb).max())))
    # different faces give different embeddings
    assert np.abs(emb[0] - emb[1]).max() > 100 * 1e-4 * max(1.0, float(np.abs(emb).max()))
    assert plugin.embed([]).shape == (0, dim)
    if name == "OpenFace":
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
