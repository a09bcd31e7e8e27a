"""Shared machinery of the Keras 3 plugins (recognizers and attribute analyzers).

A Keras plugin declares one deepface-format ``.h5`` weight file and a ``build_model()`` that
returns an un-weighted ``keras.Model``.  This module builds that model once per plugin
instance (lazily, under a lock, so concurrent first calls build it once), loads the weights by
position (:func:`facepipe.engines.keras_h5.load_h5_positional`) and runs inference through a
compiled function, in chunks of ``config.batch_size``.

Public API (kept small; other plugin modules import it):

* :class:`KerasRecognizerConfig` - config base class of the Keras recognizers.
* :class:`KerasModelMixin` - lazy build + load + compiled predict; usable by analyzers too.
* :class:`KerasRecognizer` - ``Recognizer`` built on the mixin; subclasses set ``weight_file``,
  ``manifest_name``, ``input_size``, ``embedding_size``, ``thresholds`` and ``build_model()``.
* :func:`keras_predict` - run any Keras model on a numpy batch through the compiled path.
* :func:`deepface_thresholds` - deepface's pre-tuned thresholds of a model.

Nothing here imports keras / tensorflow / torch at module level.
"""

from __future__ import annotations

import abc
import re
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from facepipe.errors import ConfigError, WeightsError
from facepipe.specs import WeightFile
from facepipe.types import PluginConfig, Recognizer

_DEVICE_RE = re.compile(r"^(/device:)?(cpu|gpu|cuda|mps|xpu|tpu)(:\d+)?$", re.IGNORECASE)

Normalization = Literal["base", "raw", "Facenet", "Facenet2018", "VGGFace", "VGGFace2", "ArcFace"]

def deepface_thresholds(model_name: str) -> dict[str, float]:
    """deepface's pre-tuned ``{metric: threshold}`` for ``model_name`` (fact sheet §6.1)."""
    from facepipe.thresholds import thresholds_for

    return {metric: float(value) for metric, value in thresholds_for(model_name).items()}


class KerasRecognizerConfig(PluginConfig):
    """Options shared by the Keras recognizers."""

    normalization: Normalization = Field(
        "base",
        description="input normalisation applied after resize/pad (deepface's names; its "
        "thresholds were tuned with 'base')",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="faces per model call; bigger batches are chunked")
    weights_path: Path | None = Field(
        None, description="explicit local weight file (deepface's .h5 layout); overrides the weights manager"
    )
    device: str | None = Field(
        None,
        description="device for the model, e.g. 'cpu', 'gpu:0' or 'cuda:0'; passed to the Keras "
        "backend (keras.device) where it supports it; None = the backend's default",
    )

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str | None) -> str | None:
        if value is not None and not _DEVICE_RE.match(value.strip()):
            raise ValueError(
                f"device {value!r} is not a device name; use e.g. 'cpu', 'gpu', 'gpu:0' or 'cuda:1'"
            )
        return value

    @field_validator("weights_path")
    @classmethod
    def _weights_exist(cls, value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"weights_path {value} is not a file; give the path of the .h5 weights file")
        return value


# --------------------------------------------------------------------------------------------
# compiled inference
# --------------------------------------------------------------------------------------------

def _backend() -> str:
    import keras

    return keras.backend.backend()


def _normalize_device(device: str, backend: str) -> str:
    """Spell a device name the way ``backend`` expects ('gpu:0' <-> 'cuda:0', torch's plain 'cpu')."""
    name = device.strip().lower().removeprefix("/device:")
    kind, _, index = name.partition(":")
    if backend == "torch":
        kind = {"gpu": "cuda"}.get(kind, kind)
        return kind if kind == "cpu" or not index else f"{kind}:{index}"
    if backend == "tensorflow":
        kind = {"cuda": "gpu"}.get(kind, kind)
    return f"{kind}:{index}" if index else kind


def _device_scope(device: str | None) -> Any:
    """``keras.device(device)`` (name adapted to the backend) or a no-op context."""
    import contextlib

    if not device:
        return contextlib.nullcontext()
    import keras

    backend = _backend()
    try:
        return keras.device(_normalize_device(device, backend))
    except Exception as exc:  # bad device names surface as backend-specific errors
        raise ConfigError(f"device {device!r} is not usable with the {backend} backend: {exc}") from exc


#: public name of :func:`_device_scope`
device_scope = _device_scope


def _make_tf_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    spec = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)]

    # A graph function with a fixed signature: traced once, no per-call retracing or
    # Python-level layer dispatch (much cheaper than eager calls for deep networks).
    @tf.function(input_signature=spec)
    def run(x: Any) -> Any:
        return model(x, training=False)

    def call(batch: np.ndarray) -> np.ndarray:
        return np.asarray(run(tf.constant(batch)))

    return call


