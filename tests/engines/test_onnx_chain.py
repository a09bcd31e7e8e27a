"""The direct Keras-chain -> ONNX writer: same outputs as Keras, and a clean refusal otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
keras = need("keras")
ort = need("onnxruntime")
need("onnx")

from facepipe.engines.onnx_chain import export_chain_onnx  # noqa: E402


def _randomize(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.standard_normal(variable.shape).astype(np.float32) * 0.2)


def _same_outputs(model, path: Path, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    want = keras.ops.convert_to_numpy(model(x))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_every_supported_layer_kind(tmp_path: Path) -> None:
    L = keras.layers
    model = keras.Sequential([
        keras.Input((23, 19, 2)),
        L.Conv2D(5, 3, padding="same", activation="relu"),        # 'same': odd padding after
        L.Conv2D(4, (4, 2), padding="same"),                      # even kernel: uneven padding
        L.Conv2D(6, 3, strides=2, activation="tanh"),
        L.MaxPooling2D(2, strides=2),
        L.AveragePooling2D(pool_size=(2, 1), strides=(1, 1)),
        L.Activation("sigmoid"),
        L.Flatten(),                                              # (H, W, C) order kept
        L.Dense(7, activation="relu"),
        L.Dropout(0.5),
        L.Dense(3, use_bias=False),
        L.Softmax(),
    ])
    _randomize(model)
    path = tmp_path / "m.onnx"
    assert export_chain_onnx(model, path)
    _same_outputs(model, path, (3, 23, 19, 2))
    import onnx

    # the oldest IR version carrying opset 13, whatever onnx is installed: older onnxruntimes load it
    assert onnx.load(str(path)).ir_version == 7


def test_functional_chain_and_vgg_descriptor_cut(tmp_path: Path) -> None:
    from facepipe.engines.vgg_face import vgg_face_descriptor

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, strides=2)(x)
    x = keras.layers.Conv2D(16, 16, activation="relu", name="fc7")(x)  # -> 1x1, like VGG's fc7
    x = keras.layers.Conv2D(5, 1, name="head")(x)
    classifier = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Flatten()(x)))
    _randomize(classifier, 2)
    path = tmp_path / "classifier.onnx"
    assert export_chain_onnx(classifier, path)
    _same_outputs(classifier, path, (2, 32, 32, 3))
    descriptor = vgg_face_descriptor(classifier)  # a sub-model ending at fc7, sharing weights
    assert export_chain_onnx(descriptor, tmp_path / "descriptor.onnx")
    _same_outputs(descriptor, tmp_path / "descriptor.onnx", (2, 32, 32, 3))


@pytest.mark.parametrize("kind", ["branch", "batchnorm", "strided same", "softmax on a map"])
def test_anything_else_is_refused_and_nothing_is_written(kind: str, tmp_path: Path) -> None:
    L = keras.layers
    inputs = keras.Input((16, 16, 3))
    if kind == "branch":
        a = L.Conv2D(4, 3, padding="same")(inputs)
        out = L.Flatten()(L.Add()([a, L.Conv2D(4, 1)(inputs)]))
    elif kind == "batchnorm":
        out = L.Flatten()(L.BatchNormalization()(L.Conv2D(4, 3)(inputs)))
    elif kind == "strided same":
        out = L.Flatten()(L.Conv2D(4, 3, strides=2, padding="same")(inputs))
    else:
        out = L.Flatten()(L.Softmax()(L.Conv2D(4, 3)(inputs)))
    path = tmp_path / "m.onnx"
    assert not export_chain_onnx(keras.Model(inputs, out), path)
    assert not path.exists()
