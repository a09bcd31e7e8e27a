"""The built-in distance metrics, the module-level helpers and the normalisation functions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from facepipe import PluginRegistry
from facepipe.errors import (
    ConfigError,
    DataTypeError,
    DimensionMismatchError,
    InvalidEmbeddingsShapeError,
)
from facepipe.pipeline.metrics import (
    BUILTIN_METRICS,
    InvalidEmbeddingValuesError,
    MetricConfig,
    find_distance,
    get_metric,
    l2_normalize,
    minmax_normalize,
    pairwise,
    round_distance,
)
from facepipe.types import Metric
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers.paths import REFERENCE

METRIC_NAMES = ["cosine", "euclidean", "euclidean_l2", "angular"]
#: deepface's published decision values, committed (extracted from its fact sheet; see the file's
#: "source" note and tests/tools/check_deepface_extract.py)
PUBLISHED = json.loads((REFERENCE / "deepface-decision.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ reference formulas
def direct(x: np.ndarray, y: np.ndarray, metric: str) -> float:
    """One pair, straight from the definitions (fact sheet §5.4), in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    nx, ny = np.sqrt(np.sum(x * x)), np.sqrt(np.sum(y * y))
    if metric == "euclidean":
        return float(np.sqrt(np.sum((x - y) ** 2)))
    if metric == "euclidean_l2":
        return float(np.sqrt(np.sum((x / (nx + 1e-10) - y / (ny + 1e-10)) ** 2)))
    # facepipe's documented convention: a zero vector has cosine similarity 0 to anything
    sim = 0.0 if nx == 0 or ny == 0 else float(np.sum(x * y) / (nx * ny))
    sim = min(1.0, max(-1.0, sim))
    if metric == "cosine":
        return 1.0 - sim
    return float(np.arccos(sim) / np.pi)


def direct_matrix(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    return np.array([[direct(x, y, metric) for y in b] for x in a]).reshape(len(a), len(b))


# Values whose squares neither underflow nor overflow; exact zeros allowed (zero vectors).
_values = st.one_of(
    st.just(0.0),
    st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False).filter(
        lambda v: v == 0 or abs(v) > 1e-3),
)


@st.composite
def two_batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    d = draw(st.integers(1, 12))
    n = draw(st.integers(1, 6))
    m = draw(st.integers(1, 6))
    a = draw(hnp.arrays(np.float64, (n, d), elements=_values))
    b = draw(hnp.arrays(np.float64, (m, d), elements=_values))
    return a, b


metric_names = st.sampled_from(METRIC_NAMES)


# ------------------------------------------------------------------------------ properties
@settings(max_examples=60, deadline=None)
@given(two_batches(), metric_names)
def test_symmetry_and_agreement_with_direct_formula(ab: tuple[np.ndarray, np.ndarray], metric: str) -> None:
    a, b = ab
    ab_d = pairwise(a, b, metric)
    ba_d = pairwise(b, a, metric)
    assert ab_d.shape == (len(a), len(b)) and ab_d.dtype == np.float64
    # (arccos turns a one-ulp difference between the two products into ~5e-9)
    np.testing.assert_allclose(ab_d, ba_d.T, rtol=1e-12, atol=1e-7 if metric == "angular" else 1e-12)
    np.testing.assert_allclose(ab_d, direct_matrix(a, b, metric), rtol=1e-6, atol=1e-7)
    assert np.isfinite(ab_d).all()
    assert (ab_d >= 0).all()


