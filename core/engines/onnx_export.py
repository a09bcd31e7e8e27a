"""Keras -> ONNX export, and the on-disk cache of exported files (``engine="onnx"``).

:func:`export_onnx` writes a Keras model as ONNX.  :func:`onnx_cache_path` names the cached export
of one plugin class with one weight file; :func:`open_or_export` opens that file, or exports it
once (one exporter per file across processes) and opens the result.  A sidecar ``.json`` holds
the file's key, size, modification time and sha256, so a damaged or stale export is detected,
removed and made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facepipe.devices import Device
from facepipe.engines.onnx_runtime import OnnxRunner, Optimization
from facepipe.errors import ConfigError, PluginError, PluginUnavailableError
from facepipe.files import atomic_path, atomic_write_text, file_lock, sha256_file

__all__ = ["ONNX_EXPORT_VERSION", "ONNX_OPSET", "export_onnx", "onnx_cache_path", "open_or_export"]

log = logging.getLogger("facepipe.engines.onnx")

#: bump when the export recipe changes: files exported by an older recipe are then not reused
ONNX_EXPORT_VERSION = 2
#: ONNX opset of exported files (supported by onnxruntime >= 1.14)
ONNX_OPSET = 17


def export_onnx(model: Any, path: Path) -> None:
    """Write ``model`` (single input, any batch size) as an ONNX file at ``path``.

    Plain chains of layers are written directly (:mod:`facepipe.engines.onnx_chain`).  Others, on
    the TensorFlow backend: the model's fixed-signature graph function converted by tf2onnx; other
    backends: Keras' own exporter (``model.export(format="onnx")``).
    """
    import importlib.util

    import keras

    from facepipe.engines.onnx_chain import export_chain_onnx

    if export_chain_onnx(model, path, opset=ONNX_OPSET):
        return  # a plain layer chain (VGG family, Emotion): written directly, any backend
    if keras.backend.backend() == "tensorflow":
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


_SOURCE_DIGESTS: dict[str, str] = {}


def _source_digest(cls: type) -> str:
    """Digest of the source folders of ``cls`` and its bases (architecture code), so code changes re-export."""
    folders = sorted({
        str(Path(sys.modules[c.__module__].__file__ or "").parent)
        for c in cls.__mro__
        if c.__module__.startswith(("facepipe.plugins", "facepipe.engines"))
        and getattr(sys.modules.get(c.__module__), "__file__", None)
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


def onnx_cache_path(cls: type, weights: Path, folder: Path, stem: str = "") -> Path:
    """Where the export of plugin class ``cls`` with ``weights`` is cached inside ``folder``.

    The name holds a digest of the class, its source folders, the weight file (path, size,
    mtime) and the export recipe, so any change of these exports anew.
    """
    weights = Path(weights).resolve()
    stat = weights.stat()
    key = json.dumps({
        "recipe": [ONNX_EXPORT_VERSION, ONNX_OPSET],
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "source": _source_digest(cls),
        "weights": [str(weights), stat.st_size, stat.st_mtime_ns],
        "keras": _package_version("keras"),
    }, sort_keys=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem or cls.__name__)
    return Path(folder) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"


def _read_cached(path: Path, device: str | Device | None, optimization: Optimization) -> OnnxRunner | None:
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
        ok = (meta.get("key") == path.stem and meta.get("size") == stat.st_size
              and (untouched or meta.get("sha256") == sha256_file(path)))
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


def open_or_export(path: Path, model: Callable[[], Any], *, device: str | Device | None = None,
                   optimization: Optimization = "all", about: dict[str, Any] | None = None,
                   exported: Callable[[], None] | None = None,
                   writer: Callable[[Any, Path], None] | None = None) -> OnnxRunner:
    """The runner of the cached export at ``path``; when missing or bad, export ``model()`` there first.

    ``about`` is added to the sidecar (what was exported, from which weights); ``exported`` is
    called after a fresh export, e.g. to free the Keras model (onnxruntime holds its own copy).
    ``writer(model(), target)`` writes the file (default :func:`export_onnx`, a Keras model); other
    writers export other sources, e.g. a Keras HDF5 file without Keras (``keras_h5_onnx``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):  # one exporter per file across processes
        runner = _read_cached(path, device, optimization)
        if runner is not None:
            return runner
        log.info("exporting %s to ONNX at %s (once; later runs reuse it)", path.stem, path)
        with atomic_path(path, suffix=".tmp.onnx") as tmp:
            (writer or export_onnx)(model(), tmp)
            stat = tmp.stat()  # the rename keeps size and modification time
            meta = {"key": path.stem, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                    "sha256": sha256_file(tmp), **(about or {}), "opset": ONNX_OPSET}
        atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
        if exported is not None:
            exported()
        try:
            return OnnxRunner(path, device, optimization)
        except ConfigError:
            raise
        except Exception as exc:
            raise PluginError(f"onnxruntime could not load the fresh export {path}: {exc}") from exc
