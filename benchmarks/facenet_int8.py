"""Experiment: how fast could Facenet go on these CPUs?  fp32 floor versus int8 quantization.

Not a facepipe feature: a measurement behind the issue's Facenet goals (1 face <= 15 ms, batch 32
>= 120 faces/s on 2 cores).  It

1. exports Facenet (synthetic deepface-format weights) to ONNX through facepipe's own
   ``engine="onnx"`` path (cached), and counts the network's multiply-adds from the graph;
2. times onnxruntime fp32 at 1 thread and at 2 threads (1 face, 8 and 32 faces per call) and
   prints the arithmetic rate reached, next to the cores' AVX2 FMA peak;
3. quantizes the same graph to int8 (onnxruntime static quantization, QDQ, per-channel weights,
   calibrated on ``--calibration`` real face crops from the shared photos) and times it the same
   way;
4. prints how closely the int8 embeddings follow fp32 (cosine similarity on other crops).

Synthetic weights make step 4 a check of numerical fidelity only, not of recognition accuracy:
int8 accuracy on real Facenet weights cannot be measured here, which is why facepipe does not
ship an int8 mode.

    python benchmarks/facenet_int8.py
    python benchmarks/facenet_int8.py --calibration 32 --repeats 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as bc  # noqa: E402


def multiply_adds(path: Path) -> int:
    """Multiply-adds of one face through the Conv / MatMul / Gemm nodes of an ONNX graph."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for dim in model.graph.input[0].type.tensor_type.shape.dim:
        if dim.dim_param or not dim.dim_value:
            dim.dim_value = 1
            break
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output)}
    weights = {w.name: list(w.dims) for w in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        kernel = weights.get(node.input[1]) if len(node.input) > 1 else None
        if kernel is None:
            continue
        if node.op_type == "Conv" and node.output[0] in shapes:
            total += int(np.prod(shapes[node.output[0]])) * int(np.prod(kernel[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            total += int(np.prod(kernel))
    return total


def time_session(path: Path, batches: dict[int, np.ndarray], threads: int, repeats: int) -> dict[int, float]:
    """Median seconds per call for each batch size."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = {}
    for size, batch in batches.items():
        for _ in range(2):
            session.run(None, {name: batch})
        times = []
        for _ in range(max(3, repeats if size == 1 else repeats // 4)):
            start = time.perf_counter()
            session.run(None, {name: batch})
            times.append(time.perf_counter() - start)
        out[size] = float(np.median(times))
    return out


def embeddings(path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=int, default=16, help="face crops used to calibrate int8")
    parser.add_argument("--repeats", type=int, default=12, help="timed 1-face calls (batches: a quarter)")
    parser.add_argument("--ghz", type=float, default=None,
                        help="core clock for the peak line (default: /proc/cpuinfo's 'cpu MHz')")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from facepipe import Pipeline
    from facepipe.weights import WeightsManager

    home = bc.BENCH_CACHE / "facepipe-home"
    bc.link_weights(home / "weights", {"facenet_weights.h5": bc.synthetic_weights("Facenet")})
    pipeline = Pipeline.from_config(
        {"detector": "skip", "recognizer": {"name": "Facenet", "engine": "onnx"}},
        weights=WeightsManager(home=home, offline=True))
    recognizer = pipeline.recognizer
    fp32 = Path(recognizer.onnx_runner.path)

    crops = bc.face_crops(args.calibration + 32)
    prepared = recognizer.preprocess(crops)
    calibration, held_out = prepared[:args.calibration], prepared[args.calibration:]
    batches = {1: held_out[:1], 8: held_out[:8], 32: held_out[:32]}

    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        """One calibration face per call."""

        def __init__(self) -> None:
            self.items = iter(calibration[i:i + 1] for i in range(len(calibration)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.items, None)
            return None if item is None else {input_name: item}
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        int8 = Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32), str(pre))
        quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        macs = multiply_adds(fp32)
        rows = []
        results = {}
        for label, path, threads in (("fp32", fp32, 1), ("fp32", fp32, 2), ("int8", int8, 2)):
            timing = time_session(path, batches, threads, args.repeats)
            results[(label, threads)] = timing
            rows.append([label, str(threads), f"{timing[1] * 1000:.1f}", f"{8 / timing[8]:.0f}",
                         f"{32 / timing[32]:.0f}", f"{2 * macs * 32 / timing[32] / 1e9:.0f}"])
        a, b = embeddings(fp32, held_out), embeddings(int8, held_out)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    ghz = args.ghz
    if ghz is None:
        try:
            mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
            ghz = max(mhz) / 1000 if mhz else None
        except OSError:
            ghz = None
    print(f"Facenet (synthetic weights): {macs / 1e9:.3f} G multiply-adds = {2 * macs / 1e9:.2f} GFLOP per face; "
          f"{os.cpu_count()} CPUs; load {bc.machine_load().get('loadavg')}")
    bc.print_table(["precision", "threads", "1 face ms", "b8 faces/s", "b32 faces/s", "b32 GFLOP/s (fp32-equiv.)"],
                   rows)
    if ghz:
        print(f"AVX2 FMA peak at {ghz:.2f} GHz: {ghz * 32:.0f} GFLOP/s per core (2 FMA x 8 fp32 lanes x 2), "
              f"{ghz * 64:.0f} for 2 cores; 120 faces/s needs {2 * macs * 120 / 1e9:.0f} GFLOP/s in fp32")
    print(f"int8 vs fp32 embeddings on {len(held_out)} held-out crops: cosine min {cosine.min():.4f}, "
          f"median {np.median(cosine):.4f} (synthetic weights: fidelity, not accuracy)")
    int8_timing = results[("int8", 2)]
    print(f"goals with int8: 1 face {int8_timing[1] * 1000:.1f} ms (<= 15), "
          f"b32 {32 / int8_timing[32]:.0f} faces/s (>= 120)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
