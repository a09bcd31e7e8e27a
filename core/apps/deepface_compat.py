"""deepface 0.0.103's rules that only the ``DeepFace`` facade follows.

Each helper mirrors one behaviour that deepface callers depend on (an exact error message, a box
convention, a return type), so ``core/apps/deepface.py`` stays a thin list of functions.  facepipe's
own API (``Pipeline``, ``facepipe.find``) keeps its own conventions; ``docs/compat.md`` lists both.
"""

from __future__ import annotations

import importlib.util
import numbers
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import numpy as np

from facepipe.errors import (
    ConfigError,
    DataTypeError,
    DimensionMismatchError,
    InvalidEmbeddingsShapeError,
    UnimplementedError,
)

#: the datastore formats 0.0.103's ``find`` accepts (facepipe's SQLite index makes them moot)
DATASTORE_FORMATS = ("feather", "npz", "parquet")
NO_FACIAL_AREA: dict[str, Any] = {"x": None, "y": None, "w": None, "h": None, "left_eye": None, "right_eye": None}
CUSTOM_METRIC_NEEDS_THRESHOLD = "Threshold must be specified when using custom distance metrics"


# ------------------------------------------------------------------------------ embeddings
def check_embedding_list(value: Any, index: int, model_name: str, dims: int) -> None:
    """deepface's checks (and exact messages) for a pre-computed embedding given as a list."""
    if not isinstance(value, list):
        return
    # deepface accepts float and int items; numpy scalars are numbers too.
    if not all(isinstance(v, numbers.Real) for v in value):
        raise DataTypeError(
            f"When passing img{index}_path as a list, ensure that all its items are of type float."
        )
    if dims and len(value) != dims:
        raise DimensionMismatchError(
            f"embeddings of {model_name} should have {dims} dimensions,"
            f" but {index}-th image has {len(value)} dimensions input"
        )


# ------------------------------------------------------------------------------ boxes
def load_inputs(img: Any, batch: bool) -> tuple[Any, list[tuple[int, int]]]:
    """Load the image(s) once, here, to know their sizes: ``(inputs for the pipeline, [(w, h)])``.

    The pipeline accepts the loaded images as they are, so nothing is decoded twice.
    """
    from facepipe.pipeline.image import load_image, load_images

    if batch:
        loaded = load_images(img)
        return loaded, [(item.width, item.height) for item in loaded]
    item = load_image(img)
    return item, [(item.width, item.height)]


