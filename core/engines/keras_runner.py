"""Running deepface's Keras 3 models: lazy build, positional weight loading, compiled inference.

A Keras plugin declares one deepface-format ``.h5`` weight file and a ``build_model()`` that
returns an un-weighted ``keras.Model``; :class:`KerasModelMixin` builds it lazily, under a lock,
so concurrent first calls build it once - and once per process: instances of one class with the
same weight file and device share the loaded model (:mod:`facepipe.engines.shared_networks`), so
options applied outside the network (``normalization``, ``batch_size``) cost no second copy.  It
loads the weights by
position (:func:`facepipe.engines.keras_h5.load_h5_positional`) and runs inference through a
compiled function, in chunks of ``config.batch_size``.  With ``engine="onnx"`` the loaded model is
exported once (:mod:`facepipe.engines.onnx_export`) and run by ONNX Runtime instead; later
instances reuse the cached file without building the Keras model.

Nothing here imports keras / tensorflow / torch / onnxruntime at module level.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import Field

from facepipe.devices import DeviceName, keras_device
from facepipe.engines.onnx_runtime import OnnxRunner, Optimization
from facepipe.engines.shared_networks import shared_network, weights_identity
from facepipe.engines.tf_logging import quiet_tensorflow_logs
from facepipe.errors import ConfigError, InputShapeError, WeightsError
from facepipe.plugin_config import PluginConfig, WeightsFileConfig
from facepipe.specs import WeightFile
from facepipe.types import build_once

__all__ = ["KerasModelConfig", "KerasModelMixin", "compiled_predict_fn", "keras_predict", "device_scope"]


class KerasModelConfig(WeightsFileConfig):
    """Options of every deepface Keras model: recognizers, attribute analyzers, RetinaFace."""

    batch_size: int = Field(32, ge=1, le=4096, description="faces per model call; bigger batches are chunked")
    device: DeviceName = Field(
        None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = the backend's default",
    )
    engine: Literal["keras", "onnx"] = Field(
        "keras",
        description="inference engine: 'keras' (the Keras model, a compiled graph function) or "
        "'onnx' (the same model exported once to ONNX and run by onnxruntime; later runs import "
        "no Keras at all. Plain layer chains - the VGG family, Emotion - are written directly; the "
        "others need tf2onnx on the TensorFlow backend for the export)",
    )
    onnx_cache_dir: Path | None = Field(
        None,
        description="folder of the exported .onnx files (engine='onnx'); None = "
        "<weights manager home>/cache/onnx",
    )


# --------------------------------------------------------------------------------------------
# compiled inference
# --------------------------------------------------------------------------------------------

def _backend() -> str:
    quiet_tensorflow_logs()
    import keras

    return keras.backend.backend()


def device_scope(device: str | None) -> Any:
    """``keras.device(device)`` (name spelled for the backend) or a no-op context for None."""
    if not device:
        return contextlib.nullcontext()
    quiet_tensorflow_logs()
    import keras

    backend = _backend()
    try:
        return keras.device(keras_device(device, backend))
    except Exception as exc:  # bad device names surface as backend-specific errors
        raise ConfigError(f"device {device!r} is not usable with the {backend} backend: {exc}") from exc


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
        raise InputShapeError(
            f"model {model.name} expects input (N, {', '.join(map(str, expected))}) but got {x.shape}")
    fn = compiled_predict_fn(model)
    step = max(int(batch_size), 1)
    outs = []
    with device_scope(device):
        for start in range(0, len(x), step):
            outs.append(np.asarray(fn(x[start:start + step]), dtype=np.float32))
    if not outs:
        out_shape = tuple(d or 0 for d in model.output_shape[1:])
        return np.zeros((0, *out_shape), dtype=np.float32)
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


# --------------------------------------------------------------------------------------------
# the plugin mixin
# --------------------------------------------------------------------------------------------

class KerasModelMixin:
    """Lazy, thread-safe build + positional weight loading + compiled inference.

    Host classes set ``weight_file`` (a :class:`WeightFile`), optionally ``manifest_name`` (the
    weights-manifest / deepface model name), implement :meth:`build_model`, and call
    :meth:`keras_forward`.  The host's config may have ``weights_path``, ``batch_size``,
    ``device``, ``engine`` and ``onnx_cache_dir`` fields (missing ones fall back to None / 32 /
    None / "keras" / None).
    """

    weight_file: ClassVar[WeightFile]
    manifest_name: ClassVar[str] = ""
    #: onnxruntime graph optimisation for engine="onnx" (see facepipe.engines.onnx_runtime)
    onnx_optimization: ClassVar[Optimization] = "all"

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)  # type: ignore[call-arg]
        self._keras_lock = threading.Lock()
        self._keras_model: Any = None
        self._onnx_lock = threading.Lock()
        self._onnx_runner: OnnxRunner | None = None

    def _once(self, attr: str, lock: threading.Lock, make: Callable[[], Any]) -> Any:
        """``self.<attr>``, made by ``make()`` on first use - once, even when threads race."""
        return build_once(self, attr, lock, make)

    @abc.abstractmethod
    def build_model(self) -> Any:
        """A new ``keras.Model`` with the architecture (weights not loaded)."""

    def resolve_weights_path(self) -> Path:
        """``config.weights_path`` if set, else the weights manager's local copy of ``weight_file``."""
        explicit = getattr(self.config, "weights_path", None)  # type: ignore[attr-defined]
        return Path(self.weights_manager().path(self.weight_file, override=explicit))  # type: ignore[attr-defined]

    def load_weights(self, model: Any, path: Path) -> None:
        """Load ``path`` into ``model`` (positional, deepface's Keras 2 layout)."""
        from facepipe.engines.keras_h5 import load_h5_positional

        load_h5_positional(model, path)

    @property
    def model(self) -> Any:
        """The built model with its weights loaded (built on first access, or the one another
        instance of this class with the same weights and device already loaded)."""
        return self._once("_keras_model", self._keras_lock, self._shared_model)

    def network_key(self, *parts: Any) -> tuple[Any, ...]:
        """What makes this instance's network: its class, its weight file, its device (and
        ``parts``).  A subclass whose ``build_model()`` reads other options adds them here."""
        cls = type(self)
        return (f"{cls.__module__}.{cls.__qualname__}", weights_identity(self._existing_weights()),
                getattr(self.config, "device", None), *parts)  # type: ignore[attr-defined]

    def _shared_model(self) -> Any:
        return shared_network(("keras", *self.network_key()), self._build_and_load)

    def _existing_weights(self) -> Path:
        path = self.resolve_weights_path()  # fail fast, before the (slow) build
        if not path.is_file():
            raise WeightsError(f"weight file {path} does not exist")
        return path

    def _build_and_load(self) -> Any:
        path = self._existing_weights()
        quiet_tensorflow_logs()  # build_model() is where a plugin first imports keras
        with device_scope(getattr(self.config, "device", None)):  # type: ignore[attr-defined]
            model = self.build_model()
            self.load_weights(model, path)
        compiled_predict_fn(model)
        return model

    def prepare(self) -> None:
        """Build the model and load its weights (or open the ONNX export) now, and run one blank
        face through it so that graph tracing is done too."""
        if getattr(self.config, "engine", "keras") == "onnx":  # type: ignore[attr-defined]
            shape = self.onnx_runner.input_shape
        else:
            shape = tuple(self.model.input_shape[1:])
        self.keras_forward(np.zeros((1, *(d or 1 for d in shape)), dtype=np.float32))

    def keras_forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch (chunked by ``config.batch_size``)."""
        config = self.config  # type: ignore[attr-defined]
        if getattr(config, "engine", "keras") == "onnx":
            return self.onnx_runner.run(batch, getattr(config, "batch_size", 32))
        return keras_predict(
            self.model, batch, getattr(config, "batch_size", 32), getattr(config, "device", None)
        )

    # ---------------------------------------------------------------------------- engine="onnx"
    def onnx_cache_path(self, weights_path: Path | None = None) -> Path:
        """Where the ONNX export of this model with these weights is cached (see
        :func:`facepipe.engines.onnx_export.onnx_cache_path`)."""
        from facepipe.engines.onnx_export import onnx_cache_path

        folder = getattr(self.config, "onnx_cache_dir", None)  # type: ignore[attr-defined]
        if folder is None:
            from facepipe.weights import facepipe_home

            home = getattr(self.weights_manager(), "home", None) or facepipe_home()  # type: ignore[attr-defined]
            folder = Path(home) / "cache" / "onnx"
        weights = Path(weights_path or self.resolve_weights_path())
        return onnx_cache_path(type(self), weights, Path(folder), self.manifest_name)

    @property
    def onnx_runner(self) -> OnnxRunner:
        """The onnxruntime runner (engine="onnx"): the cached export, else export once and cache
        (shared like :attr:`model` by instances with the same weights, device and export folder)."""
        def open_shared() -> OnnxRunner:
            key = ("onnx", *self.network_key(str(self.onnx_cache_path()), self.onnx_optimization))
            return shared_network(key, self._open_or_export_onnx)

        return self._once("_onnx_runner", self._onnx_lock, open_shared)

    def _open_or_export_onnx(self) -> OnnxRunner:
        from facepipe.engines.onnx_export import open_or_export

        weights = self._existing_weights()
        cls = type(self)
        return open_or_export(
            self.onnx_cache_path(weights), lambda: self.model,
            device=getattr(self.config, "device", None),  # type: ignore[attr-defined]
            optimization=self.onnx_optimization,
            about={"class": f"{cls.__module__}.{cls.__qualname__}", "weights": str(weights)},
            exported=self.close,  # onnxruntime holds its own copy: free the Keras model
        )

    def close(self) -> None:
        """Drop this instance's hold on the Keras model and the ONNX session (freed when no other
        instance holds them; rebuilt on next use)."""
        self._keras_model = None
        self._onnx_runner = None
