"""iter_stream() with the hermetic plugins and frames given in memory: no dlib, no OpenCV, no photos.

The real-video suite (``test_stream.py``) decodes and writes real video files; this one checks the
frame loop, the identification against a gallery and the frame skipping on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facepipe import Pipeline
from facepipe.apps.stream import iter_stream
from facepipe.errors import ConfigError
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry
from tests.helpers.synthetic_faces import photo, write_png


@pytest.fixture
def pipeline() -> Any:
    p = Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())
    yield p
    p.close()


def test_faces_are_identified_against_the_gallery(pipeline: Pipeline, tmp_path: Path) -> None:
    write_png(tmp_path / "gallery" / "alice.png", photo(1, 0))
    write_png(tmp_path / "gallery" / "bob.png", photo(2, 0))
    frames = [photo(1, 1), photo(1, 2), photo(2, 2), photo(5, 1)]
    items = list(iter_stream(0, pipeline, db_path=tmp_path / "gallery", frames=frames, every_n_frames=2))
    assert [index for index, _, _ in items] == [0, 1, 2, 3]
    results = [result for _, _, result in items if result is not None]
    assert [r.frame_index for r in results] == [0, 2]
    (first,), (second,) = results[0].faces, results[1].faces
    assert Path(first.identity).name == "alice.png" and first.distance < pipeline.threshold()
    assert Path(second.identity).name == "bob.png"


def test_unknown_faces_have_no_identity(pipeline: Pipeline, tmp_path: Path) -> None:
    write_png(tmp_path / "gallery" / "alice.png", photo(1, 0))
    (item,) = list(iter_stream(0, pipeline, db_path=tmp_path / "gallery", frames=[photo(3, 1)]))
    (face,) = item[2].faces
    assert face.identity is None


def test_max_frames_and_bad_settings(pipeline: Pipeline) -> None:
    frames = [photo(1, k % 3) for k in range(6)]
    assert len(list(iter_stream(0, pipeline, frames=frames, max_frames=4))) == 4
    with pytest.raises(ConfigError, match="every_n_frames"):
        list(iter_stream(0, pipeline, frames=frames, every_n_frames=0))


def test_fake_faces_are_marked_and_never_identified(pipeline: Pipeline, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("cv2")
    from facepipe.apps.stream import FAKE, draw
    from facepipe.plugins.antispoofers.fasnet import FasnetConfig, FasnetSpoofer
    from tests.helpers.synthetic_fasnet import synthetic_fasnet

    write_png(tmp_path / "gallery" / "alice.png", photo(1, 0))
    verdicts = {}
    for lean in ("real", "fake"):
        graphs = synthetic_fasnet(7, lean)
        spoofer = FasnetSpoofer(FasnetConfig(v2_weights_path=graphs["V2"], v1se_weights_path=graphs["V1SE"]))
        (item,) = list(iter_stream(0, pipeline, db_path=tmp_path / "gallery", frames=[photo(1, 1)],
                                   antispoofer=spoofer))
        (face,) = item[2].faces
        verdicts[lean] = face
        assert face.to_dict()["is_real"] is (lean == "real")
    assert Path(verdicts["real"].identity).name == "alice.png"
    assert verdicts["fake"].identity is None and verdicts["fake"].label().startswith("fake")
    frame = photo(1, 1)
    drawn = draw(frame, type(item[2])(0, [verdicts["fake"]]))
    assert (drawn == np.array(FAKE, dtype=np.uint8)).all(axis=-1).any()
