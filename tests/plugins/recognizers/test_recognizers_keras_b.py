"""VGG-Face, DeepFace (Facebook) and GhostFaceNet recognizers, and the Keras 3 LocallyConnected2D.

* ``LocallyConnected2D`` against a plain numpy loop (Keras 2's weight layout).
* Each model's weighted layers against deepface's weights manifest (what the positional loader
  needs), including the VGG base shared with Age / Gender / Race.
* Parity: synthetic deepface-format weights loaded through each plugin's normal path, deepface's
  preprocessed inputs in, deepface's outputs expected (parity/README.md tolerance).

Runs on any Keras 3 backend (``KERAS_BACKEND=torch`` too).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.paths import MANIFESTS, REFERENCE, parity_npz
keras = need("keras")
need("h5py")

from facepipe.engines.keras_h5 import layer_signature  # noqa: E402
from facepipe.engines.keras_layers import LocallyConnected2D, hard_sigmoid_keras2  # noqa: E402
from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.engines import vgg_face as _vgg_base  # noqa: E402
from facepipe.plugins.recognizers import deepface_fb, ghostfacenet, vggface  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402


# deepface's published thresholds (fact sheet §6.1), shared with tests/pipeline/test_thresholds.py
DEEPFACE_THRESHOLDS = json.loads((REFERENCE / "deepface-decision.json").read_text(encoding="utf-8"))["thresholds"]


# ------------------------------------------------------------------------------------- helpers
def manifest(model: str) -> dict:
    return json.loads((MANIFESTS / f"{model}.json").read_text())


def manifest_signature(model: str) -> list[tuple[str, list[list[int]]]]:
    return [(entry[0], entry[2]) for entry in manifest(model)["load_target"]["layers"]]


def manager_holding(home: Path, weights_file: Path) -> WeightsManager:
    """An offline weights manager whose cache (``<home>/weights``) holds ``weights_file``."""
    cache = home / "weights"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / weights_file.name
    if not link.exists():
        link.symlink_to(weights_file)
    return WeightsManager(home=home, offline=True)


def reference(parity_dir: Path, model: str) -> dict[str, np.ndarray]:
    with np.load(parity_npz(model)) as data:
        return {k: data[k] for k in data.files}


def assert_parity(out: np.ndarray, ref: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * scale)


def to_numpy(x) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(keras.ops.convert_to_numpy(x))


def free(recognizer) -> None:  # type: ignore[no-untyped-def]
    recognizer.close()
    keras.backend.clear_session()
    gc.collect()


# ---------------------------------------------------------------------------- LocallyConnected2D
def local_conv_loop(x, kernel, bias, kernel_size, strides):  # type: ignore[no-untyped-def]
    """Keras 2's locally connected convolution as a direct loop over output positions."""
    n, height, width, _ = x.shape
    kh, kw = kernel_size
    sh, sw = strides
    oh, ow = (height - kh) // sh + 1, (width - kw) // sw + 1
    out = np.zeros((n, oh, ow, kernel.shape[-1]))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :].astype(np.float64)
            out[:, i, j, :] = window.reshape(n, -1) @ kernel[i * ow + j].astype(np.float64)
    if bias is not None:
        out += bias[None].astype(np.float64)
    return out


@pytest.mark.parametrize(
    "shape, filters, kernel_size, strides, use_bias, activation",
    [
        ((2, 6, 7, 3), 4, (3, 3), (1, 1), True, None),
        ((3, 9, 8, 2), 5, (3, 2), (2, 1), True, "relu"),
        ((1, 11, 11, 4), 3, (5, 5), (2, 2), False, None),
        ((2, 5, 5, 1), 2, (5, 5), (1, 1), True, None),  # one output position
    ],
)
def test_locally_connected_matches_numpy_loop(shape, filters, kernel_size, strides, use_bias, activation):
    rng = np.random.default_rng(sum(shape) + filters)
    x = rng.normal(size=shape).astype(np.float32)
    layer = LocallyConnected2D(filters, kernel_size, strides=strides, use_bias=use_bias, activation=activation)
    layer.build(x.shape)
    oh = (shape[1] - kernel_size[0]) // strides[0] + 1
    ow = (shape[2] - kernel_size[1]) // strides[1] + 1
    # Keras 2's layout: kernel (positions, kh*kw*C, filters), bias (oh, ow, filters)
    assert tuple(layer.kernel.shape) == (oh * ow, kernel_size[0] * kernel_size[1] * shape[3], filters)
    kernel = rng.normal(size=tuple(layer.kernel.shape)).astype(np.float32)
    weights = [kernel]
    bias = None
    if use_bias:
        assert tuple(layer.bias.shape) == (oh, ow, filters)
        bias = rng.normal(size=(oh, ow, filters)).astype(np.float32)
        weights.append(bias)
    layer.set_weights(weights)

    out = to_numpy(layer(x))
    expected = local_conv_loop(x, kernel, bias, kernel_size, strides)
    if activation == "relu":
        expected = np.maximum(expected, 0)
    assert out.shape == expected.shape == (shape[0], oh, ow, filters)
    assert tuple(layer.compute_output_shape(shape)) == out.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_locally_connected_in_a_model_and_config_round_trip():
    inputs = keras.Input((8, 8, 2))
    layer = LocallyConnected2D(3, 3, strides=2, activation="relu", name="lc")
    model = keras.Model(inputs, layer(inputs))
    assert model.output_shape == (None, 3, 3, 3)
    clone = LocallyConnected2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides) == (3, (3, 3), (2, 2))
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 2)).astype(np.float32)
    np.testing.assert_allclose(to_numpy(model(x)), to_numpy(layer(x)), rtol=1e-6)


