"""Tiny stand-ins for detector weights no package ships: a YuNet-shaped ONNX graph and a
weight-free Caffe SSD.  Their outputs are known in advance, so tests can check the plugins' decoding
(used by ``plugins/detectors/test_detectors_synthetic.py`` and the conformance tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.extras import need

YUNET_FILE = "face_detection_yunet_2023mar.onnx"
# constant head outputs of the generated YuNet at stride 32 (offsets in stride units, log sizes)
BBOX = (0.5, 0.5, float(np.log(2.0)), float(np.log(2.5)))  # centre of the cell, 64 x 80 px
KPS = (0.2, 0.3, 0.8, 0.3, 0.5, 0.55, 0.3, 0.8, 0.7, 0.8)  # re, le, nose, right/left mouth corner


# ============================================================================== YuNet
def make_yunet_onnx(path: Path) -> Path:
    """Write a YuNet-2023mar-shaped ONNX graph: input ``input`` [1, 3, H, W]; outputs
    ``{cls,obj,bbox,kps}_{8,16,32}`` of shape [1, H*W/s², 1|1|4|10]."""
    onnx = need("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, outputs = [], [], []
    for kind, ch in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
        for s in (8, 16, 32):
            name = f"{kind}_{s}"
            w = np.zeros((ch, 3, s, s), np.float32)  # an s x s / stride s conv: one value per cell
            b = np.zeros(ch, np.float32)
            if s == 32:  # only the stride-32 head ever fires
                if kind == "cls":
                    w[0, 2] = 1.0 / (255.0 * s * s)  # mean of blob channel 2 (red: the blob is BGR) / 255
                elif kind == "obj":
                    b[:] = 1.0
                elif kind == "bbox":
                    b[:] = BBOX
                else:
                    b[:] = KPS
            inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b"),
                      numpy_helper.from_array(np.array([1, ch, -1], np.int64), f"{name}_shape")]
            nodes += [helper.make_node("Conv", ["input", f"{name}_w", f"{name}_b"], [f"{name}_conv"],
                                       kernel_shape=[s, s], strides=[s, s]),
                      helper.make_node("Reshape", [f"{name}_conv", f"{name}_shape"], [f"{name}_flat"]),
                      helper.make_node("Transpose", [f"{name}_flat"], [name], perm=[0, 2, 1])]
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, ch]))
    graph = helper.make_graph(
        nodes, "yunet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# No learned weights: the face score is softmax over (G, R) of the mean-subtracted, globally pooled
# input, i.e. sigmoid(R - G); location offsets are zeroed so the box is the single prior box,
# the central third of the image.
MINI_PROTOTXT = """name: "mini_ssd"
input: "data"
input_shape { dim: 1 dim: 3 dim: 300 dim: 300 }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { pool: AVE kernel_size: 300 stride: 300 } }
layer { name: "cat" type: "Concat" bottom: "pool" bottom: "pool" top: "cat" concat_param { axis: 1 } }
layer { name: "slice" type: "Slice" bottom: "cat" top: "loc_raw" top: "conf_raw"
  slice_param { axis: 1 slice_point: 4 } }
layer { name: "loc_zero" type: "Power" bottom: "loc_raw" top: "loc_zero" power_param { power: 1 scale: 0 shift: 0 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_zero" top: "loc_flat" flatten_param { axis: 1 } }
layer { name: "conf_soft" type: "Softmax" bottom: "conf_raw" top: "conf_soft" softmax_param { axis: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_soft" top: "conf_flat" flatten_param { axis: 1 } }
layer { name: "prior" type: "PriorBox" bottom: "pool" bottom: "data" top: "prior"
  prior_box_param { min_size: 100 clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2
                    step: 300 offset: 0.5 } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_flat" bottom: "prior"
  top: "detection_out"
  detection_output_param { num_classes: 2 share_location: true background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 400 } code_type: CENTER_SIZE keep_top_k: 200
    confidence_threshold: 0.01 } }
"""
# A serialized Caffe NetParameter holding only its name (field 1): no layer blobs are needed.
MINI_CAFFEMODEL = b"\x0a\x08mini_ssd"
