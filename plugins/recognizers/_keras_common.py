"""Shared machinery of the Keras 3 plugins (recognizers and attribute analyzers).

A Keras plugin declares one deepface-format ``.h5`` weight file and a ``build_model()`` that
returns an un-weighted ``keras.Model``.  This module builds that model once per plugin
instance (lazily, under a lock, so concurrent first calls build it once), loads the weights by
position (:func:`facepipe.engines.keras_h5.load_h5_positional`) and runs inference through a
compiled function, in chunks of ``config.batch_size``.  With ``engine="onnx"`` the loaded model is
exported once to an ONNX file (cached under ``<weights home>/cache/onnx``) and run by ONNX
Runtime instead; later instances reuse the cached file without building the Keras model.

Public API (kept small; other plugin modules import it):

* :class:`KerasRecognizerConfig` - config base class of the Keras recognizers.
* :class:`KerasModelMixin` - lazy build + load + compiled predict; usable by analyzers too.
* :class:`KerasRecognizer` - ``Recognizer`` built on the mixin; subclasses set ``weight_file``,
  ``manifest_name``, ``input_size``, ``embedding_size``, ``thresholds`` and ``build_model()``.
* :func:`keras_predict` - run any Keras model on a numpy batch through the compiled path.
* :func:`deepface_thresholds` - deepface's pre-tuned thresholds of a model.

Nothing here imports keras / tensorflow / torch / onnxruntime at module level.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from facepipe.errors import ConfigError, PluginError, PluginUnavailableError, WeightsError
from facepipe.specs import WeightFile
from facepipe.types import PluginConfig, Recognizer

log = logging.getLogger("facepipe.engines.onnx")

_DEVICE_RE = re.compile(r"^(/device:)?(cpu|gpu|cuda|mps|xpu|tpu)(:\d+)?$", re.IGNORECASE)

Normalization = Literal["base", "raw", "Facenet", "Facenet2018", "VGGFace", "VGGFace2", "ArcFace"]


def deepface_thresholds(model_name: str) -> dict[str, float]:
    """deepface's pre-tuned ``{metric: threshold}`` for ``model_name`` (fact sheet §6.1)."""
    from facepipe.pipeline.decision import thresholds_for

    return {metric: float(value) for metric, value in thresholds_for(model_name).items()}


