"""The ONNX Runtime engine of the Keras recognizers (``engine="onnx"``).

The Keras model is exported once (tf2onnx on the TensorFlow backend, Keras' exporter on torch) to
``<weights home>/cache/onnx/<model>-<digest>.onnx`` and run by onnxruntime.  Checked here with
deepface-format synthetic weights found by a ``WeightsManager`` in a temporary home:

* parity with deepface's outputs (the parity npz), as tight as the Keras engine's test;
* a second plugin instance reuses the cached file (no export, no Keras model build);
* a corrupt cached file is detected, removed and exported again;
* a changed weight file gets a new cache entry.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.paths import parity_npz
keras = need("keras")
need("h5py")
need("onnxruntime")
BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    need("tensorflow")
    need("tf2onnx")  # the exporter (TensorFlow backend)
elif BACKEND == "torch":
    need("torch")  # Keras' own exporter (torch.onnx)
else:
    pytest.skip(f"the ONNX export is not tested on the {BACKEND} backend", allow_module_level=True)

from facepipe.engines import onnx_export  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402

# name -> (module, class)
MODELS = {
    "Facenet": ("facenet", "FacenetRecognizer"),
    "OpenFace": ("openface", "OpenFaceRecognizer"),
    "DeepID": ("deepid", "DeepIDRecognizer"),
    # exported by the direct chain writer (tf2onnx needed ~23 GiB for it)
    "VGG-Face": ("vggface", "VGGFaceRecognizer"),
}


def _cls(name: str) -> type:
    module, cls = MODELS[name]
    return getattr(importlib.import_module(f"facepipe.plugins.recognizers.{module}"), cls)


def _tolerance(ref: np.ndarray) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-4 * max(1.0, float(np.abs(ref).max()))}


def _home_with(source: Path, home: Path) -> Path:
    (home / "weights").mkdir(parents=True)
    (home / "weights" / source.name).symlink_to(source)
    return home


@pytest.fixture(scope="module")
def homes(synthetic_weights, tmp_path_factory) -> Any:
    """``homes("Facenet")`` -> a weights home holding the synthetic file (one per model)."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = _home_with(synthetic_weights(name), tmp_path_factory.mktemp(f"onnx_{name}"))
        return made[name]

    return get


def _plugin(name: str, home: Path, **options: Any) -> Any:
    cls = _cls(name)
    return cls(cls.config_class(engine="onnx", **options), weights=WeightsManager(home=home, offline=True))


class _Counter:
    """Wraps a function and counts its calls."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_config_engine_field() -> None:
    cls = _cls("DeepID")
    assert cls.config_class().engine == "keras"
    assert cls.config_class(engine="onnx").engine == "onnx"
    with pytest.raises(ValueError):
        cls.config_class(engine="tensorrt")


@pytest.mark.parametrize("name", [*(n for n in MODELS if n != "VGG-Face"),
                                  pytest.param("VGG-Face", marks=pytest.mark.slow)])
def test_onnx_parity_with_deepface(name: str, homes, parity_dir: Path, monkeypatch) -> None:
    ref = dict(np.load(parity_npz(name)))
    if name == "VGG-Face":  # the plugin's forward is deepface's: fc7 L2-normalised
        ref["outputs"] = ref["deepface_forward"]
    home = homes(name)
    export = _Counter(onnx_export.export_onnx)
    monkeypatch.setattr(onnx_export, "export_onnx", export)
    plugin = _plugin(name, home)
    out = plugin.forward(ref["inputs"])
    assert export.calls == 1
    assert out.dtype == np.float32 and out.shape == ref["outputs"].shape
    np.testing.assert_allclose(out, ref["outputs"], **_tolerance(ref["outputs"]))
    if name == "OpenFace":  # small outputs: the generic tolerance is loose there
        np.testing.assert_allclose(out, ref["outputs"], rtol=0, atol=1e-5)
    single = np.concatenate([plugin.forward(ref["inputs"][i:i + 1]) for i in range(len(ref["inputs"]))])
    np.testing.assert_allclose(single, ref["outputs"], **_tolerance(ref["outputs"]))
    # the export sits in the manager's home, with its checksum sidecar; the Keras model was freed
    path = plugin.onnx_runner.path
    assert path.parent == home / "cache" / "onnx" and path.is_file() and path.with_suffix(".json").is_file()
    assert plugin._keras_model is None
    assert not [p for p in path.parent.iterdir() if ".tmp." in p.name]


@pytest.mark.parametrize("name", ["Facenet", "DeepID"])
def test_cached_export_is_reused(name: str, homes, parity_dir: Path, monkeypatch) -> None:
    ref = np.load(parity_npz(name))
    home = homes(name)
    first = _plugin(name, home)
    first.forward(ref["inputs"][:1])  # exports unless an earlier test did
    path = first.onnx_runner.path
    mtime = path.stat().st_mtime_ns

    export = _Counter(onnx_export.export_onnx)
    monkeypatch.setattr(onnx_export, "export_onnx", export)
    second = _plugin(name, home)
    build = _Counter(second.build_model)
    second.build_model = build  # type: ignore[method-assign]
    out = second.forward(ref["inputs"])
    assert export.calls == 0 and build.calls == 0
    assert second.onnx_runner.path == path and path.stat().st_mtime_ns == mtime
    np.testing.assert_allclose(out, ref["outputs"], **_tolerance(ref["outputs"]))


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar"])
def test_corrupt_cache_is_exported_again(damage: str, synthetic_weights, parity_dir: Path, tmp_path: Path,
                                         monkeypatch) -> None:
    ref = np.load(parity_npz("DeepID"))
    home = _home_with(synthetic_weights("DeepID"), tmp_path / "home")
    path = _plugin("DeepID", home).onnx_runner.path
    data = bytearray(path.read_bytes())
    if damage == "flip":  # same size, one weight byte changed: only the checksum notices
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        path.with_suffix(".json").write_text("{not json")
    damaged = path.read_bytes()

    export = _Counter(onnx_export.export_onnx)
    monkeypatch.setattr(onnx_export, "export_onnx", export)
    plugin = _plugin("DeepID", home)
    out = plugin.forward(ref["inputs"])
    assert export.calls == 1 and plugin.onnx_runner.path == path
    # a complete export with a matching sidecar is back in place
    fresh = path.read_bytes()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(fresh).hexdigest() and meta["size"] == len(fresh)
    if damage != "sidecar":
        assert fresh != damaged
    np.testing.assert_allclose(out, ref["outputs"], **_tolerance(ref["outputs"]))


def test_changed_weights_get_a_new_cache_entry(synthetic_weights, tmp_path: Path) -> None:
    source = synthetic_weights("DeepID")
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    plugin = _plugin("DeepID", tmp_path / "home", weights_path=copy, onnx_cache_dir=tmp_path / "onnx")
    before = plugin.onnx_cache_path()
    assert before.parent == tmp_path / "onnx"
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    assert plugin.onnx_cache_path() != before


def test_wrong_input_shape_is_rejected(homes) -> None:
    plugin = _plugin("DeepID", homes("DeepID"))
    with pytest.raises(ValueError, match="expects input"):
        plugin.forward(np.zeros((1, 47, 55, 3), np.float32))
