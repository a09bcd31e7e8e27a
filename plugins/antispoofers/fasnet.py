"""``Fasnet``: deepface's anti-spoofing model, two MiniFASNets on ONNX Runtime.

deepface's ``anti_spoofing=True`` runs Minivision's two small networks (Apache-2.0) on wider and
wider patches around each face and adds their softmax outputs:

* ``MiniFASNetV2`` on the box grown 2.7x, ``MiniFASNetV1SE`` on the box grown 4x (see
  :mod:`facepipe.plugins.antispoofers._patch`), each resized to 80x80;
* pixels go in as BGR ``float32`` in [0, 255], channels last ``(N, 80, 80, 3)`` — the published
  ``.onnx`` graphs transpose to channels first and apply the softmax themselves;
* the two 3-class outputs are summed; class 1 is "real".  ``is_real`` is whether class 1 wins and
  the score is the winning class's summed probability / 2 (so a fake face with score 0.9 is a
  confident fake, not a likely real one).

The ``.onnx`` files deepface publishes are loaded; nothing is unpickled.  Their checksums are not
recorded here yet (``sha256=None``): the weights manager then accepts a file by name.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.errors import WeightsError
from facepipe.plugin_config import PluginConfig, WeightsPath
from facepipe.plugins.antispoofers._patch import context_patch
from facepipe.specs import AntiSpooferSpec, WeightFile
from facepipe.types import AntiSpoofer, build_once

_RELEASE = "https://github.com/serengil/deepface_models/releases/download/v1.0/"
_HUGGINGFACE = "https://huggingface.co/serengil/deepface/resolve/main/"


def _deepface_onnx(name: str, description: str) -> WeightFile:
    return WeightFile(name=name, urls=(_RELEASE + name, _HUGGINGFACE + name), sha256=None,
                      deepface_name=name, description=description)


MINIFASNET_V2 = _deepface_onnx(
    "2.7_80x80_MiniFASNetV2.onnx", "MiniFASNetV2 (Minivision, Apache-2.0) as ONNX from deepface, 2.7x patches")
MINIFASNET_V1SE = _deepface_onnx(
    "4_0_0_80x80_MiniFASNetV1SE.onnx", "MiniFASNetV1SE (Minivision, Apache-2.0) as ONNX from deepface, 4x patches")

INPUT_SIZE = 80
REAL_CLASS = 1
#: (weight file, patch scale) of each network, in deepface's order
NETWORKS: tuple[tuple[WeightFile, float], ...] = ((MINIFASNET_V2, 2.7), (MINIFASNET_V1SE, 4.0))


class FasnetConfig(PluginConfig):
    """Options of ``Fasnet``."""

    v2_weights_path: WeightsPath = Field(None, description="explicit 2.7_80x80_MiniFASNetV2.onnx")
    v1se_weights_path: WeightsPath = Field(None, description="explicit 4_0_0_80x80_MiniFASNetV1SE.onnx")
    batch_size: int = Field(32, ge=1, le=4096, description="faces per ONNX Runtime call")
    threads: int = Field(0, ge=0, le=256,
                         description="ONNX Runtime intra-op threads (0 = every CPU this process may use)")
    device: DeviceName = Field(None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = CPU")


class _Network:
    """One MiniFASNet session: channels-last 80x80 BGR patches -> (N, 3) probabilities."""

    def __init__(self, path: Path, config: FasnetConfig) -> None:
        from facepipe.engines.onnx_runtime import onnx_session

        self.session = onnx_session(path, config.device, threads=config.threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape)
        size = INPUT_SIZE
        if len(inputs) != 1 or len(shape) != 4:
            raise WeightsError(f"{path} takes {[i.shape for i in inputs]}; a MiniFASNet takes one (N, 80, 80, 3) input")
        if shape[1:] == [size, size, 3]:
            self.channels_first = False
        elif shape[1:] == [3, size, size]:  # a graph exported without the transpose
            self.channels_first = True
        else:
            raise WeightsError(f"{path} takes {shape}; a MiniFASNet takes (N, 80, 80, 3) (is it the right file?)")
        if outputs[0].shape[-1] != 3:
            raise WeightsError(f"{path} returns {outputs[0].shape}; a MiniFASNet returns 3 class probabilities")
        self.input_name = inputs[0].name
        # A graph exported with batch 1 fixed is fed one patch at a time.
        self.max_batch = 1 if shape[0] == 1 else config.batch_size

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(patches.transpose(0, 3, 1, 2) if self.channels_first else patches, dtype=np.float32)
        parts = [self.session.run(None, {self.input_name: x[i:i + self.max_batch]})[0]
                 for i in range(0, len(x), self.max_batch)]
        return np.concatenate(parts, axis=0).astype(np.float64).reshape(len(x), 3)


class FasnetSpoofer(AntiSpoofer):
    """deepface's ``Fasnet``: MiniFASNetV2 (2.7x patch) + MiniFASNetV1SE (4x patch), summed."""

    config_class = FasnetConfig
    config: FasnetConfig

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._lock = threading.Lock()
        self._networks: list[_Network] | None = None

    def weight_paths(self) -> list[Path]:
        """The two ``.onnx`` files: the explicit paths if set, else the weights manager's copies."""
        overrides = (self.config.v2_weights_path, self.config.v1se_weights_path)
        manager = self.weights_manager()
        return [Path(manager.path(wf, override=given)) for (wf, _), given in zip(NETWORKS, overrides)]

    @property
    def networks(self) -> list[_Network]:
        return build_once(self, "_networks", self._lock,
                          lambda: [_Network(path, self.config) for path in self.weight_paths()])

    def prepare(self) -> None:
        _ = self.networks

    def probabilities(self, image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
        """The summed class probabilities ``(N, 3)`` of both networks (each row sums to ~2)."""
        total = np.zeros((len(boxes), 3))
        if not len(boxes):
            return total
        image = _three_channels(image)
        for network, (_, scale) in zip(self.networks, NETWORKS):
            patches = np.stack([context_patch(image, box, scale, INPUT_SIZE) for box in boxes])
            total += network(patches)
        return total

    def check(self, image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[tuple[bool, float]]:
        """deepface's decision per box: class 1 ("real") wins, and the winner's probability / 2."""
        total = self.probabilities(image, boxes)
        winners = np.argmax(total, axis=1)
        return [(bool(label == REAL_CLASS), float(row[label] / 2)) for row, label in zip(total, winners)]

    def analyze(self, img: np.ndarray, facial_area: Sequence[float]) -> tuple[bool, float]:
        """deepface's ``Fasnet.analyze(img, (x, y, w, h))``, for code that calls
        ``DeepFace.build_model("Fasnet", task="spoofing")`` directly."""
        (is_real, score), = self.check(img, [tuple(facial_area)])  # type: ignore[list-item]
        return is_real, score

    def close(self) -> None:
        with self._lock:
            self._networks = None


def _three_channels(image: np.ndarray) -> np.ndarray:
    # The dtype is kept: deepface resizes the uint8 image, and OpenCV rounds while resizing bytes.
    image = np.asarray(image)
    if image.ndim == 2:  # grey: the networks take three channels
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image


@hookimpl
def facepipe_register_antispoofers(register):  # type: ignore[no-untyped-def]
    register(AntiSpooferSpec(
        name="Fasnet",
        factory=f"{__name__}:FasnetSpoofer",
        config=FasnetConfig,
        aliases=("fasnet", "FasNet", "MiniFASNet"),
        description="deepface's anti-spoofing: MiniFASNetV2 + V1SE (ONNX), 80x80 patches of 2.7x / 4x the face",
        license="Apache-2.0 (Minivision Silent-Face-Anti-Spoofing weights, deepface's ONNX export)",
        weights=(MINIFASNET_V2, MINIFASNET_V1SE),
        requires=("onnxruntime", "cv2"),
        extra="antispoofing",
    ))