def _make_torch_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    import keras
    import torch

    def call(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(keras.ops.convert_to_tensor(batch), training=False)
        return np.asarray(keras.ops.convert_to_numpy(out))

    return call


def _make_generic_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    def call(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch))

    return call


_COMPILED_ATTR = "_facepipe_predict_fn"
_COMPILED_LOCK = threading.Lock()


def compiled_predict_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The compiled ``numpy batch -> numpy output`` function of ``model`` (made once per model).

    Stored on the model itself (not in a global cache), so it is freed with the model.
    """
    fn = getattr(model, _COMPILED_ATTR, None)
    if fn is not None:
        return fn
    with _COMPILED_LOCK:
        fn = getattr(model, _COMPILED_ATTR, None)
        if fn is None:
            backend = _backend()
            if backend == "tensorflow":
                fn = _make_tf_fn(model)
            elif backend == "torch":
                fn = _make_torch_fn(model)
            else:
                fn = _make_generic_fn(model)
            # plain attribute: bypass Keras' attribute tracking
            object.__setattr__(model, _COMPILED_ATTR, fn)
        return fn


def keras_predict(model: Any, batch: np.ndarray, batch_size: int = 32, device: str | None = None) -> np.ndarray:
    """Run a single-output ``model`` on ``batch`` (N, ...) in chunks of ``batch_size``; float32 numpy.

    Works on every Keras backend; uses a compiled graph function on TensorFlow.
    """
    x = np.ascontiguousarray(batch, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
        raise ValueError(f"model {model.name} expects input (N, {', '.join(map(str, expected))}) but got {x.shape}")
    fn = compiled_predict_fn(model)
    step = max(int(batch_size), 1)
    outs = []
    with _device_scope(device):
        for start in range(0, len(x), step):
            outs.append(np.asarray(fn(x[start:start + step]), dtype=np.float32))
    if not outs:
        out_shape = tuple(d or 0 for d in model.output_shape[1:])
        return np.zeros((0, *out_shape), dtype=np.float32)
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


# --------------------------------------------------------------------------------------------
# plugin base classes
# --------------------------------------------------------------------------------------------

class KerasModelMixin:
    """Lazy, thread-safe build + positional weight loading + compiled inference.

    Host classes set ``weight_file`` (a :class:`WeightFile`), optionally ``manifest_name`` (the
    weights-manifest / deepface model name), implement :meth:`build_model`, and call
    :meth:`keras_forward`.  The host's config may have ``weights_path``, ``batch_size`` and
    ``device`` fields (missing ones fall back to None / 32 / None).
    """

    weight_file: ClassVar[WeightFile]
    manifest_name: ClassVar[str] = ""

    _keras_lock: threading.Lock
    _keras_model: Any

    @abc.abstractmethod
    def build_model(self) -> Any:
        """A new ``keras.Model`` with the architecture (weights not loaded)."""

    def resolve_weights_path(self) -> Path:
        """``config.weights_path`` if set, else the weights manager's local copy of ``weight_file``."""
        explicit = getattr(self.config, "weights_path", None)  # type: ignore[attr-defined]
        if explicit is not None:
            return Path(explicit)
        return Path(self.weights_manager().path(self.weight_file))  # type: ignore[attr-defined]

    def load_weights(self, model: Any, path: Path) -> None:
        """Load ``path`` into ``model`` (positional, deepface's Keras 2 layout)."""
        from facepipe.engines.keras_h5 import load_h5_positional

        load_h5_positional(model, path)

    @property
    def model(self) -> Any:
        """The built model with its weights loaded (built on first access)."""
        model = getattr(self, "_keras_model", None)
        if model is not None:
            return model
        lock = self.__dict__.setdefault("_keras_lock", threading.Lock())
        with lock:
            if getattr(self, "_keras_model", None) is None:
                path = self.resolve_weights_path()  # fail fast, before the (slow) build
                if not path.is_file():
                    raise WeightsError(f"weight file {path} does not exist")
                with _device_scope(getattr(self.config, "device", None)):  # type: ignore[attr-defined]
                    model = self.build_model()
                    self.load_weights(model, path)
                compiled_predict_fn(model)
                self._keras_model = model
        return self._keras_model

    def keras_forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch (chunked by ``config.batch_size``)."""
        config = self.config  # type: ignore[attr-defined]
        return keras_predict(
            self.model, batch, getattr(config, "batch_size", 32), getattr(config, "device", None)
        )

    def close(self) -> None:
        self._keras_model = None


class KerasRecognizer(KerasModelMixin, Recognizer):
    """A recognizer whose network is a Keras 3 model loaded from deepface's ``.h5`` weights."""

    config_class = KerasRecognizerConfig

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._keras_lock = threading.Lock()
        self._keras_model = None

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, embedding_size)`` embeddings of a preprocessed batch."""
        out = self.keras_forward(batch)
        return out.reshape(len(out), -1).astype(np.float32, copy=False)
