"""The ``Facenet512`` recognizer: FaceNet (Inception-ResNet-v1), 160x160 input, 512-d embeddings.

Same network as ``Facenet`` (shared builder :mod:`._inception_resnet_v1`) with a 512-unit
bottleneck.  Weights: deepface's ``facenet512_weights.h5``, loaded by position.
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._spec import deepface_confidence, keras_recognizer_spec
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


#: deepface's pre-tuned "same person" thresholds per metric (fact sheet §6.1)
THRESHOLDS: dict[str, float] = {"cosine": 0.3, "euclidean": 23.56, "euclidean_l2": 1.04, "angular": 0.35}
#: deepface's distance-to-confidence parameters per metric (fact sheet §6.2)
CONFIDENCE = deepface_confidence(
    cosine=(
        -5.868251768046832, 0.8674084834913275, 1.384316,
        40.700922463435305, 62.19495119465813,
        0.6687247052303562, 39.96947059787277,
    ),
    euclidean=(
        -6.742961485008033, 2.61949356815704, 40.771751,
        23.391566956420913, 75.20184708761875,
        1.5930391784587872, 20.317410180868695,
    ),
    euclidean_l2=(
        -6.76040230078399, 3.0057651791652638, 1.663921,
        23.492800781101295, 78.73795056941638,
        2.287349921316484, 21.754795621979017,
    ),
    angular=(
        -6.487840122876141, 0.9536496647058516, 0.625563,
        21.72372703119752, 52.1215977454314,
        4.290546073131373, 20.734638325222512,
    ),
)
#: deepface's embedding value range for min-max normalisation (fact sheet §2.3)
VALUE_RANGE: tuple[float, float] = (-4.388302803039551, 3.643190622329712)


class Facenet512Config(KerasRecognizerConfig):
    """Options of the Facenet512 recognizer (see :class:`KerasRecognizerConfig`)."""


class Facenet512Recognizer(KerasRecognizer):
    """FaceNet 512-d: BGR crops -> raw 512-d embeddings."""

    config_class = Facenet512Config
    weight_file = FACENET512_WEIGHTS
    manifest_name = "Facenet512"
    input_size = (160, 160)
    embedding_size = 512
    thresholds = THRESHOLDS

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
        confidence=CONFIDENCE,
        value_range=VALUE_RANGE,
    ))
