"""The ``ArcFace`` recognizer: ResNet-34 (InsightFace style, PReLU), 112x112 input, 512-d.

Backbone: 3x3 stem (stride 1) + BN + PReLU, then four stages of pre-activation-style basic
blocks (BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv (stride on the second) -> BN, added to the
shortcut; a 1x1 conv + BN shortcut opens each stage) with 3, 4, 6, 3 blocks and 64, 128, 256, 512
channels, every stage halving the resolution (112 -> 7).  Head: BN -> Dropout -> Flatten ->
Dense(512) -> BN ("embedding").  All BatchNorms use epsilon 2e-5.  Weights: deepface's
``arcface_weights.h5``, loaded by position.
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

ARCFACE_WEIGHTS = WeightFile(
    name="arcface_weights.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/arcface_weights.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/arcface_weights.h5",
    ),
    sha256=None,
    deepface_name="arcface_weights.h5",
    description="ArcFace ResNet-34, 512-d (deepface's Keras 2 HDF5 weights, ~137 MB)",
)

_BN_EPS = 2e-5
_BN_MOMENTUM = 0.9
#: (channels, blocks) per stage; the first block of every stage has stride 2
STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 4), (256, 6), (512, 3))


def _bn(x: Any, name: str | None = None) -> Any:
    from keras import layers

    return layers.BatchNormalization(axis=-1, momentum=_BN_MOMENTUM, epsilon=_BN_EPS, name=name)(x)


def _basic_block(x: Any, filters: int, stride: int, projection: bool, name: str) -> Any:
    from keras import layers

    if projection:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    y = _bn(x, f"{name}_1_bn")
    y = layers.ZeroPadding2D(1, name=f"{name}_1_pad")(y)
    y = layers.Conv2D(filters, 3, use_bias=False, name=f"{name}_1_conv")(y)
    y = _bn(y, f"{name}_2_bn")
    y = layers.PReLU(shared_axes=[1, 2], name=f"{name}_1_prelu")(y)
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(y)
    y = _bn(y, f"{name}_3_bn")
    # shortcut first: the add's input order decides which branch's layers load first
    return layers.Add(name=f"{name}_add")([shortcut, y])


def build_arcface(embedding_size: int = 512) -> Any:
    """ArcFace ResNet-34 as a Keras 3 functional model: (112, 112, 3) -> 512 (110 weighted layers)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(112, 112, 3), name="input")
    x = layers.ZeroPadding2D(1, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 3, use_bias=False, name="conv1_conv")(x)
    x = _bn(x, "conv1_bn")
    x = layers.PReLU(shared_axes=[1, 2], name="conv1_prelu")(x)
    for stage, (filters, blocks) in enumerate(STAGES, start=2):
        for block in range(1, blocks + 1):
            x = _basic_block(x, filters, stride=2 if block == 1 else 1, projection=block == 1,
                             name=f"conv{stage}_block{block}")
    x = _bn(x, "batch_normalization")
    x = layers.Dropout(0.4, name="dropout")(x)  # training-only
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(embedding_size, use_bias=True, name="dense")(x)
    x = _bn(x, "embedding")
    return keras.Model(inputs, x, name="arcface")


#: deepface's published thresholds, confidence model and value range for ArcFace
PUBLISHED = deepface_published("ArcFace")


class ArcFaceConfig(KerasRecognizerConfig):
    """Options of the ArcFace recognizer (see :class:`KerasRecognizerConfig`).

    deepface feeds 'base' ([0, 1] BGR) by default and tuned its thresholds that way; the
    network was trained with the 'ArcFace' normalisation ((255x - 127.5) / 128).
    """


class ArcFaceRecognizer(KerasRecognizer):
    """ArcFace ResNet-34: BGR crops -> raw 512-d embeddings."""

    config_class = ArcFaceConfig
    weight_file = ARCFACE_WEIGHTS
    manifest_name = "ArcFace"
    input_size = (112, 112)
    embedding_size = 512
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        return build_arcface(self.embedding_size)


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        ArcFaceRecognizer,
        name="ArcFace",
        aliases=("arcface",),
        description="ArcFace (InsightFace ResNet-34), 112x112 -> 512-d, Keras 3",
        license="MIT",
        published=PUBLISHED,
    ))
