"""Write a plain chain of Keras layers (VGG-style networks) straight to ONNX, without tf2onnx.

tf2onnx converts through a frozen TensorFlow graph and needs ~40x the weights in memory for the
VGG family (measured: 23 GiB for VGG-Face's 580 MB).  The VGG-16 face networks (VGG-Face, Age,
Gender, Race) and deepface's Emotion CNN are simple chains - convolution, pooling, dense,
flatten, activations - so their ONNX graph is written here directly from the loaded weights, with
~2x the weights in memory and in about a second.

:func:`export_chain_onnx` returns False (writing nothing) for any model that is not such a chain,
so callers fall back to the general exporter.  Layout: the input stays NHWC like the Keras model
(one Transpose to NCHW at the start, and back before a Flatten), outputs match Keras'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Keras activations with a one-node ONNX equivalent (None: nothing to add)
_ACTIVATIONS = {"linear": None, "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}


class _Unsupported(Exception):
    """The model is not a chain of supported layers."""


def _chain(model: Any) -> list[Any]:
    """The model's layers in order, if each one consumes the previous one's output."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not layers:
        raise _Unsupported("not single-input, single-output")
    previous = model.inputs[0]
    for layer in layers:
        try:
            consumed = layer.input
        except (AttributeError, ValueError) as exc:
            raise _Unsupported(f"{layer.name}: {exc}") from None
        if consumed is not previous:
            raise _Unsupported(f"{layer.name} does not follow the previous layer")
        previous = layer.output
    if previous is not model.outputs[0]:
        raise _Unsupported("the last layer is not the output")
    return layers


class _Graph:
    """Accumulates ONNX nodes and initializers while walking the chain."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def weight(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _activation(graph: _Graph, layer: Any, x: str, rank: int) -> str:
    fn = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if fn not in _ACTIVATIONS:
        raise _Unsupported(f"{layer.name}: activation {fn!r}")
    op = _ACTIVATIONS[fn]
    if op is None:
        return x
    if op == "Softmax":
        if rank != 2:
            raise _Unsupported(f"{layer.name}: softmax on a feature map")
        return graph.node("Softmax", [x], f"{layer.name}_softmax", axis=-1)
    return graph.node(op, [x], f"{layer.name}_{op.lower()}")


def _numpy(variable: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _conv(graph: _Graph, layer: Any, x: str) -> str:
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last" or cfg.get("groups", 1) != 1:
        raise _Unsupported(f"{layer.name}: layout/groups")
    if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
        raise _Unsupported(f"{layer.name}: dilation")
    kh, kw = layer.kernel.shape[:2]
    strides = list(cfg["strides"])
    if cfg["padding"] == "valid":
        pads = [0, 0, 0, 0]
    elif cfg["padding"] == "same" and strides == [1, 1]:
        # TensorFlow's 'same': the odd pixel of padding goes after (bottom / right)
        pads = [(kh - 1) // 2, (kw - 1) // 2, kh - 1 - (kh - 1) // 2, kw - 1 - (kw - 1) // 2]
    else:
        raise _Unsupported(f"{layer.name}: padding {cfg['padding']!r} with strides {strides}")
    inputs = [x, graph.weight(f"{layer.name}_kernel", _numpy(layer.kernel).transpose(3, 2, 0, 1))]
    if layer.use_bias:
        inputs.append(graph.weight(f"{layer.name}_bias", _numpy(layer.bias)))
    y = graph.node("Conv", inputs, layer.name, kernel_shape=[kh, kw], strides=strides, pads=pads)
    return _activation(graph, layer, y, 4)


def _pool(graph: _Graph, layer: Any, x: str, op: str) -> str:
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last" or cfg["padding"] != "valid":
        raise _Unsupported(f"{layer.name}: only valid channels-last pooling")
    return graph.node(op, [x], layer.name, kernel_shape=list(cfg["pool_size"]), strides=list(cfg["strides"]))


def _dense(graph: _Graph, layer: Any, x: str) -> str:
    y = graph.node("MatMul", [x, graph.weight(f"{layer.name}_kernel", _numpy(layer.kernel))], layer.name)
    if layer.use_bias:
        y = graph.node("Add", [y, graph.weight(f"{layer.name}_bias", _numpy(layer.bias))], f"{layer.name}_bias")
    return _activation(graph, layer, y, 2)


def _build(model: Any, opset: int) -> Any:
    from onnx import TensorProto, helper

    layers = _chain(model)
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise _Unsupported("input is not an image batch (N, H, W, C)")
    graph = _Graph()
    x = graph.node("Transpose", ["input"], "to_nchw", perm=[0, 3, 1, 2])
    rank = 4
    for layer in layers:
        kind = type(layer).__name__
        if kind == "Conv2D" and rank == 4:
            x = _conv(graph, layer, x)
        elif kind == "MaxPooling2D" and rank == 4:
            x = _pool(graph, layer, x, "MaxPool")
        elif kind == "AveragePooling2D" and rank == 4:
            x = _pool(graph, layer, x, "AveragePool")
        elif kind == "Dropout":
            continue  # inference: identity
        elif kind == "Flatten":
            if rank == 4:  # Keras flattens in (H, W, C) order
                x = graph.node("Transpose", [x], "to_nhwc", perm=[0, 2, 3, 1])
            x = graph.node("Flatten", [x], layer.name, axis=1)
            rank = 2
        elif kind == "Dense" and rank == 2:
            x = _dense(graph, layer, x)
        elif kind == "Activation":
            x = _activation(graph, layer, x, rank)
        elif kind == "Softmax":
            if rank != 2 or layer.get_config().get("axis", -1) not in (-1, 1):
                raise _Unsupported(f"{layer.name}: softmax over a feature map or another axis")
            x = graph.node("Softmax", [x], layer.name, axis=-1)
        else:
            raise _Unsupported(f"{layer.name}: {kind} (rank {rank})")
    if rank != 2:
        raise _Unsupported("the output is not a flat vector per image")
    out_dim = int(model.outputs[0].shape[-1])
    graph.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    onnx_graph = helper.make_graph(
        graph.nodes, model.name or "model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *shape[1:]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", out_dim])],
        initializer=graph.weights,
    )
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version that carries this opset, not the installed onnx's newest: a newer IR
    # than the onnxruntime at hand knows makes the file unloadable (onnx 1.23 writes IR 14,
    # onnxruntime 1.30 reads up to 13; facepipe accepts onnxruntime >= 1.16).
    return helper.make_model(onnx_graph, opset_imports=opsets, producer_name="facepipe",
                             ir_version=helper.find_min_ir_version_for(opsets))


def export_chain_onnx(model: Any, path: str | Path, opset: int = 13) -> bool:
    """Write ``model`` to ``path`` as ONNX if it is a chain of supported layers; else False."""
    import onnx

    try:
        proto = _build(model, opset)
    except _Unsupported:
        return False
    onnx.save(proto, str(path))
    return True


__all__ = ["export_chain_onnx"]
