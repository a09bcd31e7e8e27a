"""The ``Buffalo_L`` recognizer: InsightFace's ResNet-50 (WebFace600K) ONNX model, 112x112, 512-d.

deepface 0.0.103 runs it through InsightFace (``model_zoo.get_model`` -> ``ArcFaceONNX``) on
``$DEEPFACE_HOME/.deepface/weights/buffalo_l/webface_r50.onnx``.  Its input path, which facepipe
repeats on ONNX Runtime without InsightFace:

1. deepface's resize/pad to 112x112, BGR in [0, 1] (``normalization="base"``), times 255;
2. InsightFace's ``get_feat``: ``cv2.dnn.blobFromImages`` with ``swapRB=True``, i.e. RGB,
   ``(x - mean) / std``, NCHW.  ``mean``/``std`` come from the graph: 0 and 1 when one of its
   first 8 nodes is named like a ``Sub`` and one like a ``Mul`` (an MXNet export that normalises
   inside the graph), else 127.5 and 127.5 (PyTorch exports such as ``webface_r50.onnx``);
3. the raw 512-d output (no L2 normalisation).

deepface calls the network once per face; facepipe sends whole batches (when the graph's batch
dimension is symbolic), which gives the same numbers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.engines.onnx_runtime import OnnxRunner
from facepipe.errors import InputShapeError, WeightsError
from facepipe.plugin_config import WeightsFileConfig
from facepipe.plugins.recognizers._deepface_published import deepface_published
from facepipe.plugins.recognizers._spec import recognizer_spec
from facepipe.specs import WeightFile
from facepipe.types import Recognizer, build_once

BUFFALO_L_WEIGHTS = WeightFile(
    name="webface_r50.onnx",
    urls=("https://drive.google.com/uc?export=download&confirm=pbef&id=1N0GL-8ehw_bz2eZQWz2b0A5XBdXdxZhg",),
    sha256=None,  # not published by deepface; unknown here
    deepface_name="buffalo_l/webface_r50.onnx",
    description="InsightFace buffalo_l recognition model (ResNet-50 trained on WebFace600K, ONNX, ~166 MB), "
    "from deepface's Google Drive link",
)

INPUT_SIZE = (112, 112)
EMBEDDING_SIZE = 512
#: how many leading graph nodes InsightFace inspects to tell MXNet exports from PyTorch ones
_SCALING_NODES = 8

#: deepface's published thresholds for Buffalo_L (it publishes no confidence model or value range)
PUBLISHED = deepface_published("Buffalo_L")


class BuffaloLConfig(WeightsFileConfig):
    """Options of the Buffalo_L recognizer (``weights_path``: a local ``webface_r50.onnx``)."""

    batch_size: int = Field(32, ge=1, le=4096, description="faces per model call; more are run in chunks")
    device: DeviceName = Field(None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = CPU")


def insightface_scaling(node_names: Sequence[str]) -> tuple[float, float]:
    """InsightFace's ``(mean, std)`` for a recognition graph whose nodes are named ``node_names``.

    A graph that subtracts and multiplies near its input (MXNet exports: ``Sub``/``_minus`` and
    ``Mul``/``_mul`` among the first 8 nodes) takes raw 0..255 pixels; any other takes
    ``(x - 127.5) / 127.5``.
    """
    first = list(node_names)[:_SCALING_NODES]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in first)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in first)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


def graph_node_names(path: str | Path) -> list[str]:
    """Names of the nodes of the ONNX graph at ``path``, in graph order (reads it with ``onnx``)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common base class
        raise WeightsError(f"{path} is not a readable ONNX file: {exc}") from exc
    return [node.name for node in model.graph.node]


def insightface_blob(batch: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The network input InsightFace builds from deepface's batch.

    ``batch`` is BGR ``(N, H, W, 3)`` in [0, 1] (deepface's ``base`` input).  deepface scales it to
    0..255; ``cv2.dnn.blobFromImages(..., swapRB=True)`` then swaps to RGB, subtracts ``mean``,
    multiplies by ``1 / std`` (float32) and transposes to NCHW.
    """
    x = np.asarray(batch, dtype=np.float32) * np.float32(255)
    rgb = x[..., ::-1]
    blob = (rgb - np.float32(mean)) * np.float32(1.0 / std)
    return np.ascontiguousarray(blob.transpose(0, 3, 1, 2))


class BuffaloLRecognizer(Recognizer):
    """InsightFace buffalo_l ResNet-50 on ONNX Runtime: BGR crops -> raw 512-d embeddings."""

    config_class = BuffaloLConfig
    weight_file = BUFFALO_L_WEIGHTS
    input_size = INPUT_SIZE
    embedding_size = EMBEDDING_SIZE
    thresholds = PUBLISHED.thresholds
    config: BuffaloLConfig

    def __init__(self, config: BuffaloLConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._lock = threading.Lock()
        self._runner: OnnxRunner | None = None
        self._scaling: tuple[float, float] = (127.5, 127.5)
        self._fixed_batch: int | None = None

    def weights_path(self) -> Path:
        """``config.weights_path`` if set, else the weights manager's copy of ``webface_r50.onnx``."""
        return Path(self.weights_manager().path(self.weight_file, override=self.config.weights_path))

    @property
    def runner(self) -> OnnxRunner:
        """The ONNX Runtime runner, opened on first use (under a lock)."""
        return build_once(self, "_runner", self._lock, self._open)

    def _open(self) -> OnnxRunner:
        path = self.weights_path()
        runner = OnnxRunner(path, self.config.device)
        if runner.input_shape != (3, *INPUT_SIZE) or runner.output_shape not in ((EMBEDDING_SIZE,), (None,)):
            raise WeightsError(
                f"{path} maps {runner.input_shape} -> {runner.output_shape}; expected (3, 112, 112) -> (512,) "
                "(is it InsightFace's buffalo_l webface_r50.onnx?)"
            )
        self._scaling = insightface_scaling(graph_node_names(path))
        batch_dim = runner.session.get_inputs()[0].shape[0]
        # a graph exported with a fixed batch (e.g. 1) takes only that many faces per call
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        return runner

    @property
    def scaling(self) -> tuple[float, float]:
        """The model's input ``(mean, std)``, read from its graph as InsightFace does."""
        _ = self.runner
        return self._scaling

    def prepare(self) -> None:
        _ = self.runner

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Embeddings ``(N, 512)`` of a BGR ``(N, 112, 112, 3)`` batch in [0, 1] (deepface's input)."""
        x = np.asarray(batch)
        if x.ndim != 4 or x.shape[1:] != (*INPUT_SIZE, 3):
            raise InputShapeError(f"Buffalo_L expects a (N, 112, 112, 3) batch of BGR faces, got shape {x.shape}")
        if len(x) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        runner = self.runner
        mean, std = self._scaling
        step = self._fixed_batch or self.config.batch_size
        out = runner.run(insightface_blob(x, mean, std), batch_size=step)
        return out.reshape(len(x), -1)

    def close(self) -> None:
        self._runner = None


@hookimpl
def facepipe_register_recognizers(register):  # type: ignore[no-untyped-def]
    register(recognizer_spec(
        BuffaloLRecognizer,
        name="Buffalo_L",
        aliases=("buffalo-l", "buffalo_l", "insightface-r50"),
        description="InsightFace buffalo_l ResNet-50 (WebFace600K) on ONNX Runtime, 112x112 -> 512-d",
        license="InsightFace pretrained models: non-commercial research use only (code MIT)",
        requires=("onnxruntime", "onnx", "cv2"),
        extra="onnx",
        published=PUBLISHED,
    ))