@settings(max_examples=60, deadline=None)
@given(two_batches(), metric_names)
def test_zero_on_identical_inputs(ab: tuple[np.ndarray, np.ndarray], metric: str) -> None:
    a, _ = ab
    d = pairwise(a, a, metric).diagonal()
    nonzero = np.linalg.norm(a, axis=1) > 0
    # identical non-zero vectors are at distance 0 under every metric
    np.testing.assert_allclose(d[nonzero], 0.0, atol=1e-6)
    # a zero vector against itself: 0 for the euclidean ones, the documented 1.0 / 0.5 otherwise
    expected_zero = {"cosine": 1.0, "angular": 0.5, "euclidean": 0.0, "euclidean_l2": 0.0}[metric]
    np.testing.assert_allclose(d[~nonzero], expected_zero, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(two_batches())
def test_ranges_and_cosine_angular_relation(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    cos = pairwise(a, b, "cosine")
    ang = pairwise(a, b, "angular")
    l2 = pairwise(a, b, "euclidean_l2")
    assert ((ang >= 0) & (ang <= 1)).all()
    assert ((cos >= 0) & (cos <= 2)).all()
    assert ((l2 >= 0) & (l2 <= 2 + 1e-9)).all()
    np.testing.assert_allclose(ang, np.arccos(np.clip(1 - cos, -1, 1)) / np.pi, atol=1e-9)
    # monotone: a larger cosine distance never gives a smaller angular distance (up to rounding,
    # which arccos magnifies near +-1: one ulp of the cosine moves the angle by ~5e-9)
    c, g = cos.ravel(), ang.ravel()
    order = np.argsort(c, kind="stable")
    assert (np.diff(g[order]) >= -1e-7).all()


@settings(max_examples=30, deadline=None)
@given(two_batches(), metric_names, st.integers(1, 4))
def test_tiling_does_not_change_results(ab: tuple[np.ndarray, np.ndarray], metric: str, rows: int) -> None:
    a, b = ab
    cls = BUILTIN_METRICS[metric]
    whole = cls().pairwise(a, b)
    # the smallest budget forces one-row blocks and small column chunks
    tiled = cls(MetricConfig(block_rows=rows, block_bytes=2**16)).pairwise(a, b)
    # another summation order may move a dot product by an ulp, which arccos magnifies to ~5e-9
    atol = 1e-7 if metric == "angular" else 1e-12
    np.testing.assert_allclose(whole, tiled, rtol=1e-12, atol=atol)


# ------------------------------------------------------------------------------ examples
def test_known_values() -> None:
    a = np.array([1.0, 0.0])
    b = np.array([0.0, 2.0])
    assert find_distance(a, b, "cosine") == pytest.approx(1.0)
    assert find_distance(a, b, "euclidean") == pytest.approx(np.sqrt(5))
    assert find_distance(a, b, "euclidean_l2") == pytest.approx(np.sqrt(2))
    assert find_distance(a, b, "angular") == pytest.approx(0.5)
    assert find_distance(a, -a, "cosine") == pytest.approx(2.0)
    assert find_distance(a, -a, "angular") == pytest.approx(1.0)


def test_euclidean_precision_for_near_duplicates() -> None:
    # large norms, tiny difference: the |a|^2+|b|^2-2ab expansion alone would lose it
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 128)) * 50
    b = a + 1e-6 * rng.normal(size=a.shape)
    got = pairwise(a, b, "euclidean").diagonal()
    want = np.linalg.norm(a - b, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_float32_inputs_and_out_buffer() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(37, 64)).astype(np.float32)
    b = rng.normal(size=(53, 64)).astype(np.float32)
    for metric in METRIC_NAMES:
        ref = direct_matrix(a, b, metric)
        out = np.full((37, 53), np.nan, dtype=np.float32)
        got = pairwise(a, b, metric, out=out)
        assert got is out and out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
        out64 = np.empty((37, 53))
        pairwise(a, b, metric, out=out64)
        np.testing.assert_allclose(out64, ref, rtol=1e-9, atol=1e-9)
        # a non-contiguous destination (a view into a larger matrix) works too
        big = np.zeros((40, 60))
        pairwise(a, b, metric, out=big[1:38, 2:55])
        np.testing.assert_allclose(big[1:38, 2:55], ref, rtol=1e-9, atol=1e-9)
        assert not big[0].any() and not big[:, 55:].any()


def test_explicit_float64_compute_into_float32_out() -> None:
    rng = np.random.default_rng(8)
    a = rng.normal(size=(9, 32)).astype(np.float32)
    b = rng.normal(size=(11, 32)).astype(np.float32)
    for metric in METRIC_NAMES:
        out = np.empty((9, 11), dtype=np.float32)
        BUILTIN_METRICS[metric](MetricConfig(compute_dtype="float64")).pairwise(a, b, out=out)
        # only the final rounding to float32 remains
        np.testing.assert_allclose(out, direct_matrix(a, b, metric), rtol=2e-7, atol=1e-7)


def test_third_party_metric_instance_and_out() -> None:
    class Manhattan(Metric):
        name = "manhattan"

        def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.abs(np.asarray(a)[:, None, :] - np.asarray(b)[None, :, :]).sum(-1)

    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = np.array([[1.0, 2.0]])
    out = np.zeros((2, 1), dtype=np.float32)
    assert pairwise(a, b, Manhattan(), out=out) is out
    np.testing.assert_array_equal(out[:, 0], [3.0, 1.0])
    assert find_distance(a[0], b[0], Manhattan()) == 3.0