def test_locally_connected_rejects_bad_arguments():
    with pytest.raises(ValueError, match="valid"):
        LocallyConnected2D(2, 3, padding="same")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        LocallyConnected2D(2, 5).build((None, 3, 3, 1))


def test_hard_sigmoid_keras2():
    x = np.linspace(-4, 4, 33).astype(np.float32)
    np.testing.assert_allclose(to_numpy(hard_sigmoid_keras2(x)), np.clip(0.2 * x + 0.5, 0, 1), atol=1e-7)


# ------------------------------------------------------------------------- layer signatures
def test_deepface_fb_layer_signature():
    model = deepface_fb.build_deepface_classifier()
    assert layer_signature(model) == manifest_signature("DeepFace")
    assert model.output_shape == (None, 8631)
    assert deepface_fb.deepface_embedding_model(model).output_shape == (None, 4096)


def test_ghostfacenet_layer_signature():
    model = ghostfacenet.build_ghostfacenet()
    assert layer_signature(model) == manifest_signature("GhostFaceNet")
    assert model.output_shape == (None, 512)
    assert model.count_params() == manifest("GhostFaceNet")["load_target"]["total_params"]


@pytest.mark.parametrize("model_name, classes", [("VGG-Face", 2622), ("Age", 101), ("Gender", 2), ("Race", 6)])
def test_vgg_base_layer_signature(model_name, classes):
    model = _vgg_base.build_vgg_face_classifier(classes)
    assert layer_signature(model) == manifest_signature(model_name)
    assert model.output_shape == (None, classes)
    if model_name == "VGG-Face":
        descriptor = _vgg_base.vgg_face_descriptor(model)
        assert descriptor.output_shape == (None, 4096)
        assert descriptor.count_params() == manifest("VGG-Face")["inference_model"]["total_params"]
        trunk = _vgg_base.build_vgg_face_trunk()
        assert trunk.output_shape == (None, 1, 1, 4096)
        assert layer_signature(trunk) == manifest_signature("VGG-Face")[:15]
    del model
    keras.backend.clear_session()
    gc.collect()


# ------------------------------------------------------------------------------ registration
def test_registration_specs():
    registry = PluginRegistry(autoload=False)
    for module in (vggface, deepface_fb, ghostfacenet):
        registry.register_module(module)
    cases = {
        "VGG-Face": (vggface.VGG_FACE_WEIGHTS, (224, 224), 4096),
        "DeepFace": (deepface_fb.DEEPFACE_WEIGHTS, (152, 152), 4096),
        "GhostFaceNet": (ghostfacenet.GHOSTFACENET_WEIGHTS, (112, 112), 512),
    }
    for name, (weight_file, size, dims) in cases.items():
        spec = registry.get("recognizer", name)
        assert spec.name == name and spec.extra == "keras"
        assert set(spec.requires) >= {"keras", "h5py"}
        assert spec.weights == (weight_file,)
        assert weight_file.name == manifest(name)["weights_file"] == weight_file.deepface_name
        cls = registry.load_factory(spec)
        assert cls.input_size == size and cls.embedding_size == dims
        assert cls.thresholds == pytest.approx(DEEPFACE_THRESHOLDS[name])
    assert deepface_fb.DEEPFACE_WEIGHTS.compression == "zip"
    assert deepface_fb.DEEPFACE_WEIGHTS.urls[0].endswith(".h5.zip")
    assert registry.get("recognizer", "vggface").name == "VGG-Face"


