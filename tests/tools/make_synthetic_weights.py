#!/usr/bin/env python3
"""Write a deterministic SYNTHETIC weights file in deepface's Keras-2 HDF5 layout.

Input: a weights-layout manifest (``tests/reference/weights-manifest/<Model>.json``)
and an integer seed.  Output: an ``.h5`` file in the layout that Keras 2's
``model.save_weights("x.h5")`` writes (the "legacy HDF5" layout), which the
tf_keras / Keras 3 legacy loader used by deepface accepts for that model:

* root attributes: ``layer_names`` (array of byte strings, one per weighted
  layer, in manifest order; split into ``layer_names0``, ``layer_names1``, ...
  if it would exceed the 64512-byte HDF5 object-header limit, as Keras does),
  ``backend`` (``b"tensorflow"``) and ``keras_version`` (default ``b"2.2.4"``;
  any value other than ``"1"`` is read the same way);
* one group per layer, named after the layer, with attribute ``weight_names``
  (byte strings ``"<layer>/<variable>:0"``) and one float32 dataset per weight
  at that path inside the group (so ``<layer>/<layer>/kernel:0`` from the file
  root), exactly as Keras 2 nests them.

Only layers that own weights are written.  The loader matches layers by
POSITION (the names are informative only), so the file fits the model whose
weighted layers have the manifest's order, classes and shapes.  No
``top_level_model_weights`` group and no ``model_weights`` wrapper are written.

Dependencies: numpy and h5py only.

THE RECIPE (normative; re-implementable in any language)
--------------------------------------------------------
All integer arithmetic is on unsigned 64-bit integers modulo 2**64.

``mix64(z)`` is the SplitMix64 finaliser::

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    z =  z ^ (z >> 31)

Tensors are numbered ``t = 0, 1, 2, ...`` over the whole file in manifest
order: layers in order, and inside a layer its weights in order (the order of
the manifest's shape / variable-name lists).  For seed ``s`` (taken modulo
2**64; negative seeds are rejected)::

    key_t   = mix64(mix64(s) ^ t)
    word_j  = mix64(key_t + (j + 1) * 0x9E3779B97F4A7C15)      j = 0, 1, 2, ...

(``word_j`` is the j-th output of a SplitMix64 generator whose state starts at
``key_t``.)  Element ``i`` of the tensor, counted in C (row-major) order over
the manifest shape, gets one standard normal ``n_i`` by Box-Muller from two
words, computed in IEEE double precision::

    u1  = ((word_{2i}   >> 11) + 1) * 2**-53          # in (0, 1]
    u2  =  (word_{2i+1} >> 11)      * 2**-53          # in [0, 1)
    n_i = sqrt(-2 * ln(u1)) * cos(2 * pi * u2)

The stored value is ``float32(f(n_i))`` (computed in double, rounded once to
float32 at the end), where ``f`` depends on the weight variable name (the
manifest's 4th element; the part after the last "/" and before ":") and on the
layer class:

=====================  ==========================================  ==========
variable name          value                                       meaning
=====================  ==========================================  ==========
kernel,                n * (gain / sqrt(fan_in))                   He normal
depthwise_kernel                                                   if gain=√2
bias                   0.01 * n
gamma                  1 + 0.05 * n                                BN scale
beta                   0.05 * n                                    BN shift
moving_mean            0.05 * n
moving_variance        exp(0.1 * n)                                always > 0
alpha                  0.25 + 0.05 * n                             PReLU slope
=====================  ==========================================  ==========

``fan_in`` by layer class / variable (shape as in the manifest):

* ``depthwise_kernel`` (DepthwiseConv2D, shape ``kh, kw, cin, mult``):
  product of all dims except the last two (``kh*kw``);
* ``kernel`` of LocallyConnected1D/2D (shape ``positions, k*cin, filters``):
  ``shape[-2]``;
* any other ``kernel`` (Conv1D/2D/3D, Conv2DTranspose, Dense, ...): product of
  all dims except the last (``kh*kw*cin`` for Conv2D, ``in`` for Dense).

``gain`` is one number per file (``--kernel-gain``).  By default it is taken
from this table by the manifest's ``model`` field, else sqrt(2) (He):

===============  =======  ==================================================
model            gain     why
===============  =======  ==================================================
ArcFace          1.0      un-scaled residual blocks: with sqrt(2) every block
GhostFaceNet     1.0      ~triples the variance; outputs reach 4e4 (ArcFace) /
                          2.6e5 (GhostFaceNet) and float32 rounding shows
RetinaFace       0.8      residual ResNet-50 fed raw 0..255 pixels: with
                          larger gains the class softmax saturates to 0/1
everything else  sqrt(2)  (math.sqrt(2.0) in double precision)
===============  =======  ==================================================

Evaluation order (double precision): ``c = gain / sqrt(fan_in)`` first, then
``n * c``.  Any other variable name is an error (nothing in deepface's models
needs one).
A SHA-256 over the float32 little-endian bytes of all tensors, in file order,
is printed (``values_sha256``) so an in-memory re-implementation can be checked
against a file without comparing tensors one by one.

Why these numbers: He-normal kernels keep the activation scale of plain
ReLU/PReLU networks roughly constant with depth (residual ones get the smaller
gains above); BN layers are close to the identity
(gamma~1, beta~0, mean~0, var~1) but not exactly, so a re-implementation that
swaps BN variables or forgets epsilon is caught; PReLU slopes ~0.25 as at
initialisation in the original models.  deepface's own model inputs (faces
scaled to [0, 1]; raw 0..255 pixels for RetinaFace) then give finite,
input-dependent outputs of moderate size in every deepface model (checked for
all 13 manifests; see tests/reference/parity/README.md).

Examples::

    python make_synthetic_weights.py ../reference/weights-manifest/Facenet.json --seed 1 \\
        -o facenet_weights.h5
    python make_synthetic_weights.py ../reference/weights-manifest/VGG-Face.json --seed 1 \\
        --out-dir weights/          # writes weights/vgg_face_weights.h5 (manifest's name)

Python use (no file needed)::

    import make_synthetic_weights as msw
    manifest = msw.load_manifest("Facenet.json")
    for layer_idx, layer_name, var_name, value in msw.iter_tensors(manifest, seed=1):
        ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
HDF5_OBJECT_HEADER_LIMIT = 64512
CHUNK = 1 << 22  # elements generated per vectorised step (bounded memory)
DEFAULT_GAIN = math.sqrt(2.0)
# per-model kernel gain used when --kernel-gain is not given (see the recipe)
MODEL_GAINS = {"ArcFace": 1.0, "GhostFaceNet": 1.0, "RetinaFace": 0.8}


def default_gain(manifest: Dict[str, Any]) -> float:
    """The recipe's kernel gain for a manifest (by its "model" field)."""
    return MODEL_GAINS.get(str(manifest.get("model")), DEFAULT_GAIN)


