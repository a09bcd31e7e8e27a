"""An SFace stand-in: a tiny random ONNX network with the real model's signature.

The real ``face_recognition_sface_2021dec.onnx`` cannot be downloaded in tests; this graph has its
input (``data`` float32 [1, 3, 112, 112]) and output (``fc1`` [1, 128]), so OpenCV's
``FaceRecognizerSF`` loads it through the plugin's normal path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.extras import need


def make_sface_like_onnx(path: Path, seed: int = 0) -> Path:
    """A tiny conv -> ReLU -> global pool -> Gemm network with SFace's input/output signature."""
    onnx = need("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    # Per-channel different filters, so that a channel-order mistake changes the output.
    w1 = rng.normal(0, 0.02, (16, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 16).astype(np.float32)
    w2 = rng.normal(0, 0.5, (16, 128)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 128).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["data", "w1", "b1"], ["conv"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w2", "b2"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes, "sface_like",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 128])],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7  # readable by older onnxruntime / OpenCV builds too
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
