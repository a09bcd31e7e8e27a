"""The ``Facenet512`` recognizer: FaceNet (Inception-ResNet-v1), 160x160 input, 512-d embeddings.

Same network as ``Facenet`` (shared builder :mod:`._inception_resnet_v1`) with a 512-unit
bottleneck.  Weights: deepface's ``facenet512_weights.h5``, loaded by position.
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

FACENET512_WEIGHTS = WeightFile(
    name="facenet512_weights.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/facenet512_weights.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/facenet512_weights.h5",
    ),
    sha256=None,
    deepface_name="facenet512_weights.h5",
    description="FaceNet Inception-ResNet-v1, 512-d (deepface's Keras 2 HDF5 weights, ~95 MB)",
)


#: deepface's published thresholds, confidence model and value range for Facenet512
PUBLISHED = deepface_published("Facenet512")


class Facenet512Config(KerasRecognizerConfig):
    """Options of the Facenet512 recognizer (see :class:`KerasRecognizerConfig`)."""


class Facenet512Recognizer(KerasRecognizer):
    """FaceNet 512-d: BGR crops -> raw 512-d embeddings."""

    config_class = Facenet512Config
    weight_file = FACENET512_WEIGHTS
    manifest_name = "Facenet512"
    input_size = (160, 160)
    embedding_size = 512
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        from facepipe.plugins.recognizers._inception_resnet_v1 import build_inception_resnet_v1

        return build_inception_resnet_v1(self.embedding_size, name="facenet512")


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        Facenet512Recognizer,
        name="Facenet512",
        aliases=("facenet512",),
        description="FaceNet (Inception-ResNet-v1), 160x160 -> 512-d, Keras 3",
        license="MIT",
        published=PUBLISHED,
    ))
