"""The ``Facenet512`` recognizer: FaceNet (Inception-ResNet-v1), 160x160 input, 512-d embeddings.

Same network as ``Facenet`` (shared builder :mod:`._inception_resnet_v1`) with a 512-unit
bottleneck.  Weights: deepface's ``facenet512_weights.h5``, loaded by position.
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.plugins.recognizers._keras_common import (
    KerasRecognizer,
    KerasRecognizerConfig,
    deepface_thresholds,
)
from facepipe.specs import RecognizerSpec, WeightFile

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


class Facenet512Config(KerasRecognizerConfig):
    """Options of the Facenet512 recognizer (see :class:`KerasRecognizerConfig`)."""


class Facenet512Recognizer(KerasRecognizer):
    """FaceNet 512-d: BGR crops -> raw 512-d embeddings."""

    config_class = Facenet512Config
    weight_file = FACENET512_WEIGHTS
    manifest_name = "Facenet512"
    input_size = (160, 160)
    embedding_size = 512
    thresholds = deepface_thresholds("Facenet512")

    def build_model(self) -> Any:
        from facepipe.plugins.recognizers._inception_resnet_v1 import build_inception_resnet_v1

        return build_inception_resnet_v1(self.embedding_size, name="facenet512")


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(RecognizerSpec(
        name="Facenet512",
        aliases=("facenet512",),
        factory="facepipe.plugins.recognizers.facenet512:Facenet512Recognizer",
        config=Facenet512Config,
        weights=(FACENET512_WEIGHTS,),
        requires=("keras", "h5py"),
        extra="keras",
        license="MIT",
        description="FaceNet (Inception-ResNet-v1), 160x160 -> 512-d, Keras 3",
    ))
