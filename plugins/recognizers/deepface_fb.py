"""The ``DeepFace`` recognizer: Facebook's DeepFace network (Taigman et al. 2014), 4096-d.

Layout: a 11x11 convolution, 3x3/2 max-pool, a 9x9 convolution, three *locally connected*
layers (unshared 9x9, 7x7/2 and 5x5 filters), then the F7 fully connected layer (4096, ReLU)
and the F8 identity classifier (8631 VGGFace2 identities, softmax).  deepface's weights (trained
by S. Ghosh on VGGFace2) are loaded into the full classifier; the embedding is F7's output.

Keras 3 has no ``LocallyConnected2D``; :class:`facepipe.engines.keras_layers.LocallyConnected2D`
provides it with Keras 2's weight layout.
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

DEEPFACE_WEIGHTS = WeightFile(
    name="VGGFace2_DeepFace_weights_val-0.9034.h5",
    urls=(
        "https://github.com/swghosh/DeepFace/releases/download/weights-vggface2-2d-aligned/"
        "VGGFace2_DeepFace_weights_val-0.9034.h5.zip",
    ),
    sha256=None,
    compression="zip",
    deepface_name="VGGFace2_DeepFace_weights_val-0.9034.h5",
    description="Facebook DeepFace trained on VGGFace2 by swghosh, Keras 2 HDF5 (zipped download), ~550 MB",
)

INPUT_SIZE = (152, 152)
EMBEDDING_SIZE = 4096
NUM_IDENTITIES = 8631
#: name of the embedding layer (F7) in the classifier built here
EMBEDDING_LAYER = "F7"


def build_deepface_classifier(input_shape: tuple[int, int, int] = (*INPUT_SIZE, 3)) -> Any:
    """The full DeepFace classifier ``(N, 152, 152, 3)`` -> ``(N, 8631)`` softmax.

    Its seven weighted layers (C1, C3, L4, L5, L6, F7, F8) are in the order of deepface's file.
    """
    import keras
    from keras import layers

    from facepipe.engines.keras_layers import LocallyConnected2D

    # Zero-initialised kernels: the weights always come from a file, and random initialisation
    # of 138 M parameters would add seconds to every build.
    init = {"kernel_initializer": "zeros"}
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Conv2D(32, 11, activation="relu", name="C1", **init)(inputs)
    x = layers.MaxPooling2D(pool_size=3, strides=2, padding="same", name="M2")(x)
    x = layers.Conv2D(16, 9, activation="relu", name="C3", **init)(x)
    x = LocallyConnected2D(16, 9, activation="relu", name="L4", **init)(x)
    x = LocallyConnected2D(16, 7, strides=2, activation="relu", name="L5", **init)(x)
    x = LocallyConnected2D(16, 5, activation="relu", name="L6", **init)(x)
    x = layers.Flatten(name="F0")(x)
    x = layers.Dense(4096, activation="relu", name=EMBEDDING_LAYER, **init)(x)
    x = layers.Dropout(0.5, name="D0")(x)
    outputs = layers.Dense(NUM_IDENTITIES, activation="softmax", name="F8", **init)(x)
    return keras.Model(inputs, outputs, name="DeepFace")


def deepface_embedding_model(classifier: Any) -> Any:
    """The model ``input -> F7`` ``(N, 4096)`` sharing ``classifier``'s weights (F8 dropped)."""
    import keras

    return keras.Model(classifier.inputs, classifier.get_layer(EMBEDDING_LAYER).output, name="DeepFace_F7")


#: deepface's published thresholds, confidence model and value range for DeepFace
PUBLISHED = deepface_published("DeepFace")


class DeepFaceConfig(KerasRecognizerConfig):
    """Options of the DeepFace recognizer (normalization, batch_size, weights_path, device)."""


class DeepFaceRecognizer(KerasRecognizer):
    """Facebook DeepFace on 152x152 BGR faces in [0, 1]; F7 (ReLU) output as the embedding."""

    config_class = DeepFaceConfig
    weight_file = DEEPFACE_WEIGHTS
    manifest_name = "DeepFace"
    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        # Built as the classifier (the file holds F8 too), then cut at F7 in load_weights.
        return build_deepface_classifier()

    @property
    def model(self) -> Any:
        """The F7 embedding model (weights loaded into the full classifier first)."""
        embedding = self.__dict__.get("_embedding_model")
        if embedding is None:
            classifier = super().model
            with self._keras_lock:
                embedding = self.__dict__.get("_embedding_model")
                if embedding is None:
                    embedding = deepface_embedding_model(classifier)
                    self._embedding_model = embedding
        return embedding

    def close(self) -> None:
        self._embedding_model = None
        super().close()


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        DeepFaceRecognizer,
        name="DeepFace",
        aliases=("deepface-fb", "facebook-deepface", "fbdeepface"),
        description="Facebook DeepFace (locally connected layers), VGGFace2 weights, 152x152 input, 4096-d",
        license="MIT (swghosh/DeepFace weights)",
        published=PUBLISHED,
    ))
