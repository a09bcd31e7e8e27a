"""One ``device`` vocabulary for every plugin, and its translations to each runtime.

A plugin option ``device`` takes ``"cpu"``, ``"cuda"`` (the first GPU, or the runtime's choice)
or ``"cuda:N"``; case does not matter.  The older spellings stay valid and mean the same:
``"gpu"`` / ``"gpu:N"`` / ``"GPU:N"`` (TensorFlow's), ``"CPU:0"`` and ``"/device:GPU:0"``.
``None`` leaves the choice to the runtime.

Translations: :func:`onnx_providers` (ONNX Runtime), :func:`tensorflow_device` (``tf.device`` /
``mtcnn``), :func:`torch_device` (a ``torch.device`` string) and :func:`keras_device` (the name
``keras.device`` expects on a given backend).  No runtime is imported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Iterable, Literal

from pydantic import AfterValidator

from facepipe.errors import ConfigError

__all__ = [
    "Device", "DeviceName", "parse_device", "device_name",
    "onnx_providers", "tensorflow_device", "torch_device", "keras_device",
]

_DEVICE_RE = re.compile(r"^(?:/device:)?(cpu|gpu|cuda)(?::(\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Device:
    """A parsed device: ``kind`` is ``"cpu"`` or ``"cuda"``; ``index`` is None for "any GPU"."""

    kind: Literal["cpu", "cuda"]
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def gpu_index(self) -> int:
        """The GPU number (0 when none was given)."""
        return self.index or 0


def parse_device(value: str | Device | None) -> Device | None:
    """Parse a ``device`` option; None stays None.  Anything else raises :class:`ConfigError`."""
    if value is None or isinstance(value, Device):
        return value
    match = _DEVICE_RE.match(str(value).strip())
    if match is None:
        raise ConfigError(
            f"device {value!r} is not a device name; use 'cpu', 'cuda' or 'cuda:N' "
            "(older spellings 'gpu', 'gpu:N' and 'CPU:0' are accepted too)"
        )
    kind, index = match.group(1).lower(), match.group(2)
    if kind == "cpu":
        return Device("cpu")  # one CPU device: an index ("CPU:0") adds nothing
    return Device("cuda", int(index) if index is not None else None)


def device_name(value: str | Device | None) -> str | None:
    """The canonical spelling (``"cpu"``, ``"cuda"``, ``"cuda:N"``) of a ``device`` option."""
    device = parse_device(value)
    return None if device is None else str(device)


def _validated(value: str | None) -> str | None:
    try:
        return device_name(value)
    except ConfigError as exc:  # pydantic reports ValueErrors with the field name
        raise ValueError(str(exc)) from None


#: Field type of a plugin's ``device`` option: checked and stored in its canonical spelling.
DeviceName = Annotated[str | None, AfterValidator(_validated)]


def onnx_providers(value: str | Device | None, available: Iterable[str]) -> list[Any]:
    """ONNX Runtime execution providers for a device, given the ones this onnxruntime has.

    CPU (or None) runs on the CPU provider only; a GPU asks for CUDA with the CPU as fallback for
    the operators CUDA lacks, and is an error when this onnxruntime has no CUDA provider.
    """
    device = parse_device(value)
    if device is None or device.kind == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in set(available):
        raise ConfigError(
            f"device {str(device)!r}: this onnxruntime has no CUDA provider (install onnxruntime-gpu) "
            "- use device='cpu'"
        )
    return [("CUDAExecutionProvider", {"device_id": device.gpu_index}), "CPUExecutionProvider"]


def tensorflow_device(value: str | Device | None) -> str | None:
    """TensorFlow's spelling: ``"CPU:0"`` or ``"GPU:N"`` (None stays None)."""
    device = parse_device(value)
    if device is None:
        return None
    return "CPU:0" if device.kind == "cpu" else f"GPU:{device.gpu_index}"


def torch_device(value: str | Device | None) -> str | None:
    """A ``torch.device`` string: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (None stays None)."""
    device = parse_device(value)
    return None if device is None else str(device)


def keras_device(value: str | Device | None, backend: str) -> str | None:
    """The name ``keras.device`` expects on ``backend`` (``"gpu:N"`` on TensorFlow, ``"cuda:N"`` on torch)."""
    device = parse_device(value)
    if device is None:
        return None
    if device.kind == "cpu":
        return "cpu"
    kind = "gpu" if backend == "tensorflow" else "cuda" if backend == "torch" else "gpu"
    return kind if device.index is None else f"{kind}:{device.index}"
