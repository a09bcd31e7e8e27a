"""Distance metrics between embeddings (the built-in ``metric`` plugins) and embedding helpers.

Four metrics, with deepface's names and definitions (fact sheet §5.4):

``cosine``        ``1 - a.b / (|a| |b|)``, in [0, 2]
``euclidean``     ``|a - b|``
``euclidean_l2``  ``|a / (|a| + 1e-10) - b / (|b| + 1e-10)|``, in [0, 2]
``angular``       ``arccos(a.b / (|a| |b|)) / pi``, in [0, 1]

Every metric computes a full ``(n, m)`` distance matrix with matrix products, tile by tile: ``b``
is taken in column chunks and ``a`` in row blocks, sized so that the temporaries of one tile stay
within ``block_bytes`` (64 MiB by default) whatever ``n``, ``m`` and ``d`` are.  No ``(n, m, d)``
array is ever built.  The result can be written into a caller's buffer (``out=``, e.g. float32),
so a 2,000 x 100,000 matrix needs the 0.8 GB of its float32 output and little else.  Products are
computed in float64, or in float32 when the caller asks for a float32 ``out`` (``compute_dtype``
in :class:`MetricConfig`); the Euclidean metrics recompute near-identical pairs from their
difference so that cancellation in ``|a|^2 + |b|^2 - 2 a.b`` cannot spoil small distances.

Conventions that differ from deepface (which returns NaN or warns here):

* A zero vector has no direction: its cosine similarity to anything is taken as 0, so its
  ``cosine`` distance is 1.0 and its ``angular`` distance 0.5.  ``euclidean_l2`` keeps deepface's
  ``+1e-10`` so a zero vector stays the zero vector (distance 1.0 to any unit vector).
* Results never contain NaN: NaN or infinite inputs raise :class:`InvalidEmbeddingValuesError`.
* Distances are not rounded here; :func:`round_distance` rounds to deepface's 6 decimals where the
  deepface-compatible API layer needs it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
from facepipe import hookimpl
from facepipe.errors import (
    DataTypeError,
    DimensionMismatchError,
    InvalidEmbeddingsShapeError,
)
from facepipe.hookspecs import Register
from facepipe.specs import MetricSpec
from facepipe.types import Metric, PluginConfig
from pydantic import Field


class InvalidEmbeddingValuesError(InvalidEmbeddingsShapeError):
    """An embedding holds NaN or infinite values (or values so large that their square overflows)."""


class MetricConfig(PluginConfig):
    """Options of the built-in metrics (only memory / speed trade-offs; results do not depend on them
    beyond floating-point rounding)."""

    block_rows: int | None = Field(
        default=None, ge=1,
        description="rows of `a` per tile; default: chosen from d and the chunk of `b` so that one "
                    "tile's temporaries fit in block_bytes",
    )
    block_bytes: int = Field(
        default=64 * 2**20, ge=2**16,
        description="memory budget in bytes for the temporaries of one tile (prepared rows of a and b, "
                    "the tile itself and its scratch space)",
    )
    compute_dtype: Literal["auto", "float64", "float32"] = Field(
        default="auto",
        description="precision of the matrix products. auto: float32 when the caller passes a float32 "
                    "(or float16) `out` buffer - it has chosen float32 results - else float64. float32 "
                    "is about twice as fast; near-duplicate pairs are always recomputed in float64",
    )


# --------------------------------------------------------------------------------- validation
def _as_array(x: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise InvalidEmbeddingsShapeError(
            f"{what} is not a rectangular array of numbers ({exc}); give a 1-D vector or an (n, d) array"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise DataTypeError(
            f"{what} must hold real numbers, got dtype {arr.dtype}; ensure every item is a float"
        )
    return arr


def _as_matrix(x: Any, what: str) -> np.ndarray:
    arr = _as_array(x, what)
    if arr.ndim != 2:
        raise InvalidEmbeddingsShapeError(
            f"{what} must be a 2-D array of embeddings (n, d), got shape {arr.shape}; "
            "use distance() for two single vectors, or x[None, :] to make one vector a row"
        )
    if arr.shape[1] == 0:
        raise InvalidEmbeddingsShapeError(f"{what} has embeddings of length 0 (shape {arr.shape})")
    return arr


def _check_dims(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise DimensionMismatchError(
            f"cannot compare embeddings of {a.shape[-1]} dimensions with embeddings of {b.shape[-1]} "
            "dimensions; were they made by different models?"
        )


def _check_out(out: np.ndarray | None, n: int, m: int) -> np.ndarray:
    if out is None:
        return np.empty((n, m), dtype=np.float64)
    if not isinstance(out, np.ndarray):
        raise DataTypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != (n, m):
        raise InvalidEmbeddingsShapeError(f"out has shape {out.shape}, expected ({n}, {m})")
    if out.dtype.kind != "f":
        raise DataTypeError(f"out must be a floating-point array (e.g. float32), got dtype {out.dtype}")
    if not out.flags.writeable:
        raise InvalidEmbeddingsShapeError("out is read-only; pass a writeable array")
    return out


def _squared_norms(x: np.ndarray, what: str, offset: int) -> np.ndarray:
    sq: np.ndarray = np.einsum("ij,ij->i", x, x)
    finite = np.isfinite(sq)
    if not finite.all():
        row = offset + int(np.flatnonzero(~finite)[0])
        raise InvalidEmbeddingValuesError(
            f"{what}[{row}] holds NaN or infinite values (or values too large to square); "
            "embeddings must be finite"
        )
    return sq


# --------------------------------------------------------------------------------- metrics
class BlockwiseMetric(Metric):
    """Base of the built-in metrics: a tiled matrix-product driver.

    Subclasses say how rows are prepared (:meth:`_prepare`) and how a tile of dot products becomes
    distances (:meth:`_finish`).
    """

    config_class = MetricConfig
    config: MetricConfig
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    #: whether _finish needs a scratch tile
    _needs_scratch: ClassVar[bool] = False

    def pairwise(self, a: Any, b: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Distances between every row of ``a`` (n, d) and every row of ``b`` (m, d).

        Returns ``out`` if given (any floating dtype, shape (n, m), filled in place), else a new
        float64 ``(n, m)`` array.  Temporary memory is bounded by ``config.block_bytes``.
        """
        a2 = _as_matrix(a, "a")
        b2 = _as_matrix(b, "b")
        _check_dims(a2, b2)
        n, m, d = a2.shape[0], b2.shape[0], a2.shape[1]
        result = _check_out(out, n, m)
        if n == 0 or m == 0:
            return result
        dtype = self._compute_dtype(result)
        rows, cols = self._tile_shape(n, m, d, dtype.itemsize)
        tile_buf = np.empty(rows * cols, dtype=dtype)
        scratch_buf = np.empty(rows * cols, dtype=dtype) if self._needs_scratch else None
        for j0 in range(0, m, cols):
            j1 = min(m, j0 + cols)
            bp, bs = self._prepare(b2[j0:j1], dtype, "b", j0)
            for i0 in range(0, n, rows):
                i1 = min(n, i0 + rows)
                ap, as_ = self._prepare(a2[i0:i1], dtype, "a", i0)
                size = (i1 - i0) * (j1 - j0)
                # flat buffer -> contiguous views, so matmul writes in place on edge tiles too
                tile = tile_buf[:size].reshape(i1 - i0, j1 - j0)
                scratch = None if scratch_buf is None else scratch_buf[:size].reshape(tile.shape)
                np.matmul(ap, bp.T, out=tile)
                self._finish(tile, ap, as_, bp, bs, scratch)
                result[i0:i1, j0:j1] = tile
        return result

    def distance(self, a: Any, b: Any) -> float:
        """Distance between two 1-D vectors."""
        va, vb = _as_array(a, "a"), _as_array(b, "b")
        for arr, what in ((va, "a"), (vb, "b")):
            if arr.ndim != 1:
                raise InvalidEmbeddingsShapeError(
                    f"{what} must be a 1-D vector, got shape {arr.shape}; use pairwise() for batches"
                )
        _check_dims(va, vb)
        return float(self.pairwise(va[None, :], vb[None, :])[0, 0])

    def _compute_dtype(self, result: np.ndarray) -> np.dtype[Any]:
        if self.config.compute_dtype != "auto":
            return np.dtype(self.config.compute_dtype)
        return np.dtype(np.float32) if result.dtype.itemsize <= 4 else np.dtype(np.float64)

    def _tile_shape(self, n: int, m: int, d: int, itemsize: int) -> tuple[int, int]:
        # A quarter of the budget each for: the prepared chunk of b, the prepared block of a,
        # the tile and its scratch (the boolean mask of the euclidean check is smaller still).
        quarter = max(1, self.config.block_bytes // 4)
        cols = min(m, max(1, quarter // (itemsize * d)))
        if self.config.block_rows is not None:
            rows = self.config.block_rows
        else:
            rows = max(1, min(quarter // (itemsize * cols), quarter // (itemsize * d)))
        return min(n, rows), cols

    # -- hooks ----------------------------------------------------------------------------
    def _prepare(self, x: np.ndarray, dtype: np.dtype[Any], what: str,
                 offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows as used in the products, and their squared norms (checked to be finite)."""
        xc = np.asarray(x, dtype=dtype)
        return xc, _squared_norms(xc, what, offset)

    def _finish(self, tile: np.ndarray, ap: np.ndarray, sa: np.ndarray, bp: np.ndarray,
                sb: np.ndarray, scratch: np.ndarray | None) -> None:
        raise NotImplementedError


class _UnitRowsMetric(BlockwiseMetric):
    """Rows scaled to unit length; zero rows stay zero, so their similarity to anything is 0."""

    def _prepare(self, x: np.ndarray, dtype: np.dtype[Any], what: str,
                 offset: int) -> tuple[np.ndarray, np.ndarray]:
        xc = np.asarray(x, dtype=dtype)
        sq = _squared_norms(xc, what, offset)
        norms = np.sqrt(sq)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return xc * inv[:, None], sq


class CosineMetric(_UnitRowsMetric):
    """``1 - cos(a, b)``, in [0, 2]; 1.0 when either vector is zero."""

    name = "cosine"
    description = "cosine distance 1 - a.b/(|a||b|), in [0, 2] (deepface's default)"

    def _finish(self, tile: np.ndarray, ap: np.ndarray, sa: np.ndarray, bp: np.ndarray,
                sb: np.ndarray, scratch: np.ndarray | None) -> None:
        np.subtract(1.0, tile, out=tile)
        np.clip(tile, 0.0, 2.0, out=tile)


class AngularMetric(_UnitRowsMetric):
    """``arccos(cos(a, b)) / pi``, in [0, 1]; 0.5 when either vector is zero."""

    name = "angular"
    description = "angle between the vectors divided by pi, in [0, 1]"

    def _finish(self, tile: np.ndarray, ap: np.ndarray, sa: np.ndarray, bp: np.ndarray,
                sb: np.ndarray, scratch: np.ndarray | None) -> None:
        np.clip(tile, -1.0, 1.0, out=tile)
        np.arccos(tile, out=tile)
        tile *= 1.0 / math.pi
        np.clip(tile, 0.0, 1.0, out=tile)


class EuclideanMetric(BlockwiseMetric):
    """``|a - b|`` via ``|a|^2 + |b|^2 - 2 a.b``; near-identical pairs are recomputed directly."""

    name = "euclidean"
    description = "Euclidean distance |a - b|"
    _needs_scratch = True

    def _finish(self, tile: np.ndarray, ap: np.ndarray, sa: np.ndarray, bp: np.ndarray,
                sb: np.ndarray, scratch: np.ndarray | None) -> None:
        assert scratch is not None
        tile *= -2.0
        tile += sa[:, None]
        tile += sb[None, :]
        # The expansion loses precision by cancellation when |a - b| is tiny next to |a| and |b|:
        # recompute those pairs (near-duplicates, normally few) from the difference itself.
        np.add(sa[:, None], sb[None, :], out=scratch)
        # float64: pairs closer than 1e-4 of the norms' scale; float32: closer than 10 %.
        scratch *= 1e-8 if tile.dtype == np.float64 else 1e-2
        ii, jj = np.nonzero(tile <= scratch)
        if ii.size:
            step = max(1, 2**22 // ap.shape[1])  # bound the (pairs, d) difference array to 32 MiB
            for k in range(0, ii.size, step):
                i, j = ii[k:k + step], jj[k:k + step]
                diff = ap[i].astype(np.float64) - bp[j].astype(np.float64)
                tile[i, j] = np.einsum("ij,ij->i", diff, diff)
        np.maximum(tile, 0.0, out=tile)
        np.sqrt(tile, out=tile)


class EuclideanL2Metric(EuclideanMetric):
    """Euclidean distance of the L2-normalised vectors (norm + 1e-10, as deepface), in [0, 2]."""

    name = "euclidean_l2"
    aliases = ("euclidean-l2",)
    description = "Euclidean distance between L2-normalised vectors, in [0, 2]"

    def _prepare(self, x: np.ndarray, dtype: np.dtype[Any], what: str,
                 offset: int) -> tuple[np.ndarray, np.ndarray]:
        xc = np.asarray(x, dtype=dtype)
        norms = np.sqrt(_squared_norms(xc, what, offset))
        unit = xc / (norms + 1e-10)[:, None]
        return unit, np.einsum("ij,ij->i", unit, unit)


BUILTIN_METRICS: dict[str, type[BlockwiseMetric]] = {
    cls.name: cls for cls in (CosineMetric, EuclideanMetric, EuclideanL2Metric, AngularMetric)
}
_DEFAULT_INSTANCES: dict[str, Metric] = {}


def _metric_key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get_metric(metric: str | Metric) -> Metric:
    """A metric instance from a name (built-in, alias or installed plugin) or an instance."""
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str):
        raise DataTypeError(f"metric must be a name or a Metric, got {type(metric).__name__}")
    key = _metric_key(metric)
    cls = BUILTIN_METRICS.get(key)
    if cls is not None:
        instance = _DEFAULT_INSTANCES.get(key)
        if instance is None:  # instances hold only their config, so sharing them is safe
            instance = _DEFAULT_INSTANCES.setdefault(key, cls())
        return instance
    from facepipe.registry import default_registry  # third-party metrics; raises with the choices

    created: Metric = default_registry().create("metric", metric)
    return created


# --------------------------------------------------------------------------------- functions
def pairwise(a: Any, b: Any, metric: str | Metric = "cosine", *, out: np.ndarray | None = None) -> np.ndarray:
    """``(n, m)`` distances between the rows of ``a`` (n, d) and ``b`` (m, d) with ``metric``."""
    m = get_metric(metric)
    if isinstance(m, BlockwiseMetric):
        return m.pairwise(a, b, out=out)
    result: np.ndarray = m.pairwise(a, b)
    if out is None:
        return result
    # a third-party metric without out= support: copy into the caller's buffer
    _check_out(out, *result.shape)[...] = result
    return out


def find_distance(a: Any, b: Any, metric: str | Metric = "cosine") -> float | np.ndarray:
    """deepface's ``find_distance``: two 1-D vectors -> a float; two 2-D batches -> an (n, m) matrix.

    Mixing a vector with a batch, or any other number of dimensions, raises
    :class:`InvalidEmbeddingsShapeError` (a ``ValueError``).  Not rounded: see :func:`round_distance`.
    """
    va, vb = _as_array(a, "a"), _as_array(b, "b")
    if va.ndim == 1 and vb.ndim == 1:
        return get_metric(metric).distance(va, vb)
    if va.ndim == 2 and vb.ndim == 2:
        return pairwise(va, vb, metric)
    if {va.ndim, vb.ndim} == {1, 2}:
        raise InvalidEmbeddingsShapeError(
            f"cannot compare a {va.ndim}-D input with a {vb.ndim}-D input: give two vectors (1-D) or "
            "two batches (2-D)"
        )
    raise InvalidEmbeddingsShapeError(
        f"embeddings must be 1-D vectors or 2-D batches, got shapes {va.shape} and {vb.shape}"
    )


def round_distance(x: Any) -> Any:
    """Round distances to 6 decimals, as deepface reports them: a float stays a float, an array an array."""
    if isinstance(x, np.ndarray) and x.ndim > 0:
        return np.round(x, 6)
    return round(float(x), 6)


def l2_normalize(x: Any) -> np.ndarray:
    """Scale a vector (or each row of an (n, d) array) to unit L2 norm; zero-norm rows are left as is."""
    arr = _as_array(x, "x")
    if arr.ndim not in (1, 2):
        raise InvalidEmbeddingsShapeError(f"x must be a vector or an (n, d) array, got shape {arr.shape}")
    values = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    safe = np.where(norms > 0, norms, 1).astype(values.dtype)
    return values / safe


def minmax_normalize(x: Any, value_range: tuple[float, float] | None) -> np.ndarray:
    """Clamp values to ``value_range`` = (min, max) and scale them to [0, 1].

    The range is the recognizer's declared ``RecognizerSpec.value_range``; None (SFace,
    GhostFaceNet, most third-party models) returns the values unchanged, as deepface does.
    """
    arr = _as_array(x, "x")
    values = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    if value_range is None:
        return values.copy()
    lo, hi = value_range
    scaled = (np.clip(values.astype(np.float64), lo, hi) - lo) / (hi - lo)
    return scaled.astype(values.dtype, copy=False)


# --------------------------------------------------------------------------------- plugin hook
@hookimpl
def facepipe_register_metrics(register: Register) -> None:
    """Register the four built-in metrics."""
    for cls in BUILTIN_METRICS.values():
        register(MetricSpec(
            name=cls.name,
            factory=f"facepipe.pipeline.metrics:{cls.__name__}",
            config=MetricConfig,
            aliases=cls.aliases,
            description=cls.description,
            license="MIT",
        ))


__all__ = [
    "BUILTIN_METRICS",
    "AngularMetric",
    "BlockwiseMetric",
    "CosineMetric",
    "EuclideanL2Metric",
    "EuclideanMetric",
    "InvalidEmbeddingValuesError",
    "MetricConfig",
    "facepipe_register_metrics",
    "find_distance",
    "get_metric",
    "l2_normalize",
    "minmax_normalize",
    "pairwise",
    "round_distance",
]