def test_float32_compute_recomputes_near_duplicates() -> None:
    rng = np.random.default_rng(6)
    a = (rng.normal(size=(4, 512)) * 10).astype(np.float32)
    b = a.copy()
    b[:, 0] += 1e-2
    out = np.empty((4, 4), dtype=np.float32)
    pairwise(a, b, "euclidean", out=out)
    np.testing.assert_allclose(out.diagonal(), 1e-2, rtol=1e-3)


def test_integer_inputs_and_lists() -> None:
    assert find_distance([3, 4], [0, 0], "euclidean") == pytest.approx(5.0)
    matrix = find_distance([[1, 0], [0, 1]], [[1, 0]], "cosine")
    assert isinstance(matrix, np.ndarray) and matrix.shape == (2, 1)
    np.testing.assert_allclose(matrix[:, 0], [0.0, 1.0])


def test_empty_batches() -> None:
    assert pairwise(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert pairwise(np.ones((2, 4)), np.zeros((0, 4)), "euclidean").shape == (2, 0)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(5, 8))
    b = rng.normal(size=(6, 8))
    a0, b0 = a.copy(), b.copy()
    for metric in METRIC_NAMES:
        pairwise(a, b, metric)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# ------------------------------------------------------------------------------ validation
def test_find_distance_shapes() -> None:
    v = np.ones(4)
    m = np.ones((2, 4))
    assert isinstance(find_distance(v, v, "cosine"), float)
    assert find_distance(m, m, "euclidean").shape == (2, 2)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="1-D"):
        find_distance(v, m, "cosine")
    with pytest.raises(InvalidEmbeddingsShapeError):
        find_distance(np.ones((1, 1, 4)), np.ones((1, 1, 4)), "cosine")
    with pytest.raises(InvalidEmbeddingsShapeError):
        find_distance(np.float64(1.0), np.float64(1.0), "cosine")


def test_validation_errors() -> None:
    cos = get_metric("cosine")
    with pytest.raises(DimensionMismatchError, match="128 dimensions .* 512"):
        cos.pairwise(np.ones((2, 128)), np.ones((3, 512)))
    with pytest.raises(DimensionMismatchError):
        cos.distance(np.ones(3), np.ones(4))
    with pytest.raises(InvalidEmbeddingsShapeError, match="2-D"):
        cos.pairwise(np.ones(4), np.ones((3, 4)))
    with pytest.raises(InvalidEmbeddingsShapeError, match="1-D"):
        cos.distance(np.ones((2, 4)), np.ones(4))
    with pytest.raises(InvalidEmbeddingsShapeError, match="length 0"):
        cos.pairwise(np.ones((2, 0)), np.ones((2, 0)))
    with pytest.raises(InvalidEmbeddingsShapeError, match="rectangular"):
        cos.pairwise([[1.0, 2.0], [1.0]], np.ones((1, 2)))
    with pytest.raises(DataTypeError, match="float"):
        cos.distance(["a", "b"], [1.0, 2.0])
    with pytest.raises(InvalidEmbeddingValuesError, match=r"b\[1\]"):
        cos.pairwise(np.ones((2, 3)), np.array([[1.0, 2, 3], [1, np.nan, 3]]))
    with pytest.raises(InvalidEmbeddingValuesError):
        get_metric("euclidean").pairwise(np.array([[np.inf, 0.0]]), np.ones((1, 2)))
    with pytest.raises(InvalidEmbeddingsShapeError, match="out has shape"):
        pairwise(np.ones((2, 3)), np.ones((4, 3)), out=np.empty((4, 2)))
    with pytest.raises(DataTypeError, match="floating"):
        pairwise(np.ones((2, 3)), np.ones((4, 3)), out=np.empty((2, 4), dtype=np.int64))
    for exc_type in (DimensionMismatchError, InvalidEmbeddingsShapeError, DataTypeError):
        assert issubclass(exc_type, ValueError)


def test_unknown_metric_lists_choices() -> None:
    with pytest.raises(ConfigError, match="cosine"):
        pairwise(np.ones((1, 2)), np.ones((1, 2)), "manhattan")
    with pytest.raises(ValueError):
        find_distance(np.ones(2), np.ones(2), "manhattan")


def test_metric_names_are_forgiving() -> None:
    assert get_metric("Euclidean-L2").name == "euclidean_l2"
    assert get_metric(" COSINE ").name == "cosine"
    instance = BUILTIN_METRICS["angular"]()
    assert get_metric(instance) is instance


def test_round_distance() -> None:
    assert round_distance(0.12345678) == 0.123457
    assert isinstance(round_distance(np.float64(0.5)), float)
    arr = round_distance(np.array([[0.1234564, 1.0000006]]))
    np.testing.assert_array_equal(arr, [[0.123456, 1.000001]])


