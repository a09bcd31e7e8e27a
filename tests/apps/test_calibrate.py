"""`facepipe calibrate`: threshold for a target false-accept rate, on real pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from facepipe.apps.calibrate import calibrate, choose_threshold, read_pairs
from facepipe.errors import ConfigError


def test_choose_threshold_respects_target_far() -> None:
    rng = np.random.default_rng(0)
    same = np.array([True] * 50 + [False] * 200)
    distances = np.concatenate([rng.uniform(0, 0.4, 50), rng.uniform(0.3, 1.0, 200)])
    for far in (0.0, 0.01, 0.05, 0.2):
        t = choose_threshold(distances, same, far)
        accepted_impostors = np.mean(distances[~same] <= t)
        assert accepted_impostors <= far + 1e-12
    assert choose_threshold(distances, same, 0.2) > choose_threshold(distances, same, 0.01)


def test_bad_labels_and_columns(tmp_path: Path) -> None:
    bad = tmp_path / "pairs.csv"
    bad.write_text("file_x,file_y,Decision\na.jpg,b.jpg,maybe\n")
    with pytest.raises(ConfigError, match="neither same"):
        read_pairs(bad)
    bad.write_text("left,right\na.jpg,b.jpg\n")
    with pytest.raises(ConfigError, match="missing column"):
        read_pairs(bad)


def test_calibrate_on_real_pairs(dataset: Path, tmp_path: Path) -> None:
    need("dlib")
    from facepipe import Pipeline

    # 12 pairs of master.csv (same- and different-person), images from the shared dataset.
    lines = (dataset / "master.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    chosen = [r for r in rows if r.endswith("Yes")][:5] + [r for r in rows if r.endswith("No")][:7]
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("\n".join([header] + [",".join(str(dataset / c) if k < 2 else c
                                                      for k, c in enumerate(r.split(","))) for r in chosen]))
    pipeline = Pipeline.from_config({"detector": "opencv", "recognizer": "Dlib", "detect_max_side": 800})
    result = calibrate(pipeline, csv_path, target_far=0.0)
    assert result.pairs == 12 and result.same_pairs == 5
    assert result.far == 0.0
    assert 0 < result.threshold < 1
    assert result.accuracy >= 0.9
