"""The anti-spoofing hook: a plugin registered for it is used by the pipeline."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from facepipe import AntiSpooferSpec, Pipeline, PluginRegistry, hookimpl
from facepipe.errors import SpoofDetectedError
from facepipe.types import AntiSpoofer, PluginConfig


class BrightnessConfig(PluginConfig):
    min_mean: float = 100.0


class BrightnessSpoofer(AntiSpoofer):
    """Test plugin: a face whose crop is darker than ``min_mean`` counts as fake."""

    config_class = BrightnessConfig

    def check(self, image, boxes):  # type: ignore[no-untyped-def]
        out = []
        for x, y, w, h in boxes:
            mean = float(image[y:y + h, x:x + w].mean())
            out.append((mean >= self.config.min_mean, min(mean / 255.0, 1.0)))
        return out


def _registry() -> PluginRegistry:
    module = types.ModuleType("spoof_plugin")

    def register_spoofers(register):  # type: ignore[no-untyped-def]
        register(AntiSpooferSpec(name="brightness", factory=f"{__name__}:BrightnessSpoofer", config=BrightnessConfig))

    module.facepipe_register_antispoofers = hookimpl(register_spoofers)  # type: ignore[attr-defined]
    registry = PluginRegistry()
    registry.register_module(module, distribution="test")
    return registry


def test_antispoofer_results_are_reported_and_enforced(dataset: Path) -> None:
    need("cv2")
    registry = _registry()
    assert registry.get("antispoofer", "brightness").distribution == "test"
    lenient = Pipeline.from_config({"detector": "skip", "recognizer": "Dlib",
                                    "anti_spoofing": {"name": "brightness", "min_mean": 0}}, registry=registry)
    (face,) = lenient.extract_faces(dataset / "img5.jpg")
    data = face.to_dict()
    assert data["is_real"] is True and 0 < data["antispoof_score"] <= 1
    strict = Pipeline.from_config({"detector": "skip", "recognizer": "Dlib",
                                   "anti_spoofing": {"name": "brightness", "min_mean": 250}}, registry=registry)
    (face,) = strict.extract_faces(dataset / "img5.jpg")
    assert face.is_real is False
    with pytest.raises(SpoofDetectedError, match="judged fake"):
        strict.represent(dataset / "img5.jpg")
    with pytest.raises(SpoofDetectedError):
        strict.verify(dataset / "img5.jpg", np.zeros(128).tolist())


def test_unknown_antispoofer_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown antispoofer"):
        Pipeline.from_config({"detector": "skip", "recognizer": "Dlib", "anti_spoofing": "no-such-spoofer"})


def test_find_judges_the_query_not_the_folder(dataset: Path, tmp_path: Path) -> None:
    need("cv2")
    import shutil

    from facepipe.gallery.find import find

    for name in ("img1.jpg", "img4.jpg"):  # darker than 130 on average: "fake" for this plugin
        shutil.copy(dataset / name, tmp_path / name)
    pipeline = Pipeline.from_config({"detector": "skip", "recognizer": "Dlib",
                                     "anti_spoofing": {"name": "brightness", "min_mean": 130}}, registry=_registry())
    try:
        (result,) = find(pipeline, dataset / "img2.jpg", tmp_path, similarity_search=True)  # a bright query
        assert sorted(Path(row["identity"]).name for row in result.rows) == ["img1.jpg", "img4.jpg"]
        with pytest.raises(SpoofDetectedError):
            find(pipeline, dataset / "img5.jpg", tmp_path)  # a dark query
    finally:
        pipeline.close()
