"""A small, deterministic stand-in for InsightFace's ``webface_r50.onnx`` (deepface's Buffalo_L).

The real 166 MB model cannot be downloaded here, so parity is checked on a tiny ResNet-style
graph with the real graph's signature: input ``input.1`` float32 ``[None, 3, 112, 112]``, one
output ``683`` ``[None, 512]``.  That is all InsightFace's ``get_model`` reads to route the file
to ``ArcFaceONNX``; the node names decide its input scaling:

* ``"pytorch"``: nodes named like a PyTorch export (``Conv_0``, ``PRelu_1``, ...): InsightFace
  feeds ``(x - 127.5) / 127.5``;
* ``"mxnet"``: the graph starts with ``_minus0`` (Sub) and ``_mul0`` (Mul) nodes, as MXNet exports
  do: InsightFace feeds raw 0..255 pixels.

Plain numpy + ``onnx`` only, so the parity tool can run it in deepface's side venv too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

Style = Literal["pytorch", "mxnet"]

INPUT_NAME = "input.1"
OUTPUT_NAME = "683"
SEED = 20250103


def _conv(rng: np.random.Generator, cin: int, cout: int, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    w = rng.normal(0.0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)).astype(np.float32)
    return w, rng.normal(0.0, 0.05, cout).astype(np.float32)


def buffalo_l_like_model(style: Style = "pytorch", seed: int = SEED):  # type: ignore[no-untyped-def]
    """The ``onnx.ModelProto``: conv/PReLU stem, a residual block, two strided convs, BN,
    flatten, a 512-wide Gemm and a final BatchNormalization (InsightFace's ``features``)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes = []

    def conv(name: str, x: str, cin: int, cout: int, stride: int) -> str:
        inits[f"{name}.w"], inits[f"{name}.b"] = _conv(rng, cin, cout)
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [name], name=name,
                                      kernel_shape=[3, 3], strides=[stride, stride], pads=[1, 1, 1, 1]))
        return name

    def prelu(name: str, x: str, channels: int) -> str:
        inits[f"{name}.slope"] = rng.uniform(0.1, 0.3, (channels, 1, 1)).astype(np.float32)
        nodes.append(helper.make_node("PRelu", [x, f"{name}.slope"], [name], name=name))
        return name

    def batch_norm(name: str, x: str, channels: int) -> str:
        inits[f"{name}.scale"] = rng.uniform(0.8, 1.2, channels).astype(np.float32)
        inits[f"{name}.bias"] = rng.normal(0.0, 0.1, channels).astype(np.float32)
        inits[f"{name}.mean"] = rng.normal(0.0, 0.1, channels).astype(np.float32)
        inits[f"{name}.var"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
        nodes.append(helper.make_node(
            "BatchNormalization", [x] + [f"{name}.{p}" for p in ("scale", "bias", "mean", "var")], [name],
            name=name, epsilon=2e-5))
        return name

    x = INPUT_NAME
    if style == "mxnet":
        # MXNet exports normalise inside the graph: (x - 127.5) * 0.0078125
        inits["minus_c"] = np.array(127.5, np.float32)
        inits["mul_c"] = np.array(0.0078125, np.float32)
        nodes.append(helper.make_node("Sub", [x, "minus_c"], ["_minus0"], name="_minus0"))
        nodes.append(helper.make_node("Mul", ["_minus0", "mul_c"], ["_mul0"], name="_mul0"))
        x = "_mul0"
    x = prelu("PRelu_1", conv("Conv_0", x, 3, 8, stride=2), 8)                      # 56x56
    y = prelu("PRelu_3", conv("Conv_2", x, 8, 8, stride=1), 8)
    y = conv("Conv_4", y, 8, 8, stride=1)
    nodes.append(helper.make_node("Add", [x, y], ["Add_5"], name="Add_5"))
    x = prelu("PRelu_7", conv("Conv_6", "Add_5", 8, 16, stride=2), 16)                # 28x28
    x = batch_norm("BatchNormalization_9", conv("Conv_8", x, 16, 16, stride=2), 16)  # 14x14
    nodes.append(helper.make_node("Flatten", [x], ["Flatten_10"], name="Flatten_10", axis=1))
    features = 16 * 14 * 14
    inits["fc.w"] = rng.normal(0.0, (1.0 / features) ** 0.5, (512, features)).astype(np.float32)
    inits["fc.b"] = rng.normal(0.0, 0.05, 512).astype(np.float32)
    nodes.append(helper.make_node("Gemm", ["Flatten_10", "fc.w", "fc.b"], ["Gemm_11"], name="Gemm_11", transB=1))
    batch_norm("BatchNormalization_12", "Gemm_11", 512)
    nodes[-1].output[0] = OUTPUT_NAME

    graph = helper.make_graph(
        nodes, "buffalo_l_like",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["None", 3, 112, 112])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["None", 512])],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7  # readable by older onnxruntime builds too
    return model


def write_buffalo_l_like(path: Path, style: Style = "pytorch", seed: int = SEED) -> Path:
    """Write the stand-in graph to ``path`` (folders created) and return ``path``."""
    import onnx

    model = buffalo_l_like_model(style, seed)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


#: (height, width) of the synthetic faces: square, portrait, landscape, larger than the input
FACE_SHAPES: tuple[tuple[int, int], ...] = ((112, 112), (150, 120), (90, 130), (200, 200))


def synthetic_faces(seed: int = 7) -> list[np.ndarray]:
    """BGR uint8 "faces": smooth colour gradients (different per channel) plus noise, so that
    resizing, padding and a channel-order mistake all change the embedding."""
    rng = np.random.default_rng(seed)
    faces = []
    for k, (h, w) in enumerate(FACE_SHAPES):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([
            128 + 100 * np.sin(xx / (9 + k) + yy / 23),
            128 + 90 * np.cos(yy / (11 + k)),
            128 + 80 * np.sin((xx + yy) / (17 + 2 * k)),
        ], axis=-1)
        noisy = base + rng.normal(0, 12, base.shape)
        faces.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return faces


#: dataset photos whose centre crops are also compared when ``$FACEPIPE_DATA`` is present
PHOTOS: tuple[str, ...] = ("img1.jpg", "img3.jpg", "img14.jpg")


def centre_crop(image: np.ndarray) -> np.ndarray:
    """The middle 3/5 of a photo in each direction (a non-square crop: exercises the padding)."""
    h, w = image.shape[:2]
    return np.ascontiguousarray(image[h // 5: 4 * h // 5, w // 5: 4 * w // 5])