def deepface_area(area: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """The box as deepface reports it: ``x + w`` and ``y + h`` stay one pixel inside the image.

    deepface's ``extract_faces`` clamps ``w = min(width - x - 1, w)`` (its off-by-one, which
    facepipe's own API does not copy); the crop itself is not affected, only the reported box.
    """
    if area.get("x") is None:
        return area
    width, height = size
    x, y = max(0, int(area["x"])), max(0, int(area["y"]))
    out = dict(area)
    out.update(x=x, y=y, w=min(width - x - 1, int(area["w"])), h=min(height - y - 1, int(area["h"])))
    return out


# ------------------------------------------------------------------------------ custom metrics
def require_threshold(distance_metric: Any, threshold: float | None) -> None:
    """deepface's rule: a callable metric has no pre-tuned threshold, so one must be given."""
    if isinstance(distance_metric, str):
        return
    if threshold is None:
        raise ValueError(CUSTOM_METRIC_NEEDS_THRESHOLD)
    if not callable(distance_metric):
        raise ConfigError(
            f"distance_metric must be a metric name or a callable, not {type(distance_metric).__name__}"
        )


def custom_verify(pipeline: Any, sides: Sequence[tuple[Any, bool]], metric: Callable[..., Any],
                  threshold: float, model_name: str, detector_backend: str) -> dict[str, Any]:
    """``verify`` with a callable metric, as 0.0.103 runs it: the callable gets two 1-D float64
    vectors per face pair and returns a scalar; the smallest distance decides.

    ``sides`` holds, per image, the loaded input (or the embedding list) and whether it is an
    embedding.  The confidence has no fitted model: 100 / 0 at distance 0, else 51 / 49.
    """
    from facepipe.pipeline.decision import confidence

    start = time.perf_counter()
    vectors: list[list[np.ndarray]] = []
    areas: list[list[dict[str, Any]]] = []
    for value, is_embedding in sides:
        if is_embedding:
            vectors.append([np.asarray(value, dtype=np.float64)])
            areas.append([dict(NO_FACIAL_AREA)])
            continue
        loaded, (size,) = load_inputs(value, batch=False)
        reps = pipeline.represent(loaded)
        vectors.append([np.asarray(r.embedding, dtype=np.float64) for r in reps])
        areas.append([deepface_area(r.face.area.to_dict(), size) for r in reps])
    best, best_pair = float("inf"), (0, 0)
    for i, a in enumerate(vectors[0]):
        for j, b in enumerate(vectors[1]):
            distance = float(metric(a, b))
            if distance < best:
                best, best_pair = distance, (i, j)
    verified = best <= threshold
    return {
        "verified": bool(verified),
        "distance": best,
        "threshold": float(threshold),
        "confidence": confidence(best, None, verified),
        "model": model_name,
        "detector_backend": detector_backend,
        "similarity_metric": metric,  # deepface reports the callable itself
        "facial_areas": {"img1": areas[0][best_pair[0]], "img2": areas[1][best_pair[1]]},
        "time": round(time.perf_counter() - start, 2),
    }


def find_distance_fn(metric: Callable[..., Any], return_type: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Adapt a deepface ``find`` callable to facepipe's ``(queries (M, D), gallery (N, D)) -> (M, N)``.

    0.0.103 calls it per row with (gallery vector, query vector) for ``return_type="pandas"``,
    and once with (gallery (N, D), queries (M, D)) -> (M, N) for ``return_type="dict"``.
    """
    if return_type == "dict":
        return lambda queries, gallery: np.asarray(metric(gallery, queries), dtype=np.float64)

    def per_row(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return np.array([[float(metric(g, q)) for g in gallery] for q in queries], dtype=np.float64).reshape(
            len(queries), len(gallery))

    return per_row


# ------------------------------------------------------------------------------ find options
def resolve_return_type(return_type: str | None) -> str:
    """0.0.103's ``return_type``: "pandas" or "dict"; None means pandas when it is installed."""
    if return_type not in (None, "pandas", "dict"):
        raise ValueError(f"Unsupported return_type: {return_type}. Options: 'pandas', 'dict'.")
    has_pandas = importlib.util.find_spec("pandas") is not None
    if return_type is None:
        return "pandas" if has_pandas else "dict"
    if return_type == "pandas" and not has_pandas:
        raise ImportError(
            "pandas is an optional dependency, it is required for return_type='pandas'. "
            "Please either install it using 'pip install pandas' or set return_type to 'dict'."
        )
    return return_type


def check_datastore_format(datastore_format: str) -> None:
    """Accept 0.0.103's values (with its message for others); facepipe's index is SQLite whatever
    is chosen, so pyarrow is never needed."""
    if datastore_format not in DATASTORE_FORMATS:
        raise ValueError(
            f"Unsupported datastore_format {datastore_format}. Options: {', '.join(DATASTORE_FORMATS)}"
        )


def check_db_path(db_path: Any) -> None:
    """0.0.103 reads ``s3://`` and ``ftp://`` folders; facepipe indexes local folders only."""
    text = str(db_path)
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return
    if scheme in ("s3", "ftp"):
        hint = ("aws s3 sync s3://bucket/prefix ./photos" if scheme == "s3"
                else "wget -m ftp://user:password@host/path")
        raise UnimplementedError(
            f"db_path {text!r} is an {scheme.upper()} location: facepipe's find indexes local folders only. "
            f"Copy the photos to a local folder first (e.g. `{hint}`) and pass that folder."
        )
    raise ValueError(f"Unsupported db_path scheme {scheme}. Options: s3, ftp or local folder.")


# ------------------------------------------------------------------------------ build_model
class AttributeClient:
    """What ``build_model("Age", "facial_attribute")`` returns: deepface's ``predict`` types.

    ``predict`` takes one face image (H, W, 3) or a batch (a list, or an (N, H, W, 3) array), BGR,
    ``uint8`` or float in [0, 1] (deepface feeds 224x224 floats).  It returns what deepface's
    clients return: Age a ``np.float64`` (batch: an ``(N,)`` array), Emotion / Gender / Race the
    class probabilities in deepface's label order (batch: ``(N, classes)``).  Like deepface, a batch
    of one answers in the single-image form.  Other attributes are those of the facepipe plugin.
    """

    def __init__(self, plugin: Any, model_name: str) -> None:
        self.plugin = plugin
        self.model_name = model_name

    def __getattr__(self, name: str) -> Any:
        if name == "plugin":  # not set yet (copy / unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.plugin, name)

    def predict(self, img: Any) -> Any:
        from facepipe.pipeline.image import load_image

        batch = np.asarray(img) if not isinstance(img, list) else img
        if isinstance(batch, np.ndarray) and batch.ndim == 3:
            batch = batch[None]
        if isinstance(batch, np.ndarray) and batch.ndim != 4:
            raise InvalidEmbeddingsShapeError(
                f"predict expects an (H, W, 3) face or a batch of them, got shape {batch.shape}")
        crops = [load_image(np.asarray(face)).image for face in batch]
        predictions = self.plugin.predict(crops)
        action = self.plugin.action
        if action == "age":
            values = np.array([p["age"] for p in predictions], dtype=np.float64)
            return np.float64(values[0]) if len(values) == 1 else values
        # plugin dicts hold percentages in deepface's label order; deepface returns probabilities
        rows = np.array([[v / 100.0 for v in p[action].values()] for p in predictions], dtype=np.float32)
        return rows[0] if len(rows) == 1 else rows
