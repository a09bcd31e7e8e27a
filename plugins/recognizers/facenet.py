"""The ``Facenet`` recognizer: FaceNet (Inception-ResNet-v1), 160x160 input, 128-d embeddings.

The network (see :mod:`._inception_resnet_v1`) ends in a 128-unit bottleneck without bias and a
BatchNorm; embeddings are returned raw (not L2-normalised), as deepface does.  Weights:
deepface's ``facenet_weights.h5`` (Keras 2 HDF5 layout, loaded by position).
"""

from __future__ import annotations

from typing import Any

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._spec import deepface_confidence, keras_recognizer_spec
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


#: deepface's pre-tuned "same person" thresholds per metric (fact sheet §6.1)
THRESHOLDS: dict[str, float] = {"cosine": 0.4, "euclidean": 10, "euclidean_l2": 0.8, "angular": 0.33}
#: deepface's distance-to-confidence parameters per metric (fact sheet §6.2)
CONFIDENCE = deepface_confidence(
    cosine=(
        -6.502269165856082, 1.679048923097668, 1.206694,
        41.790002608273234, 77.17253153662926,
        0.7976712344840693, 20.618350202170916,
    ),
    euclidean=(
        -6.716177467853723, 2.790978346203265, 18.735288,
        40.4423755909089, 74.76412617567517,
        1.9356150486888306, 25.840858374979504,
    ),
    euclidean_l2=(
        -6.708710331202137, 2.9094193067398195, 1.553508,
        40.4509428022908, 75.45756719896039,
        2.189644991619842, 30.555931000001184,
    ),
    angular=(
        -6.371147050396505, 0.6766460615182355, 0.56627,
        24.327312950719133, 45.802357900723386,
        5.063533287198758, 16.95267765757785,
    ),
)
#: deepface's embedding value range for min-max normalisation (fact sheet §2.3)
VALUE_RANGE: tuple[float, float] = (-3.541942596435547, 3.247769594192505)


class FacenetConfig(KerasRecognizerConfig):
    """Options of the Facenet recognizer (see :class:`KerasRecognizerConfig`)."""


class FacenetRecognizer(KerasRecognizer):
    """FaceNet 128-d: BGR crops -> raw 128-d embeddings."""

    config_class = FacenetConfig
    weight_file = FACENET_WEIGHTS
    manifest_name = "Facenet"
    input_size = (160, 160)
    embedding_size = 128
    thresholds = THRESHOLDS

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
        confidence=CONFIDENCE,
        value_range=VALUE_RANGE,
    ))