class KerasModelConfig(PluginConfig):
    """Options of every deepface Keras model: recognizers and attribute analyzers."""

    batch_size: int = Field(32, ge=1, le=4096, description="faces per model call; bigger batches are chunked")
    weights_path: Path | None = Field(
        None, description="explicit local weight file (deepface's .h5 layout); overrides the weights manager"
    )
    device: str | None = Field(
        None,
        description="device for the model, e.g. 'cpu', 'gpu:0' or 'cuda:0'; passed to the Keras "
        "backend (keras.device) where it supports it; None = the backend's default",
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


class KerasRecognizerConfig(KerasModelConfig):
    """Options shared by the Keras recognizers."""

    normalization: Normalization = Field(
        "base",
        description="input normalisation applied after resize/pad (deepface's names; its "
        "thresholds were tuned with 'base')",
    )


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
# ONNX Runtime engine (engine="onnx")
# --------------------------------------------------------------------------------------------

#: bump when the export recipe changes: files exported by an older recipe are then not reused
ONNX_EXPORT_VERSION = 2
#: ONNX opset of exported files (supported by onnxruntime >= 1.14)
ONNX_OPSET = 17


def _cpu_threads() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return max(os.cpu_count() or 1, 1)


def _ort_providers(device: str | None) -> list[Any]:
    """onnxruntime execution providers for a ``device`` option (None / 'cpu' -> CPU only)."""
    if not device:
        return ["CPUExecutionProvider"]
    name = device.strip().lower().removeprefix("/device:")
    kind, _, index = name.partition(":")
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if kind in ("gpu", "cuda"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
        raise ConfigError(
            f"device {device!r}: this onnxruntime has no CUDA provider (install onnxruntime-gpu) "
            "- use device='cpu' or engine='keras'"
        )
    raise ConfigError(f"device {device!r} is not supported by engine='onnx'; use 'cpu', 'gpu' or 'cuda:N'")


class OnnxRunner:
    """An onnxruntime session of a single-input, single-output exported model."""

    def __init__(self, path: Path, device: str | None = None, optimization: str = "all") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = _cpu_threads()
        # "all" adds onnxruntime's blocked-layout convolutions (Facenet: 24 vs 38 ms per face), but
        # re-lays out every weight at each start: for the 540 MB VGG-16s that is 3.7-5.8 s against
        # 1.6 s with "extended", for about the same speed (0.20 vs 0.21 s per face).
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        }[optimization]
        # Idle pool threads sleep instead of spinning: on shared (oversubscribed) CPUs spinning
        # burnt ~10% more CPU and was slower in wall time too (Facenet, 2 cores, load ~10).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=_ort_providers(device))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise WeightsError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; expected 1 and 1")
        self.input_name = inputs[0].name
        # symbolic (batch) dimensions come back as strings
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape[1:])
        self.output_shape = tuple(d if isinstance(d, int) else None for d in outputs[0].shape[1:])

    def run(self, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 outputs of ``batch`` (N, ...), in chunks of ``batch_size``."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        expected = self.input_shape
        if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            shape = ", ".join(str(e) for e in expected)
            raise ValueError(f"model {self.path.stem} expects input (N, {shape}) but got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, *(d or 0 for d in self.output_shape)), dtype=np.float32)
        step = max(int(batch_size), 1)
        outs = [
            np.asarray(self.session.run(None, {self.input_name: x[i:i + step]})[0], dtype=np.float32)
            for i in range(0, len(x), step)
        ]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def export_onnx(model: Any, path: Path) -> None:
    """Write ``model`` (single input, any batch size) as an ONNX file at ``path``.

    Plain chains of layers are written directly (:mod:`facepipe.engines.onnx_chain`).  Others, on
    the TensorFlow backend: the model's fixed-signature graph function converted by tf2onnx; other
    backends: Keras' own exporter (``model.export(format="onnx")``).
    """
    import importlib.util

    from facepipe.engines.onnx_chain import export_chain_onnx

    if export_chain_onnx(model, path, opset=ONNX_OPSET):
        return  # a plain layer chain (VGG family, Emotion): written directly, any backend
    backend = _backend()
    if backend == "tensorflow":
        if importlib.util.find_spec("tf2onnx") is None:
            raise PluginUnavailableError(
                "engine='onnx' needs tf2onnx to export the Keras model (pip install tf2onnx); "
                "or use engine='keras'"
            )
        import tensorflow as tf
        import tf2onnx

        spec = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="input")]

        @tf.function(input_signature=spec)
        def run(x: Any) -> Any:
            return model(x, training=False)

        tf2onnx.convert.from_function(run, input_signature=spec, opset=ONNX_OPSET, output_path=str(path))
    else:
        # Keras' exporter traces a model that has been called at least once
        model(np.zeros((1, *model.input_shape[1:]), np.float32), training=False)
        model.export(str(path), format="onnx", verbose=False)
    if not path.is_file():
        raise PluginError(f"exporting {model.name} to ONNX wrote no file at {path}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SOURCE_DIGESTS: dict[str, str] = {}


def _source_digest(cls: type) -> str:
    """Digest of the plugin's source folders (architecture code), so code changes re-export."""
    folders = sorted({
        str(Path(sys.modules[c.__module__].__file__ or "").parent)
        for c in cls.__mro__
        if c.__module__.startswith("facepipe.plugins") and getattr(sys.modules.get(c.__module__), "__file__", None)
    })
    digest = hashlib.sha256()
    for folder in folders:
        if folder not in _SOURCE_DIGESTS:
            h = hashlib.sha256()
            for file in sorted(Path(folder).glob("*.py")):
                h.update(file.name.encode() + b"\0" + file.read_bytes())
            _SOURCE_DIGESTS[folder] = h.hexdigest()
        digest.update(_SOURCE_DIGESTS[folder].encode())
    return digest.hexdigest()


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


@contextlib.contextmanager
def _file_lock(path: Path) -> Any:
    """Exclusive inter-process lock on ``path`` (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: threads are kept apart by the plugin lock
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_cached_onnx(path: Path, key: str, device: str | None, optimization: str = "all") -> OnnxRunner | None:
    """The runner of a cached export, or None when missing, stale or corrupt (then removed)."""
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        stat = path.stat()
        # Untouched since it was written (same size and modification time): trust the checksum
        # taken then - hashing the 540 MB VGG exports would add ~0.5 s to every start.
        untouched = meta.get("mtime_ns") == stat.st_mtime_ns
        ok = (meta.get("key") == key and meta.get("size") == stat.st_size
              and (untouched or meta.get("sha256") == _sha256_file(path)))
        reason = "checksum/size mismatch"
        if ok:
            return OnnxRunner(path, device, optimization)
    except ConfigError:
        raise
    except Exception as exc:  # unreadable sidecar or a file onnxruntime cannot load
        reason = f"{type(exc).__name__}: {exc}"
    log.warning("cached ONNX export %s is unusable (%s); exporting again", path, reason)
    for stale in (path, meta_path):
        with contextlib.suppress(OSError):
            stale.unlink()
    return None


# --------------------------------------------------------------------------------------------
# plugin base classes
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
    #: onnxruntime graph optimisation for engine="onnx": "all" or "extended" (see OnnxRunner)
    onnx_optimization: ClassVar[str] = "all"

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)  # type: ignore[call-arg]
        self._keras_lock = threading.Lock()
        self._keras_model: Any = None
        self._onnx_lock = threading.Lock()
        self._onnx_runner: OnnxRunner | None = None

    def _once(self, attr: str, lock: threading.Lock, make: Callable[[], Any]) -> Any:
        """``self.<attr>``, made by ``make()`` on first use - once, even when threads race."""
        value = getattr(self, attr)
        if value is None:
            with lock:
                value = getattr(self, attr)
                if value is None:
                    value = make()
                    setattr(self, attr, value)
        return value

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
        return self._once("_keras_model", self._keras_lock, self._build_and_load)

    def _build_and_load(self) -> Any:
        path = self.resolve_weights_path()  # fail fast, before the (slow) build
        if not path.is_file():
            raise WeightsError(f"weight file {path} does not exist")
        with _device_scope(getattr(self.config, "device", None)):  # type: ignore[attr-defined]
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
        """Where the ONNX export of this model with these weights is cached.

        The name holds a digest of the plugin class, its source folder, the weight file (path,
        size, mtime) and the export recipe, so any change of these exports anew.
        """
        weights = Path(weights_path or self.resolve_weights_path()).resolve()
        stat = weights.stat()
        cls = type(self)
        key = json.dumps({
            "recipe": [ONNX_EXPORT_VERSION, ONNX_OPSET],
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "source": _source_digest(cls),
            "weights": [str(weights), stat.st_size, stat.st_mtime_ns],
            "keras": _package_version("keras"),
        }, sort_keys=True)
        folder = getattr(self.config, "onnx_cache_dir", None)  # type: ignore[attr-defined]
        if folder is None:
            from facepipe.weights import facepipe_home

            home = getattr(self.weights_manager(), "home", None) or facepipe_home()  # type: ignore[attr-defined]
            folder = Path(home) / "cache" / "onnx"
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.manifest_name or cls.__name__)
        return Path(folder) / f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"

    @property
    def onnx_runner(self) -> OnnxRunner:
        """The onnxruntime runner (engine="onnx"): the cached export, else export once and cache."""
        return self._once("_onnx_runner", self._onnx_lock, self._open_or_export_onnx)

    def _open_or_export_onnx(self) -> OnnxRunner:
        device = getattr(self.config, "device", None)  # type: ignore[attr-defined]
        weights = self.resolve_weights_path()
        if not weights.is_file():
            raise WeightsError(f"weight file {weights} does not exist")
        path = self.onnx_cache_path(weights)
        key = path.stem
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_suffix(".lock")):  # one exporter per file across processes
            optimization = self.onnx_optimization
            runner = _read_cached_onnx(path, key, device, optimization)
            if runner is not None:
                return runner
            log.info("exporting %s to ONNX at %s (once; later runs reuse it)", type(self).__name__, path)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.onnx")
            try:
                export_onnx(self.model, tmp)
                stat = tmp.stat()  # the rename below keeps size and modification time
                meta = {"key": key, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                        "sha256": _sha256_file(tmp),
                        "class": f"{type(self).__module__}.{type(self).__qualname__}",
                        "weights": str(weights), "opset": ONNX_OPSET}
                meta_tmp = tmp.with_suffix(".json")
                meta_tmp.write_text(json.dumps(meta, indent=1))
                tmp.replace(path)
                meta_tmp.replace(path.with_suffix(".json"))
            finally:
                for leftover in (tmp, tmp.with_suffix(".json")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            # the Keras model(s) are no longer needed: free them (onnxruntime holds a copy)
            self.close()
            try:
                return OnnxRunner(path, device, optimization)
            except ConfigError:
                raise
            except Exception as exc:
                raise PluginError(f"onnxruntime could not load the fresh export {path}: {exc}") from exc

    def close(self) -> None:
        self._keras_model = None
        self._onnx_runner = None


class KerasRecognizer(KerasModelMixin, Recognizer):
    """A recognizer whose network is a Keras 3 model loaded from deepface's ``.h5`` weights."""

    config_class = KerasRecognizerConfig

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, embedding_size)`` embeddings of a preprocessed batch."""
        out = self.keras_forward(batch)
        return out.reshape(len(out), -1).astype(np.float32, copy=False)
