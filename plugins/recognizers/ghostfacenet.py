"""The ``GhostFaceNet`` recognizer: GhostFaceNetV1 (width 1.3, stride 1, ArcFace-trained), 512-d.

Architecture (Alansari et al. 2023, GhostFaceNets): a 3x3 stem, sixteen Ghost bottlenecks
(cheap "ghost" feature maps: a 1x1 convolution whose output is concatenated with a depthwise
convolution of itself; optional squeeze-and-excitation; a depthwise-conv + 1x1 projection
shortcut where the shape changes), a 1x1 convolution to 664 channels, then the "GDC" head: a
7x7 depthwise convolution, BatchNorm, 1x1 convolution to 512 and BatchNorm.  Every ReLU is a
PReLU with one slope per channel, as in deepface's model.

deepface's ``.h5`` file is loaded by position into the Keras 3 functional model built here.  A
functional model orders its layers by graph depth, ties broken by branch order, so the builder
keeps the branch order of every merge (shortcut before main path, ``inputs * gate`` in SE) and
every non-weighted layer on each path (they count towards depth).
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

GHOSTFACENET_WEIGHTS = WeightFile(
    name="ghostfacenet_v1.h5",
    urls=("https://github.com/HamadYA/GhostFaceNets/releases/download/v1.2/GhostFaceNet_W1.3_S1_ArcFace.h5",),
    sha256=None,
    deepface_name="ghostfacenet_v1.h5",
    description="GhostFaceNetV1 W1.3 S1 (ArcFace loss), Keras 2 HDF5 weights, ~16.5 MB",
)

INPUT_SIZE = (112, 112)
EMBEDDING_SIZE = 512
_STEM_CHANNELS = 20
_HEAD_CHANNELS = 664
_BN_EPSILON = 1e-3  # Keras' default, which the published model uses everywhere

#: the bottlenecks: (depthwise kernel, stride, expanded channels, output channels, SE channels)
#: (SE channels 0 = no squeeze-and-excitation)
BOTTLENECKS: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 20, 20, 0),
    (3, 2, 64, 32, 0),
    (3, 1, 92, 32, 0),
    (5, 2, 92, 52, 24),
    (5, 1, 156, 52, 40),
    (3, 2, 312, 104, 0),
    (3, 1, 260, 104, 0),
    (3, 1, 240, 104, 0),
    (3, 1, 240, 104, 0),
    (3, 1, 624, 144, 156),
    (3, 1, 872, 144, 220),
    (5, 2, 872, 208, 220),
    (5, 1, 1248, 208, 0),
    (5, 1, 1248, 208, 312),
    (5, 1, 1248, 208, 0),
    (5, 1, 664, 208, 168),
)


def _bn(x: Any) -> Any:
    from keras import layers

    return layers.BatchNormalization(axis=-1, epsilon=_BN_EPSILON)(x)


def _prelu(x: Any) -> Any:
    from keras import layers

    return layers.PReLU(shared_axes=[1, 2])(x)


def _ghost_module(x: Any, channels: int, activation: bool) -> Any:
    """Half the channels from a 1x1 conv, the other half from a 3x3 depthwise conv of those."""
    from keras import layers

    primary = layers.Conv2D(channels // 2, 1, padding="same", use_bias=False)(x)
    primary = _bn(primary)
    if activation:
        primary = _prelu(primary)
    cheap = layers.DepthwiseConv2D(3, strides=1, padding="same", use_bias=False)(primary)
    cheap = _bn(cheap)
    if activation:
        cheap = _prelu(cheap)
    return layers.Concatenate(axis=-1)([primary, cheap])


def _squeeze_excite(x: Any, reduced: int) -> Any:
    """Channel gate: global pool -> 1x1 conv (PReLU) -> 1x1 conv -> Keras 2 hard sigmoid."""
    from keras import layers

    from facepipe.engines.keras_layers import hard_sigmoid_keras2

    channels = int(x.shape[-1])
    gate = layers.GlobalAveragePooling2D()(x)
    gate = layers.Reshape((1, 1, channels))(gate)
    gate = layers.Conv2D(reduced, 1, use_bias=True, padding="valid")(gate)
    gate = _prelu(gate)
    gate = layers.Conv2D(channels, 1, use_bias=True, padding="valid")(gate)
    # deepface's model was built with Keras 2, whose hard_sigmoid is clip(0.2x + 0.5, 0, 1).
    gate = layers.Activation(hard_sigmoid_keras2)(gate)
    return layers.Multiply()([x, gate])


def _bottleneck(x: Any, kernel: int, stride: int, expanded: int, out: int, se: int, shortcut: bool) -> Any:
    from keras import layers

    y = _ghost_module(x, expanded, activation=True)
    if stride > 1:
        y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False)(y)
        y = _bn(y)
    if se > 0:
        y = _squeeze_excite(y, se)
    y = _ghost_module(y, out, activation=False)
    if shortcut:
        s = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False)(x)
        s = _bn(s)
        s = layers.Conv2D(out, 1, padding="valid", use_bias=False)(s)
        s = _bn(s)
    else:
        s = x
    return layers.Add()([s, y])


def build_ghostfacenet(input_shape: tuple[int, int, int] = (*INPUT_SIZE, 3)) -> Any:
    """GhostFaceNetV1 as a Keras 3 model: ``(N, 112, 112, 3)`` -> ``(N, 512)``.

    Weighted layers are in the order of deepface's ``ghostfacenet_v1.h5`` (219 layers).
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(_STEM_CHANNELS, 3, strides=1, padding="same", use_bias=False)(inputs)
    x = _bn(x)
    x = _prelu(x)
    channels = _STEM_CHANNELS
    for kernel, stride, expanded, out, se in BOTTLENECKS:
        shortcut = not (out == channels and stride == 1)
        x = _bottleneck(x, kernel, stride, expanded, out, se, shortcut)
        channels = out
    x = layers.Conv2D(_HEAD_CHANNELS, 1, strides=1, padding="valid", use_bias=False)(x)
    x = _bn(x)
    x = _prelu(x)
    # GDC head: a depthwise conv over the whole 7x7 map, then a linear 1x1 to the embedding.
    x = layers.DepthwiseConv2D(int(x.shape[1]), use_bias=False, name="GDC_dw")(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name="GDC_batchnorm")(x)
    x = layers.Conv2D(EMBEDDING_SIZE, 1, use_bias=True, name="GDC_conv")(x)
    x = layers.Flatten(name="GDC_flatten")(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, scale=True, name="pre_embedding")(x)
    outputs = layers.Activation("linear", dtype="float32", name="embedding")(x)
    return keras.Model(inputs, outputs, name="GhostFaceNetV1")


#: deepface's published thresholds, confidence model and value range for GhostFaceNet
PUBLISHED = deepface_published("GhostFaceNet")


class GhostFaceNetConfig(KerasRecognizerConfig):
    """Options of the GhostFaceNet recognizer (normalization, batch_size, weights_path, device)."""


class GhostFaceNetRecognizer(KerasRecognizer):
    """GhostFaceNetV1 on 112x112 BGR faces in [0, 1]; raw 512-d embeddings (not normalised)."""

    config_class = GhostFaceNetConfig
    weight_file = GHOSTFACENET_WEIGHTS
    manifest_name = "GhostFaceNet"
    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        return build_ghostfacenet()


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        GhostFaceNetRecognizer,
        name="GhostFaceNet",
        aliases=("ghostfacenet", "ghostfacenetv1"),
        description="GhostFaceNetV1 (W1.3, S1, ArcFace), Keras 3, 112x112 input, 512-d embeddings",
        license="MIT (GhostFaceNets code and weights)",
        published=PUBLISHED,
    ))