# ------------------------------------------------------------------------------ normalisation
def test_l2_normalize() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    y = l2_normalize(x)
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(l2_normalize([3, 4]), [0.6, 0.8])
    f32 = l2_normalize(np.ones((2, 4), dtype=np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f32, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(x[1], [0.0, 0.0])  # input untouched


FACENET_RANGE = (-3.541942596435547, 3.247769594192505)  # fact sheet §2.3


def test_minmax_normalize() -> None:
    lo, hi = FACENET_RANGE
    x = np.array([lo - 1.0, lo, 0.0, hi, hi + 5.0])
    got = minmax_normalize(x, FACENET_RANGE)
    np.testing.assert_allclose(got, [0.0, 0.0, -lo / (hi - lo), 1.0, 1.0])
    # no declared range: unchanged
    v = np.linspace(-0.1, 0.4, 7)
    np.testing.assert_array_equal(minmax_normalize(v, None), v)
    batch = minmax_normalize(np.full((2, 3), 100.0, dtype=np.float32), (0.0, 127.86836242675781))
    assert batch.dtype == np.float32 and batch.shape == (2, 3)
    np.testing.assert_allclose(batch, 100.0 / 127.86836242675781, rtol=1e-6)


def test_declared_value_ranges_match_deepface() -> None:
    """Each built-in recognizer declares deepface's min-max range (fact sheet §2.3, committed in
    ``tests/reference/deepface-decision.json``), or none where deepface has none."""
    rows = {name: tuple(bounds) for name, bounds in PUBLISHED["value_ranges"].items()}
    assert FACENET_RANGE == rows["Facenet"]
    registry = PluginRegistry()
    declared = {name: registry.get("recognizer", name).value_range for name in registry.names("recognizer")}
    assert {name: declared[name] for name in rows} == rows
    assert all(value is None for name, value in declared.items() if name not in rows)


# ------------------------------------------------------------------------------ registry
def test_registry_lists_the_four_metrics() -> None:
    registry = PluginRegistry()
    infos = {p.name: p for p in registry.plugins() if p.kind == "metric"}
    assert set(METRIC_NAMES) <= set(infos)
    for name in METRIC_NAMES:
        assert infos[name].status == "ok", infos[name]
        assert infos[name].distribution == "facepipe"
    metric = registry.create("metric", "euclidean-l2", {"block_rows": 3})
    assert metric.name == "euclidean_l2" and metric.config.block_rows == 3
    assert metric.distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(np.sqrt(2))
    with pytest.raises(ConfigError, match="block_rows"):
        registry.create("metric", "cosine", {"block_rows": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        registry.create("metric", "cosine", {"blocks": 2})


def test_metrics_module_imports_no_ml_runtime() -> None:
    code = ("import sys, facepipe.pipeline.metrics, facepipe.pipeline.decision; "
            "print([m for m in ('tensorflow', 'keras', 'cv2', 'torch', 'dlib', 'onnxruntime') "
            "if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ memory
_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    import numpy as np
    from facepipe.pipeline.metrics import pairwise

    n, m, d = 2000, 100_000, 512
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, d), dtype=np.float32)
    b = rng.standard_normal((m, d), dtype=np.float32)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = np.empty((n, m), dtype=np.float32)
    tracemalloc.start()
    t0 = time.perf_counter()
    pairwise(a, b, "cosine", out=out)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    idx = [(0, 0), (123, 45_678), (1999, 99_999), (1000, 5)]
    sample = [[float(out[i, j]), float(a[i].astype(float) @ b[j].astype(float)
               / np.linalg.norm(a[i].astype(float)) / np.linalg.norm(b[j].astype(float)))]
              for i, j in idx]
    print(json.dumps({"seconds": seconds, "rss_increase": rss - base, "traced_peak": peak,
                      "finite": bool(np.isfinite(out).all()), "sample": sample}))
""")


@pytest.mark.slow
def test_pairwise_memory_is_bounded_for_a_large_gallery() -> None:
    """2,000 x 100,000 x 512 float32 into a float32 buffer: output 0.8 GB, an (n, m, d) array 410 GB."""
    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], check=False, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    output_bytes = 2000 * 100_000 * 4
    # whole-process peak: the output buffer plus bounded temporaries
    assert stats["rss_increase"] < 1.5e9, stats
    assert stats["rss_increase"] < output_bytes + 400e6, stats
    # allocations made by pairwise itself (the output buffer existed before)
    assert stats["traced_peak"] < 300e6, stats
    assert stats["finite"]
    for got, similarity in stats["sample"]:
        assert got == pytest.approx(1 - similarity, abs=1e-5)
