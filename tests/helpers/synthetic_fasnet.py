"""Synthetic MiniFASNet ONNX graphs with the published files' signature, for the Fasnet tests.

deepface publishes ``2.7_80x80_MiniFASNetV2.onnx`` and ``4_0_0_80x80_MiniFASNetV1SE.onnx``:
channels-last ``(N, 80, 80, 3)`` float input, a transpose, Minivision's MiniFASNet (conv /
depthwise / projection blocks, squeeze-excitation in V1SE), and the softmax baked in, giving
``(N, 3)``.  This module writes graphs of that layer layout with seeded random weights through
the ``onnx`` helper API (no torch), so deepface's loader and facepipe's plugin both accept them.
The files are byte-identical for a seed and cached under ``.cache/synthetic/fasnet``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tests.helpers.synthetic_weights import CACHE

#: channel widths of the 49 convolutions, per variant (the "1.8M" pruning of Minivision's models)
_WIDTHS = {
    "V2": "32 32 103 103 64 13 13 64 13 13 64 13 13 64 13 13 64 231 231 128 231 231 128 52 52 128 "
          "26 26 128 77 77 128 26 26 128 26 26 128 308 308 128 26 26 128 26 26 128 512 512",
    "V1SE": "32 32 103 103 64 13 13 64 26 26 64 13 13 64 52 52 64 231 231 128 154 154 128 52 52 128 "
            "26 26 128 52 52 128 26 26 128 26 26 128 308 308 128 26 26 128 26 26 128 512 512",
}
FILE_NAMES = {"V2": "2.7_80x80_MiniFASNetV2.onnx", "V1SE": "4_0_0_80x80_MiniFASNetV1SE.onnx"}
EMBEDDING = 128
CLASSES = 3


class _Graph:
    """Collects nodes and seeded initializers of one MiniFASNet."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.params: list = []
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def param(self, stem: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name(stem)
        self.params.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        from onnx import helper

        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    # -- layers -----------------------------------------------------------------------------
    def conv(self, x: str, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             gain: float = 1.0) -> str:
        fan_in = c_in // groups * kernel * kernel
        w = self.rng.standard_normal((c_out, c_in // groups, kernel, kernel)) * gain * np.sqrt(2.0 / fan_in)
        pad = kernel // 2 if kernel == 3 else 0
        return self.node("Conv", [x, self.param("w", w)], kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad] * 4, group=groups)

    def batch_norm(self, x: str, channels: int) -> str:
        scale = 1.0 + 0.1 * self.rng.standard_normal(channels)
        bias = 0.1 * self.rng.standard_normal(channels)
        mean = 0.1 * self.rng.standard_normal(channels)
        var = 1.0 + 0.2 * self.rng.random(channels)
        names = [self.param(stem, a) for stem, a in (("gamma", scale), ("beta", bias), ("mean", mean), ("var", var))]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-5)

    def prelu(self, x: str, channels: int) -> str:
        slope = 0.25 + 0.05 * self.rng.standard_normal((channels, 1, 1))
        return self.node("PRelu", [x, self.param("slope", slope)])

    def conv_bn(self, x: str, c_in: int, c_out: int, act: bool = True, **conv: object) -> str:
        y = self.batch_norm(self.conv(x, c_in, c_out, **conv), c_out)  # type: ignore[arg-type]
        return self.prelu(y, c_out) if act else y

    def squeeze_excite(self, x: str, channels: int, reduction: int = 4) -> str:
        hidden = channels // reduction
        s = self.node("GlobalAveragePool", [x])
        s = self.node("Relu", [self.batch_norm(self.conv(s, channels, hidden), hidden)])
        s = self.node("Sigmoid", [self.batch_norm(self.conv(s, hidden, channels), channels)])
        return self.node("Mul", [x, s])

    def block(self, x: str, widths: list[int], stride: int, residual: bool, se: bool = False) -> str:
        """Expand (1x1), depthwise 3x3, project (1x1, no activation), optional SE and shortcut."""
        c_in, expand, depth, out = widths
        y = self.conv_bn(x, c_in, expand)
        y = self.conv_bn(y, expand, depth, kernel=3, stride=stride, groups=expand)
        y = self.conv_bn(y, depth, out, act=False, gain=0.5 if residual else 1.0)
        if se:
            y = self.squeeze_excite(y, out)
        return self.node("Add", [x, y]) if residual else y

    def dense(self, x: str, n_in: int, n_out: int, gain: float) -> str:
        w = self.rng.standard_normal((n_in, n_out)) * gain / np.sqrt(n_in)
        return self.node("MatMul", [x, self.param("fc", w)])


def _stage(g: _Graph, x: str, keep: list[int], start: int, blocks: int, se: bool) -> tuple[str, int]:
    # Residual blocks i read widths keep[start + 3i - 1 .. start + 3i + 2]; SE only on the last one.
    for i in range(blocks):
        j = start + 3 * i
        x = g.block(x, [keep[j - 1], keep[j], keep[j + 1], keep[j + 2]], 1, True, se and i == blocks - 1)
    return x, start + 3 * blocks


#: logit offsets that make a graph lean to one class, for tests that need a known verdict
LEANS = {"": (0.0, 0.0, 0.0), "real": (0.0, 12.0, 0.0), "fake": (12.0, 0.0, 0.0)}


def build_minifasnet(variant: str, seed: int, lean: str = "") -> "object":
    """The ``onnx.ModelProto`` of MiniFASNet ``variant`` ("V2" or "V1SE") with seeded weights;
    ``lean`` ("real" / "fake") adds a large logit offset so every face gets that verdict."""
    from onnx import TensorProto, helper

    keep = [int(v) for v in _WIDTHS[variant].split()]
    se = variant == "V1SE"
    g = _Graph(seed)
    x = g.node("Transpose", ["input"], perm=[0, 3, 1, 2])  # channels last in, as deepface feeds it
    x = g.conv_bn(x, 3, keep[0], kernel=3, stride=2, gain=1 / 128)  # pixels arrive in [0, 255]
    x = g.conv_bn(x, keep[0], keep[1], kernel=3, groups=keep[1])
    x = g.block(x, [keep[1], keep[2], keep[3], keep[4]], 2, False)
    x, _ = _stage(g, x, keep, 5, 4, se)
    x = g.block(x, [keep[16], keep[17], keep[18], keep[19]], 2, False)
    x, _ = _stage(g, x, keep, 20, 6, se)
    x = g.block(x, [keep[37], keep[38], keep[39], keep[40]], 2, False)
    x, _ = _stage(g, x, keep, 41, 2, se)
    x = g.conv_bn(x, keep[46], keep[47])
    x = g.conv_bn(x, keep[47], keep[48], act=False, kernel=5, groups=keep[48])  # 5x5 -> 1x1
    x = g.node("Flatten", [x])
    x = g.dense(x, 512, EMBEDDING, gain=1.0)
    x = _batch_norm_1d(g, x, EMBEDDING)
    # A small gain keeps the softmax away from 0/1, so scores move with the patch.
    logits = g.node("Add", [g.dense(x, EMBEDDING, CLASSES, gain=0.3), g.param("bias", np.array(LEANS[lean]))])
    g.nodes.append(helper.make_node("Softmax", [logits], ["output"], axis=1))
    graph = helper.make_graph(
        g.nodes, f"MiniFASNet{variant}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 80, 80, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", CLASSES])],
        g.params,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facepipe-tests")
    model.ir_version = 8
    return model


