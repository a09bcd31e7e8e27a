"""facepipe.devices: one device vocabulary and its translation to each runtime."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from facepipe.devices import (
    Device,
    DeviceName,
    device_name,
    keras_device,
    onnx_providers,
    parse_device,
    tensorflow_device,
    torch_device,
)
from facepipe.errors import ConfigError


@pytest.mark.parametrize("given, canonical", [
    ("cpu", "cpu"), ("CPU", "cpu"), ("CPU:0", "cpu"), (" cpu ", "cpu"),
    ("cuda", "cuda"), ("CUDA:1", "cuda:1"), ("gpu", "cuda"), ("gpu:0", "cuda:0"),
    ("GPU:2", "cuda:2"), ("/device:GPU:0", "cuda:0"), (None, None),
])
def test_spellings_map_to_one_vocabulary(given: str | None, canonical: str | None) -> None:
    assert device_name(given) == canonical


@pytest.mark.parametrize("bad", ["tpu", "potato", "cuda:x", "cuda:-1", "", "cpu:0:1"])
def test_unknown_devices_are_clear_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a device name; use 'cpu', 'cuda' or 'cuda:N'"):
        parse_device(bad)


def test_config_field_stores_the_canonical_name() -> None:
    class Config(BaseModel):
        device: DeviceName = None

    assert Config(device="GPU:1").device == "cuda:1"
    assert Config().device is None
    with pytest.raises(ValidationError, match="device 'potato' is not a device name"):
        Config(device="potato")


def test_onnx_runtime_providers() -> None:
    cpu_only = ["CPUExecutionProvider"]
    assert onnx_providers(None, cpu_only) == cpu_only
    assert onnx_providers("CPU:0", cpu_only) == cpu_only
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("cuda:1", with_cuda) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert onnx_providers("gpu", with_cuda)[0] == ("CUDAExecutionProvider", {"device_id": 0})
    with pytest.raises(ConfigError, match="no CUDA provider"):
        onnx_providers("cuda", cpu_only)


def test_tensorflow_torch_and_keras_spellings() -> None:
    assert tensorflow_device("cpu") == "CPU:0" and tensorflow_device("cuda:3") == "GPU:3"
    assert tensorflow_device("cuda") == "GPU:0" and tensorflow_device(None) is None
    assert torch_device("GPU:1") == "cuda:1" and torch_device("CPU:0") == "cpu" and torch_device(None) is None
    assert keras_device("cuda:1", "tensorflow") == "gpu:1"
    assert keras_device("gpu:1", "torch") == "cuda:1"
    assert keras_device("CPU:0", "torch") == "cpu"
    assert keras_device("cuda", "tensorflow") == "gpu"


def test_parsed_device_record() -> None:
    assert parse_device("cuda:2") == Device("cuda", 2)
    assert parse_device(Device("cpu")) == Device("cpu")
    assert str(Device("cuda")) == "cuda" and Device("cuda").gpu_index == 0
