"""The ``OpenFace`` recognizer: OpenFace nn4.small2 (Amos et al. 2016), 96x96 input, 128-d.

A small GoogLeNet-style network: 7x7 stem with local response normalisation, inception blocks
3a, 3b, 3c, 4a, 4e, 5a, 5b (1x1 / 3x3 / 5x5 / pooling branches; some pooling branches are L2
pools, i.e. the root of the summed squares over 3x3 windows), 3x3 average pool, Dense(128) and
an L2 normalisation inside the graph, so embeddings have unit length.  Weights: deepface's
``openface_weights.h5``, loaded by position.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

OPENFACE_WEIGHTS = WeightFile(
    name="openface_weights.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/openface_weights.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/openface_weights.h5",
    ),
    sha256=None,
    deepface_name="openface_weights.h5",
    description="OpenFace nn4.small2, 128-d (deepface's Keras 2 HDF5 weights, ~15 MB)",
)

_BN_EPS = 1e-5


@functools.lru_cache(maxsize=None)
def _custom_layers() -> SimpleNamespace:
    """The weight-free custom layers (defined on first use: keras is imported lazily)."""
    import keras
    import numpy as np
    from keras import ops

    class LocalResponseNorm(keras.layers.Layer):
        """Across-channel LRN: x / (bias + alpha * sum of x^2 over 2r+1 channels) ** beta.

        Same definition as TensorFlow's ``tf.nn.lrn`` (alpha not divided by the window size).
        """

        def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1e-4,
                     beta: float = 0.75, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

        def build(self, input_shape: Any) -> None:
            channels = int(input_shape[-1])
            idx = np.arange(channels)
            # band matrix: sum over neighbouring channels as one matmul (no weights)
            self._band = (np.abs(idx[:, None] - idx[None, :]) <= self.depth_radius).astype("float32")

        def call(self, x: Any) -> Any:
            sq_sum = ops.matmul(ops.square(x), ops.convert_to_tensor(self._band, dtype=x.dtype))
            return x / ops.power(self.bias + self.alpha * sq_sum, self.beta)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "depth_radius": self.depth_radius, "bias": self.bias,
                    "alpha": self.alpha, "beta": self.beta}

    class L2Pool(keras.layers.Layer):
        """sqrt(sum of x^2 over non-overlapping 3x3 windows), computed as 9 * mean."""

        def call(self, x: Any) -> Any:
            mean_sq = ops.average_pool(ops.square(x), pool_size=3, strides=3, padding="valid")
            return ops.sqrt(mean_sq * 9.0)

    class L2Normalize(keras.layers.Layer):
        """x / max(||x||, 1e-6) along the last axis (TensorFlow's l2_normalize)."""

        def call(self, x: Any) -> Any:
            sq = ops.sum(ops.square(x), axis=-1, keepdims=True)
            return x * ops.rsqrt(ops.maximum(sq, 1e-12))

    return SimpleNamespace(LocalResponseNorm=LocalResponseNorm, L2Pool=L2Pool, L2Normalize=L2Normalize)


def _conv_bn(x: Any, name: str, filters: int, kernel: int, strides: int = 1, *,
             suffix: str = "", pad: Any = None) -> Any:
    """Conv (with bias) -> BN -> ReLU, then an optional zero padding."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=strides, name=f"{name}_conv{suffix}")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPS, name=f"{name}_bn{suffix}")(x)
    x = layers.Activation("relu", name=f"{name}_relu{suffix}")(x)
    if pad is not None:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad{suffix}")(x)
    return x


def _reduce_conv(x: Any, name: str, reduce: int, filters: int, kernel: int, strides: int = 1) -> Any:
    """1x1 reduction -> padded kxk convolution (the 3x3 / 5x5 branches)."""
    x = _conv_bn(x, name, reduce, 1, suffix="1", pad=kernel // 2)
    return _conv_bn(x, name, filters, kernel, strides, suffix="2")


def build_openface() -> Any:
    """OpenFace nn4.small2 as a Keras 3 functional model: (96, 96, 3) -> 128, unit length
    (75 weighted layers, in the order of deepface's ``openface_weights.h5``)."""
    import keras
    from keras import layers

    custom = _custom_layers()
    inputs = keras.Input(shape=(96, 96, 3), name="input")

    # stem: 96 -> 12
    x = layers.ZeroPadding2D(3, name="stem_pad1")(inputs)
    x = layers.Conv2D(64, 7, strides=2, name="conv1")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPS, name="bn1")(x)
    x = layers.Activation("relu", name="relu1")(x)
    x = layers.ZeroPadding2D(1, name="stem_pad2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = custom.LocalResponseNorm(name="lrn_1")(x)
    x = layers.Conv2D(64, 1, name="conv2")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPS, name="bn2")(x)
    x = layers.Activation("relu", name="relu2")(x)
    x = layers.ZeroPadding2D(1, name="stem_pad3")(x)
    x = layers.Conv2D(192, 3, name="conv3")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_BN_EPS, name="bn3")(x)
    x = layers.Activation("relu", name="relu3")(x)
    x = custom.LocalResponseNorm(name="lrn_2")(x)
    x = layers.ZeroPadding2D(1, name="stem_pad4")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)

    def concat(name: str, branches: list[Any]) -> Any:
        return layers.Concatenate(axis=3, name=name)(branches)

    # 3a (12x12, 256)
    x = concat("inception_3a", [
        _reduce_conv(x, "inception_3a_3x3", 96, 128, 3),
        _reduce_conv(x, "inception_3a_5x5", 16, 32, 5),
        _conv_bn(layers.MaxPooling2D(3, strides=2, name="inception_3a_maxpool")(x),
                 "inception_3a_pool", 32, 1, pad=((3, 4), (3, 4))),
        _conv_bn(x, "inception_3a_1x1", 64, 1),
    ])
    # 3b (12x12, 320)
    x = concat("inception_3b", [
        _reduce_conv(x, "inception_3b_3x3", 96, 128, 3),
        _reduce_conv(x, "inception_3b_5x5", 32, 64, 5),
        _conv_bn(custom.L2Pool(name="inception_3b_l2pool")(x), "inception_3b_pool", 64, 1, pad=4),
        _conv_bn(x, "inception_3b_1x1", 64, 1),
    ])
    # 3c (6x6, 640)
    x = concat("inception_3c", [
        _reduce_conv(x, "inception_3c_3x3", 128, 256, 3, strides=2),
        _reduce_conv(x, "inception_3c_5x5", 32, 64, 5, strides=2),
        layers.ZeroPadding2D(((0, 1), (0, 1)), name="inception_3c_pool_pad")(
            layers.MaxPooling2D(3, strides=2, name="inception_3c_maxpool")(x)),
    ])
    # 4a (6x6, 640)
    x = concat("inception_4a", [
        _reduce_conv(x, "inception_4a_3x3", 96, 192, 3),
        _reduce_conv(x, "inception_4a_5x5", 32, 64, 5),
        _conv_bn(custom.L2Pool(name="inception_4a_l2pool")(x), "inception_4a_pool", 128, 1, pad=2),
        _conv_bn(x, "inception_4a_1x1", 256, 1),
    ])
    # 4e (3x3, 1024)
    x = concat("inception_4e", [
        _reduce_conv(x, "inception_4e_3x3", 160, 256, 3, strides=2),
        _reduce_conv(x, "inception_4e_5x5", 64, 128, 5, strides=2),
        layers.ZeroPadding2D(((0, 1), (0, 1)), name="inception_4e_pool_pad")(
            layers.MaxPooling2D(3, strides=2, name="inception_4e_maxpool")(x)),
    ])
    # 5a (3x3, 736)
    x = concat("inception_5a", [
        _reduce_conv(x, "inception_5a_3x3", 96, 384, 3),
        _conv_bn(custom.L2Pool(name="inception_5a_l2pool")(x), "inception_5a_pool", 96, 1, pad=1),
        _conv_bn(x, "inception_5a_1x1", 256, 1),
    ])
    # 5b (3x3, 736)
    x = concat("inception_5b", [
        _reduce_conv(x, "inception_5b_3x3", 96, 384, 3),
        _conv_bn(layers.MaxPooling2D(3, strides=2, name="inception_5b_maxpool")(x),
                 "inception_5b_pool", 96, 1, pad=1),
        _conv_bn(x, "inception_5b_1x1", 256, 1),
    ])
    x = layers.AveragePooling2D(3, strides=1, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, name="dense_layer")(x)
    x = custom.L2Normalize(name="norm_layer")(x)
    return keras.Model(inputs, x, name="openface")


#: deepface's published thresholds, confidence model and value range for OpenFace
PUBLISHED = deepface_published("OpenFace")


class OpenFaceConfig(KerasRecognizerConfig):
    """Options of the OpenFace recognizer (see :class:`KerasRecognizerConfig`)."""


class OpenFaceRecognizer(KerasRecognizer):
    """OpenFace nn4.small2: BGR crops -> unit-length 128-d embeddings."""

    config_class = OpenFaceConfig
    weight_file = OPENFACE_WEIGHTS
    manifest_name = "OpenFace"
    input_size = (96, 96)
    embedding_size = 128
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        return build_openface()


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        OpenFaceRecognizer,
        name="OpenFace",
        aliases=("openface",),
        description="OpenFace nn4.small2, 96x96 -> 128-d (L2-normalised), Keras 3",
        license="Apache-2.0",
        published=PUBLISHED,
    ))