# ----------------------------------------------------------------------------
# counter-based random numbers


def mix64_int(z: int) -> int:
    """SplitMix64 finaliser on a Python int (mod 2**64)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _mix64_np(z: np.ndarray) -> np.ndarray:
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(MIX1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def tensor_key(seed: int, tensor_index: int) -> int:
    if seed < 0 or tensor_index < 0:
        raise ValueError("seed and tensor index must be non-negative integers")
    return mix64_int(mix64_int(seed) ^ (tensor_index & MASK64))


def standard_normals(key: int, count: int, start: int = 0) -> np.ndarray:
    """n_i for i in [start, start+count) of the stream with the given key (float64)."""
    with np.errstate(over="ignore"):
        i = np.arange(start, start + count, dtype=np.uint64)
        j1 = np.uint64(2) * i + np.uint64(1)  # (2i) + 1
        k = np.uint64(key)
        g = np.uint64(GOLDEN)
        w1 = _mix64_np(k + j1 * g)
        w2 = _mix64_np(k + (j1 + np.uint64(1)) * g)
    u1 = ((w1 >> np.uint64(11)).astype(np.float64) + 1.0) * (2.0 ** -53)
    u2 = (w2 >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


# ----------------------------------------------------------------------------
# manifest handling


def load_manifest(path: str | Path) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def manifest_layers(manifest: Dict[str, Any]) -> List[Tuple[str, str, List[List[int]], List[str]]]:
    """[(class, name, shapes, variable names)] in load order."""
    target = manifest.get("load_target", manifest)
    out = []
    for entry in target["layers"]:
        if len(entry) < 4:
            raise ValueError(
                f"layer entry {entry[:2]} has no weight variable names (4th element); "
                "they are needed to tell BatchNormalization weights apart"
            )
        cls, name, shapes, names = entry[0], entry[1], entry[2], entry[3]
        if len(shapes) != len(names):
            raise ValueError(f"layer {name}: {len(shapes)} shapes but {len(names)} variable names")
        out.append((cls, name, [list(map(int, s)) for s in shapes], [n.split("/")[-1].split(":")[0] for n in names]))
    seen = set()
    for _, name, _, _ in out:
        if name in seen:
            raise ValueError(f"duplicate layer name {name!r} in manifest")
        seen.add(name)
    return out


def fan_in(layer_class: str, var: str, shape: Sequence[int]) -> int:
    if var == "depthwise_kernel":
        return int(np.prod(shape[:-2])) if len(shape) > 2 else int(shape[0])
    if layer_class.startswith("LocallyConnected"):
        return int(shape[-2])
    return int(np.prod(shape[:-1])) if len(shape) > 1 else int(shape[0])


def _apply_rule(layer_class: str, var: str, shape: Sequence[int], n: np.ndarray,
                kernel_gain: float = DEFAULT_GAIN) -> np.ndarray:
    if var in ("kernel", "depthwise_kernel"):
        return n * (kernel_gain / math.sqrt(fan_in(layer_class, var, shape)))
    if var == "bias":
        return 0.01 * n
    if var == "gamma":
        return 1.0 + 0.05 * n
    if var in ("beta", "moving_mean"):
        return 0.05 * n
    if var == "moving_variance":
        return np.exp(0.1 * n)
    if var == "alpha":
        return 0.25 + 0.05 * n
    raise ValueError(f"no synthetic-value rule for weight variable {var!r} (layer class {layer_class})")


def make_tensor(layer_class: str, var: str, shape: Sequence[int], seed: int, tensor_index: int,
                kernel_gain: float = DEFAULT_GAIN) -> np.ndarray:
    """One tensor of the recipe, float32, C order."""
    size = int(np.prod(shape)) if len(shape) else 1
    key = tensor_key(seed, tensor_index)
    out = np.empty(size, dtype=np.float32)
    for start in range(0, size, CHUNK):
        cnt = min(CHUNK, size - start)
        out[start:start + cnt] = _apply_rule(layer_class, var, shape, standard_normals(key, cnt, start),
                                              kernel_gain).astype(np.float32)
    return out.reshape(shape)


def iter_tensors(manifest: Dict[str, Any], seed: int,
                 kernel_gain: float | None = None) -> Iterator[Tuple[int, str, str, np.ndarray]]:
    """Yield (layer index, layer name, variable name, float32 array) in file order.

    kernel_gain None means the recipe's per-model default (default_gain)."""
    if kernel_gain is None:
        kernel_gain = default_gain(manifest)
    t = 0
    for li, (cls, name, shapes, names) in enumerate(manifest_layers(manifest)):
        for shape, var in zip(shapes, names):
            yield li, name, var, make_tensor(cls, var, shape, seed, t, kernel_gain)
            t += 1


