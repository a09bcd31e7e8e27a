"""The ``Facenet`` recognizer: FaceNet (Inception-ResNet-v1), 160x160 input, 128-d embeddings.

The network (see :mod:`._inception_resnet_v1`) ends in a 128-unit bottleneck without bias and a
BatchNorm; embeddings are returned raw (not L2-normalised), as deepface does.  Weights:
deepface's ``facenet_weights.h5`` (Keras 2 HDF5 layout, loaded by position).
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

FACENET_WEIGHTS = WeightFile(
    name="facenet_weights.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/facenet_weights.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/facenet_weights.h5",
    ),
    sha256=None,
    deepface_name="facenet_weights.h5",
    description="FaceNet Inception-ResNet-v1, 128-d (deepface's Keras 2 HDF5 weights, ~92 MB)",
)


#: deepface's published thresholds, confidence model and value range for Facenet
PUBLISHED = deepface_published("Facenet")


class FacenetConfig(KerasRecognizerConfig):
    """Options of the Facenet recognizer (see :class:`KerasRecognizerConfig`)."""


class FacenetRecognizer(KerasRecognizer):
    """FaceNet 128-d: BGR crops -> raw 128-d embeddings."""

    config_class = FacenetConfig
    weight_file = FACENET_WEIGHTS
    manifest_name = "Facenet"
    input_size = (160, 160)
    embedding_size = 128
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        from facepipe.plugins.recognizers._inception_resnet_v1 import build_inception_resnet_v1

        return build_inception_resnet_v1(self.embedding_size, name="facenet")


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        FacenetRecognizer,
        name="Facenet",
        aliases=("facenet", "facenet128"),
        description="FaceNet (Inception-ResNet-v1), 160x160 -> 128-d, Keras 3",
        license="MIT",
        published=PUBLISHED,
    ))
