"""The ``VGG-Face`` recognizer: the VGG-16 face descriptor (Parkhi et al. 2015), 4096-d.

deepface's weights are those of the 2622-identity classifier; they are loaded into the full
classifier (:mod:`facepipe.engines.vgg_face`) and the embedding is the flattened fc7 output (4096, ReLU),
L2-normalised per face as deepface's VGG-Face client does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facepipe import hookimpl
from facepipe.engines.keras_recognizer import KerasRecognizer, KerasRecognizerConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import keras_recognizer_spec
from facepipe.specs import WeightFile

_DM = "https://github.com/serengil/deepface_models/releases/download/v1.0/"

VGG_FACE_WEIGHTS = WeightFile(
    name="vgg_face_weights.h5",
    urls=(_DM + "vgg_face_weights.h5",),
    sha256=None,
    deepface_name="vgg_face_weights.h5",
    description="VGG-Face 2622-identity classifier, Keras 2 HDF5, ~580 MB",
)

INPUT_SIZE = (224, 224)
EMBEDDING_SIZE = 4096
NUM_IDENTITIES = 2622
#: added to the norm before dividing, as deepface does (keeps all-zero vectors at zero)
L2_EPSILON = 1e-10


def l2_normalize_rows(x: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (+1e-10); float32."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / (norm + L2_EPSILON)).astype(np.float32, copy=False)


#: deepface's published thresholds, confidence model and value range for VGG-Face
PUBLISHED = deepface_published("VGG-Face")


class VGGFaceConfig(KerasRecognizerConfig):
    """Options of the VGG-Face recognizer (normalization, batch_size, weights_path, device)."""


class VGGFaceRecognizer(KerasRecognizer):
    """VGG-Face on 224x224 BGR faces in [0, 1]; unit-length 4096-d embeddings."""

    config_class = VGGFaceConfig
    weight_file = VGG_FACE_WEIGHTS
    manifest_name = "VGG-Face"
    onnx_optimization = "extended"  # see facepipe.engines.onnx_runtime: 580 MB of weights
    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE
    thresholds = PUBLISHED.thresholds

    def build_model(self) -> Any:
        from facepipe.engines.vgg_face import build_vgg_face_classifier

        # The file holds the whole classifier (16 weighted layers); the cut happens after loading.
        return build_vgg_face_classifier(NUM_IDENTITIES)

    @property
    def model(self) -> Any:
        """The fc7 descriptor model (weights loaded into the full classifier first)."""
        descriptor = self.__dict__.get("_descriptor_model")
        if descriptor is None:
            classifier = super().model
            with self._keras_lock:
                descriptor = self.__dict__.get("_descriptor_model")
                if descriptor is None:
                    from facepipe.engines.vgg_face import vgg_face_descriptor

                    descriptor = vgg_face_descriptor(classifier)
                    self._descriptor_model = descriptor
        return descriptor

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """L2-normalised fc7 embeddings ``(N, 4096)`` of a preprocessed batch."""
        return l2_normalize_rows(super().forward(batch))

    def close(self) -> None:
        self._descriptor_model = None
        super().close()


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(keras_recognizer_spec(
        VGGFaceRecognizer,
        name="VGG-Face",
        aliases=("vggface", "vgg_face"),
        description="VGG-16 face descriptor (fc7), Keras 3, 224x224 input, L2-normalised 4096-d embeddings",
        license="CC BY-NC 4.0 (VGG-Face weights, Oxford VGG; non-commercial)",
        published=PUBLISHED,
    ))
