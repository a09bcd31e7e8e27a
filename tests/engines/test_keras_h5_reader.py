"""The Keras HDF5 weight reader: fast raw reads agree with h5py, odd layouts fall back, bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
h5py = need("h5py")

from facepipe.engines.keras_h5 import ALIGN_BYTES, aligned_empty, read_h5_weights  # noqa: E402
from facepipe.errors import WeightsError  # noqa: E402


def _write_keras2_file(path: Path, layers: dict[str, dict[str, np.ndarray]], **dataset_options: object) -> None:
    """A file in Keras 2's ``save_weights`` layout (root ``layer_names``, per-group ``weight_names``)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name, weights in layers.items():
            group = f.create_group(name)
            group.attrs["weight_names"] = [w.encode() for w in weights]
            for weight_name, value in weights.items():
                group.create_dataset(weight_name, data=value, **dataset_options)


def _layers(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "conv": {"conv/kernel:0": rng.standard_normal((3, 3, 4, 8)).astype(np.float32),
                 "conv/bias:0": rng.standard_normal(8).astype(np.float32)},
        "no_weights": {},
        "dense": {"dense/kernel:0": rng.standard_normal((17, 5)).astype(">f4"),  # big-endian on disk
                  "dense/bias:0": np.arange(5, dtype=np.float64)},
    }


def _check_same(path: Path, layers: dict[str, dict[str, np.ndarray]]) -> None:
    read = read_h5_weights(path)
    expected = [(name, list(w.values())) for name, w in layers.items() if w]
    assert [name for name, _ in read] == [name for name, _ in expected]
    for (_, got), (_, want) in zip(read, expected):
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)


def test_contiguous_datasets_are_read_raw_and_aligned(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    layers = _layers()
    _write_keras2_file(path, layers)
    _check_same(path, layers)
    for _, arrays in read_h5_weights(path):
        for array in arrays:
            assert array.ctypes.data % ALIGN_BYTES == 0  # what TensorFlow's kernels need


def test_chunked_and_compressed_datasets_fall_back_to_h5py(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    layers = _layers(1)
    _write_keras2_file(path, layers, compression="gzip", chunks=True)
    _check_same(path, layers)


def test_truncated_file_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2_file(path, _layers(2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])  # cut into the last dataset
    with pytest.raises(WeightsError, match="w.h5"):
        read_h5_weights(path)


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (7, 7, 2, 3)])
def test_aligned_empty(shape: tuple[int, ...]) -> None:
    array = aligned_empty(shape, np.float32)
    assert array.shape == shape and array.dtype == np.float32 and array.flags.c_contiguous
    assert array.ctypes.data % ALIGN_BYTES == 0 or array.size == 0
    array[...] = 1.5  # writable
    assert float(array.sum()) == 1.5 * array.size


def test_loading_into_a_keras_model_copies_values_exactly(tmp_path: Path) -> None:
    """The fast assignment (DLPack on TensorFlow) gives the model exactly the file's values,
    including arrays that arrive unaligned, and the model computes with them."""
    keras = need("keras")
    from facepipe.engines.keras_h5 import load_h5_positional

    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, name="a")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="b")(hidden))
    rng = np.random.default_rng(3)
    layers = {"a": {"a/kernel:0": rng.standard_normal((6, 4)).astype(np.float32),
                    "a/bias:0": rng.standard_normal(4).astype(np.float32)},
              "b": {"b/kernel:0": rng.standard_normal((4, 3)).astype(np.float32),
                    "b/bias:0": rng.standard_normal(3).astype(np.float32)}}
    path = tmp_path / "m.h5"
    _write_keras2_file(path, layers, compression="gzip", chunks=True)  # h5py path: any alignment
    load_h5_positional(model, path)
    for layer, weights in zip(model.layers[1:], layers.values()):
        for var, want in zip(layer.weights, weights.values()):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(var), want)
    x = rng.standard_normal((2, 6)).astype(np.float32)
    a, b = layers["a"].values(), layers["b"].values()
    wa, ba = a
    wb, bb = b
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), (x @ wa + ba) @ wb + bb, rtol=1e-5, atol=1e-5)


def test_weights_survive_the_source_arrays(tmp_path: Path) -> None:
    """The variables own their memory: dropping every array the reader made changes nothing."""
    keras = need("keras")
    import gc

    from facepipe.engines.keras_h5 import load_h5_positional

    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(7, name="d")(inputs))
    kernel = np.arange(35, dtype=np.float32).reshape(5, 7)
    path = tmp_path / "d.h5"
    _write_keras2_file(path, {"d": {"d/kernel:0": kernel, "d/bias:0": np.ones(7, np.float32)}})
    load_h5_positional(model, path)
    gc.collect()
    junk = [np.full(1 << 16, 9.0, dtype=np.float32) for _ in range(64)]  # reuse freed memory
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.layers[1].kernel), kernel)
    del junk