def test_plugin_modules_import_no_ml_runtime():
    code = (
        "import sys\n"
        "import facepipe.plugins.recognizers.vggface, facepipe.plugins.recognizers.deepface_fb\n"
        "import facepipe.plugins.recognizers.ghostfacenet, facepipe.engines.vgg_face\n"
        "bad = [m for m in ('keras', 'tensorflow', 'torch', 'cv2', 'h5py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- loading errors
def test_missing_weights_offline(tmp_path):
    rec = ghostfacenet.GhostFaceNetRecognizer(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(OfflineError, match="ghostfacenet_v1.h5"):
        rec.embed([np.zeros((112, 112, 3), np.uint8)])


def test_wrong_weights_file_is_rejected(tmp_path):
    import h5py

    bogus = tmp_path / "weights" / "ghostfacenet_v1.h5"
    bogus.parent.mkdir()
    with h5py.File(bogus, "w") as f:  # a Keras 2 layout with a single conv layer
        f.attrs["layer_names"] = [b"conv2d"]
        group = f.create_group("conv2d")
        group.attrs["weight_names"] = [b"conv2d/kernel:0"]
        group.create_dataset("conv2d/kernel:0", data=np.zeros((3, 3, 3, 20), np.float32))
    rec = ghostfacenet.GhostFaceNetRecognizer(weights=WeightsManager(home=tmp_path, offline=True))
    with pytest.raises(WeightsError, match="1 weighted layers but the model has 219"):
        rec.forward(np.zeros((1, 112, 112, 3), np.float32))


# ----------------------------------------------------------------------------------- parity
@pytest.fixture(scope="module")
def ghost(synthetic_weights, tmp_path_factory):
    """One GhostFaceNet recognizer (not yet built) whose weights manager holds the synthetic file."""
    home = tmp_path_factory.mktemp("ghost_home")
    rec = ghostfacenet.GhostFaceNetRecognizer(weights=manager_holding(home, synthetic_weights("GhostFaceNet")))
    yield rec
    free(rec)


def test_ghostfacenet_embeds_photos_concurrently(ghost, dataset):
    import cv2

    from facepipe.engines.keras_runner import keras_predict

    faces = [cv2.imread(str(dataset / name)) for name in ("img1.jpg", "img3.jpg", "img14.jpg")]
    faces = [f[f.shape[0] // 4: 3 * f.shape[0] // 4, f.shape[1] // 4: 3 * f.shape[1] // 4] for f in faces]
    builds: list[int] = []
    build = ghost.build_model
    ghost.build_model = lambda: (builds.append(1), build())[1]  # count builds
    results: list[np.ndarray] = []
    # the first calls race to build the model: it must be built once and give the same numbers
    threads = [threading.Thread(target=lambda: results.append(ghost.embed(faces))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and builds == [1]
    first = results[0]
    assert first.shape == (3, 512) and first.dtype == np.float32 and np.isfinite(first).all()
    for other in results[1:]:
        np.testing.assert_allclose(other, first, rtol=1e-5, atol=1e-5)
    assert np.abs(first[0] - first[1]).max() > 1e-2  # different faces, different vectors
    # embed() = forward(preprocess()); chunking (2 faces per call) does not change the numbers
    batch = ghost.preprocess(faces)
    np.testing.assert_allclose(ghost.forward(batch), first, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras_predict(ghost.model, batch, batch_size=2), first, rtol=1e-5, atol=1e-5)


def test_ghostfacenet_parity(ghost, parity_dir):
    ref = reference(parity_dir, "GhostFaceNet")
    single = np.concatenate([ghost.forward(x[None]) for x in ref["inputs"]])
    assert single.dtype == np.float32 and single.shape == (3, 512)
    assert_parity(single, ref["outputs"])
    assert_parity(ghost.forward(ref["inputs"]), ref["outputs_batch"])
    assert_parity(single, ref["deepface_forward"])


@pytest.mark.slow
def test_deepface_fb_parity(synthetic_weights, parity_dir, tmp_path):
    ref = reference(parity_dir, "DeepFace")
    weights = synthetic_weights("DeepFace")
    rec = deepface_fb.DeepFaceRecognizer(weights=manager_holding(tmp_path, weights))
    single = np.concatenate([rec.forward(x[None]) for x in ref["inputs"]])
    assert single.shape == (3, 4096) and single.dtype == np.float32
    assert_parity(single, ref["outputs"])
    assert_parity(rec.forward(ref["inputs"]), ref["outputs_batch"])
    assert_parity(single, ref["deepface_forward"])
    free(rec)


@pytest.mark.slow
def test_vggface_parity(synthetic_weights, parity_dir):
    ref = reference(parity_dir, "VGG-Face")
    weights = synthetic_weights("VGG-Face")
    rec = vggface.VGGFaceRecognizer(vggface.VGGFaceConfig(weights_path=weights))
    # the network's fc7 output (before deepface's L2 normalisation)
    raw = np.concatenate([rec.keras_forward(x[None]) for x in ref["inputs"]])
    assert raw.shape == (3, 4096)
    assert_parity(raw, ref["outputs"])
    # the plugin's forward = deepface's VGG-Face forward (L2-normalised)
    out = rec.forward(ref["inputs"])
    assert out.dtype == np.float32
    assert_parity(out, ref["deepface_forward"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    free(rec)


def test_vggface_l2_normalisation_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(vggface.l2_normalize_rows(x), [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)