# ----------------------------------------------------------------------------
# HDF5 writing


def _save_attr(group: Any, name: str, data: List[bytes]) -> None:
    """Keras' save_attributes_to_hdf5_group: split when over the header limit."""
    arr = np.asarray(data)
    num_chunks = 1
    chunks = np.array_split(arr, num_chunks)
    while any(c.nbytes > HDF5_OBJECT_HEADER_LIMIT for c in chunks):
        num_chunks += 1
        chunks = np.array_split(arr, num_chunks)
    if num_chunks > 1:
        for i, c in enumerate(chunks):
            group.attrs[f"{name}{i}"] = c
    else:
        group.attrs[name] = arr


def write_h5(manifest: Dict[str, Any], seed: int, path: str | Path, keras_version: str = "2.2.4",
             backend: str = "tensorflow", verbose: bool = False,
             kernel_gain: float | None = None) -> Dict[str, Any]:
    import h5py  # imported here so that the generator works without h5py

    if kernel_gain is None:
        kernel_gain = default_gain(manifest)
    layers = manifest_layers(manifest)
    sha = hashlib.sha256()
    n_tensors = 0
    n_values = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as f:
        _save_attr(f, "layer_names", [name.encode("utf8") for _, name, _, _ in layers])
        f.attrs["backend"] = backend.encode("utf8")
        f.attrs["keras_version"] = keras_version.encode("utf8")
        t = 0
        for cls, name, shapes, names in layers:
            g = f.create_group(name)
            wnames = [f"{name}/{var}:0" for var in names]
            _save_attr(g, "weight_names", [w.encode("utf8") for w in wnames])
            for shape, var, wname in zip(shapes, names, wnames):
                val = make_tensor(cls, var, shape, seed, t, kernel_gain)
                g.create_dataset(wname, data=val, dtype="float32")
                sha.update(val.astype("<f4", copy=False).tobytes())
                if verbose:
                    print(f"  [{t:4d}] {cls:20s} {wname:50s} {str(shape):22s} "
                          f"mean={float(val.mean()):+.4f} std={float(val.std()):.4f}", file=sys.stderr)
                t += 1
                n_tensors += 1
                n_values += val.size
    tmp.replace(path)
    return {
        "file": str(path),
        "model": manifest.get("model"),
        "seed": seed,
        "kernel_gain": kernel_gain,
        "layers": len(layers),
        "tensors": n_tensors,
        "values": n_values,
        "values_sha256": sha.hexdigest(),
        "bytes": path.stat().st_size,
    }


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + "\n\nSee the module docstring (python -c 'import "
        "make_synthetic_weights as m; help(m)') for the exact value recipe.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Recipe summary: per tensor t (file order) key=mix64(mix64(seed)^t); SplitMix64 "
        "stream from key; Box-Muller normals n; kernel n*gain/sqrt(fan_in) (gain sqrt(2), ArcFace and "
        "GhostFaceNet 1.0, RetinaFace 0.8), bias 0.01n, gamma 1+0.05n, "
        "beta 0.05n, moving_mean 0.05n, moving_variance exp(0.1n), PReLU alpha 0.25+0.05n; float32.",
    )
    ap.add_argument("manifest", help="weights-layout manifest JSON (tests/reference/weights-manifest/<Model>.json)")
    ap.add_argument("--seed", type=int, required=True, help="non-negative integer seed")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("-o", "--output", help="output .h5 path")
    g.add_argument("--out-dir", help="write <out-dir>/<manifest weights_file> (the name deepface expects)")
    ap.add_argument("--keras-version", default="2.2.4", help="root keras_version attribute (default %(default)s; "
                    "'1' would trigger Keras-1 weight conversions in the loader)")
    ap.add_argument("--backend", default="tensorflow", help="root backend attribute (default %(default)s)")
    ap.add_argument("--kernel-gain", type=float, default=None,
                    help="kernel std = gain/sqrt(fan_in); default: the recipe's per-model value "
                    f"({', '.join(f'{k} {v}' for k, v in MODEL_GAINS.items())}, else sqrt(2))")
    ap.add_argument("--dry-run", action="store_true",
                    help="write nothing; print counts and values_sha256 only")
    ap.add_argument("-v", "--verbose", action="store_true", help="print per-tensor statistics to stderr")
    args = ap.parse_args(argv)

    if args.seed < 0:
        ap.error("--seed must be >= 0")
    manifest = load_manifest(args.manifest)
    if args.output:
        out = Path(args.output)
    else:
        out = Path(args.out_dir or ".") / manifest["weights_file"]
    if args.dry_run:
        sha = hashlib.sha256()
        n_tensors = n_values = 0
        gain = default_gain(manifest) if args.kernel_gain is None else args.kernel_gain
        for _, _, _, val in iter_tensors(manifest, args.seed, gain):
            sha.update(val.astype("<f4", copy=False).tobytes())
            n_tensors += 1
            n_values += val.size
        info = {"model": manifest.get("model"), "seed": args.seed, "kernel_gain": gain,
                "layers": len(manifest_layers(manifest)), "tensors": n_tensors, "values": n_values,
                "values_sha256": sha.hexdigest()}
    else:
        info = write_h5(manifest, args.seed, out, keras_version=args.keras_version, backend=args.backend,
                        verbose=args.verbose, kernel_gain=args.kernel_gain)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
