"""The one way facepipe opens an ONNX Runtime session, and a runner for single-input models.

Every plugin that runs an ``.onnx`` file with onnxruntime goes through :func:`onnx_session`, so
threads, spinning, graph optimisation and the ``device`` vocabulary
(:mod:`facepipe.devices`) are set in one place.  onnxruntime is imported only when a session
is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facepipe.devices import Device, onnx_providers
from facepipe.errors import ConfigError, InputShapeError, WeightsError

__all__ = ["Optimization", "cpu_threads", "onnx_session", "OnnxRunner"]

#: onnxruntime graph optimisation: "all" adds blocked-layout convolutions (faster for most
#: models); "extended" starts much sooner for huge weight files (see :func:`onnx_session`)
Optimization = Literal["all", "extended"]


def cpu_threads() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return max(os.cpu_count() or 1, 1)


def onnx_session(path: str | os.PathLike[str], device: str | Device | None = None, *,
                 optimization: Optimization = "all", threads: int = 0) -> Any:
    """An ``onnxruntime.InferenceSession`` of the file at ``path``.

    ``device`` is a facepipe device name (None / "cpu": CPU only; "cuda[:N]": CUDA, CPU as the
    fallback).  ``threads`` is the intra-op thread count, 0 for every CPU this process may use.
    A file onnxruntime cannot load raises :class:`WeightsError` naming the file.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
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
    providers = onnx_providers(device, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except ConfigError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise WeightsError(f"{path} could not be loaded by ONNX Runtime: {exc}") from exc


def _static(dims: Any) -> tuple[int | None, ...]:
    # symbolic (batch) dimensions come back as strings
    return tuple(d if isinstance(d, int) else None for d in dims)


class OnnxRunner:
    """An onnxruntime session of a single-input, single-output model, run in chunks."""

    def __init__(self, path: str | os.PathLike[str], device: str | Device | None = None,
                 optimization: Optimization = "all") -> None:
        self.path = Path(path)
        self.session = onnx_session(self.path, device, optimization=optimization)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise WeightsError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; expected 1 and 1")
        self.input_name = inputs[0].name
        self.input_shape = _static(inputs[0].shape[1:])
        self.output_shape = _static(outputs[0].shape[1:])

    def run(self, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """float32 outputs of ``batch`` (N, ...), in chunks of ``batch_size``."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        expected = self.input_shape
        if x.ndim != len(expected) + 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            shape = ", ".join(str(e) for e in expected)
            raise InputShapeError(f"model {self.path.stem} expects input (N, {shape}) but got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, *(d or 0 for d in self.output_shape)), dtype=np.float32)
        step = max(int(batch_size), 1)
        outs = [
            np.asarray(self.session.run(None, {self.input_name: x[i:i + step]})[0], dtype=np.float32)
            for i in range(0, len(x), step)
        ]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)
