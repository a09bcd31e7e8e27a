"""Load deepface's legacy (Keras 2) HDF5 weight files into Keras 3 models, by position.

deepface saves weights with Keras 2's ``save_weights``: one group per layer *that owns weights*,
listed in the root attribute ``layer_names``; each group lists its variables in ``weight_names``.
Keras 2's loader matches those groups to the model's weighted layers by position, ignoring
names.  We do the same, checking counts and every shape so that a wrong architecture fails with
a message that names the layer instead of loading garbage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facepipe.errors import WeightsError


def _read_names(attrs: Any, key: str) -> list[str]:
    if key in attrs:
        raw = list(attrs[key])
    else:  # long lists are split into key0, key1, ... (HDF5 header size limit)
        raw, i = [], 0
        while f"{key}{i}" in attrs:
            raw.extend(attrs[f"{key}{i}"])
            i += 1
    return [r.decode("utf8") if isinstance(r, bytes) else str(r) for r in raw]


def read_h5_weights(path: str | Path) -> list[tuple[str, list[np.ndarray]]]:
    """The file's weighted layers in load order: ``[(layer_name, [arrays...]), ...]``."""
    import h5py

    try:
        with h5py.File(str(path), "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            layers = []
            for name in _read_names(root.attrs, "layer_names"):
                group = root[name]
                weight_names = _read_names(group.attrs, "weight_names")
                if weight_names:
                    layers.append((name, [np.asarray(group[w]) for w in weight_names]))
            return layers
    except (OSError, KeyError) as exc:
        raise WeightsError(f"could not read Keras HDF5 weights from {path}: {exc}") from exc


def weighted_layers(model: Any) -> list[Any]:
    """The model's layers that own weights, in the order Keras 2's loader visits them."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:  # a nested model: flatten it
            out.extend(weighted_layers(layer))
        elif layer.weights:
            out.append(layer)
    return out


def load_h5_positional(model: Any, path: str | Path) -> None:
    """Assign the weights stored in ``path`` to ``model``'s weighted layers, by position."""
    stored = read_h5_weights(path)
    targets = weighted_layers(model)
    if len(stored) != len(targets):
        raise WeightsError(
            f"{path} holds {len(stored)} weighted layers but the model has {len(targets)}; "
            "this file does not belong to this model"
        )
    for index, (layer, (file_name, arrays)) in enumerate(zip(targets, stored)):
        variables = layer.weights
        if len(variables) != len(arrays):
            raise WeightsError(
                f"layer #{index} ({layer.name}) has {len(variables)} weights but {file_name} in {path} "
                f"has {len(arrays)}"
            )
        for var, arr in zip(variables, arrays):
            if tuple(var.shape) != tuple(arr.shape):
                raise WeightsError(
                    f"layer #{index} ({layer.name}) weight {var.name}: shape {tuple(var.shape)} but "
                    f"{file_name} in {path} has {tuple(arr.shape)}"
                )
        layer.set_weights(arrays)


def layer_signature(model: Any) -> list[tuple[str, list[list[int]]]]:
    """``[(class name, [weight shapes])]`` of the weighted layers, to compare with a manifest."""
    return [
        (type(layer).__name__, [list(map(int, w.shape)) for w in layer.weights])
        for layer in weighted_layers(model)
    ]