def _batch_norm_1d(g: _Graph, x: str, n: int) -> str:
    # BatchNorm1d over (N, C) in eval mode is a per-feature affine map.
    scale = (1.0 + 0.1 * g.rng.standard_normal(n)) / np.sqrt(1.0 + 0.2 * g.rng.random(n))
    shift = 0.1 * g.rng.standard_normal(n)
    return g.node("Add", [g.node("Mul", [x, g.param("bn_scale", scale)]), g.param("bn_shift", shift)])


def weights_digest(path: Path) -> str:
    """sha256 of a graph's initializer values (stable across onnx versions, unlike the file bytes)."""
    import onnx
    from onnx import numpy_helper

    digest = hashlib.sha256()
    for tensor in onnx.load(str(path)).graph.initializer:
        digest.update(np.ascontiguousarray(numpy_helper.to_array(tensor), dtype="<f4").tobytes())
    return digest.hexdigest()


def synthetic_fasnet(seed: int = 1, lean: str = "") -> dict[str, Path]:
    """Write (once) both synthetic graphs for ``seed``; returns {"V2": path, "V1SE": path}.

    The files keep deepface's names, so their folder can stand in for a weights cache."""
    import onnx

    out_dir = CACHE / f"seed{seed}" / f"Fasnet{'-' + lean if lean else ''}"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index, (variant, name) in enumerate(FILE_NAMES.items()):
        path = out_dir / name
        if not path.is_file():
            tmp = path.with_suffix(f".{os.getpid()}.part")  # unique: parallel writers do not collide
            onnx.save(build_minifasnet(variant, seed * 100 + index, lean), str(tmp))
            tmp.replace(path)
        paths[variant] = path
    return paths
