"""facepipe.vectors (the kernel's exact k-NN for store plugins) agrees with facepipe.pipeline.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.pipeline.metrics import pairwise
from facepipe.vectors import STORE_METRICS, distances, exact_top_k


@pytest.mark.parametrize("metric", STORE_METRICS)
def test_distances_and_top_k_match_the_pipeline_metrics(metric: str) -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(50, 12)) * rng.uniform(0.1, 3, (50, 1))
    rows[4] = 0.0  # the zero-vector conventions must agree too
    queries = np.concatenate([rng.normal(size=(3, 12)), rows[7:8], np.zeros((1, 12))])
    want = pairwise(queries, rows, metric)
    np.testing.assert_allclose(distances(queries, rows, metric), want, atol=1e-6)
    index, dist = exact_top_k(queries, rows.astype(np.float32), 6, metric, block_rows=7)
    np.testing.assert_allclose(dist, np.sort(want, axis=1)[:, :6], atol=1e-5)
    assert index.shape == (5, 6) and index[3, 0] == 7
