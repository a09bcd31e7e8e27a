"""The ``DeepID`` recognizer: DeepID (Sun et al. 2014), 55 (H) x 47 (W) input, 160-d.

Three conv + max-pool stages, then two 160-unit fully connected branches - one from the third
pooling output, one from a fourth 2x2 convolution - added and passed through a ReLU.  Weights:
deepface's ``deepid_keras_weights.h5``, loaded by position.

Note the input is taller than wide: deepface stores ``(47, 55)`` as (width, height) and
resizes to 55 rows x 47 columns; :attr:`input_size` is (height, width) = (55, 47).
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

DEEPID_WEIGHTS = WeightFile(
    name="deepid_keras_weights.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/deepid_keras_weights.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/deepid_keras_weights.h5",
    ),
    sha256=None,
    deepface_name="deepid_keras_weights.h5",
    description="DeepID, 160-d (deepface's Keras 2 HDF5 weights, ~1.6 MB)",
)


def build_deepid() -> Any:
    """DeepID as a Keras 3 functional model: (55, 47, 3) -> 160 (6 weighted layers)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(55, 47, 3), name="input")
    x = inputs
    for i, (filters, kernel) in enumerate(((20, 4), (40, 3), (60, 3)), start=1):
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"Conv{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"Pool{i}")(x)
        x = layers.Dropout(0.99, name=f"D{i}")(x)  # training-only
    # branch 1: the third pooling stage, flattened (5*4*60 = 1200)
    fc11 = layers.Dense(160, name="fc11")(layers.Flatten(name="flatten_pool3")(x))
    # branch 2: one more convolution (4*3*80 = 960); one layer deeper, so Conv4 loads before fc11
    x2 = layers.Conv2D(80, 2, activation="relu", name="Conv4")(x)
    fc12 = layers.Dense(160, name="fc12")(layers.Flatten(name="flatten_conv4")(x2))
    y = layers.Add(name="add")([fc11, fc12])
    y = layers.Activation("relu", name="deepid")(y)
    return keras.Model(inputs, y, name="deepid")


#: deepface's published thresholds, confidence model and value range for DeepID
PUBLISHED = deepface_published("DeepID")


class DeepIDConfig(KerasRecognizerConfig):
    """Options of the DeepID recognizer (see :class:`KerasRecognizerConfig`)."""


class DeepIDRecognizer(KerasRecognizer):
    """DeepID: BGR crops -> 160-d embeddings (ReLU output, non-negative)."""

    config_class = DeepIDConfig
    weight_file = DEEPID_WEIGHTS
    manifest_name = "DeepID"
    input_size = (55, 47)
    embedding_size = 160
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        return build_deepid()


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        DeepIDRecognizer,
        name="DeepID",
        aliases=("deepid",),
        description="DeepID, 55x47 -> 160-d, Keras 3",
        license="MIT",
        published=PUBLISHED,
    ))
