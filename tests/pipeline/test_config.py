"""Pipeline configuration: forms, file formats, and clear errors naming the key path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facepipe import Pipeline
from facepipe.pipeline.config import PipelineConfig, parse_config
from facepipe.errors import ConfigError, PluginNotFoundError

SHORT = {"detector": "opencv", "recognizer": "Dlib", "metric": "cosine", "align": True}


def test_short_form() -> None:
    cfg = parse_config(SHORT)
    assert cfg.detector.name == "opencv" and cfg.detector.options == {}
    assert cfg.recognizer.name == "Dlib" and cfg.align is True


def test_long_form_keeps_plugin_options() -> None:
    cfg = parse_config({"detector": {"name": "opencv", "min_neighbors": 5}, "recognizer": "Dlib"})
    assert cfg.detector.name == "opencv"
    assert cfg.detector.options == {"min_neighbors": 5}


def test_defaults_are_the_offline_pipeline() -> None:
    cfg = PipelineConfig()
    assert (cfg.detector.name, cfg.recognizer.name, cfg.metric.name) == ("dlib", "Dlib", "cosine")


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match=r"detectr: unknown key"):
        parse_config({"detectr": "opencv"})


def test_wrong_type_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"batch_size: .*got 'many'"):
        parse_config({"batch_size": "many"})
    with pytest.raises(ConfigError, match=r"expand_percentage"):
        parse_config({"expand_percentage": -5})


def test_unknown_plugin_suggests_close_match() -> None:
    with pytest.raises(PluginNotFoundError, match=r"Did you mean 'opencv'"):
        Pipeline.from_config({**SHORT, "detector": "opencvv"})


def test_unknown_plugin_option_names_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"recognizer\.jitter: unknown key"):
        Pipeline.from_config({**SHORT, "recognizer": {"name": "Dlib", "jitter": 3}})


def test_wrong_plugin_option_type_names_the_key_path() -> None:
    with pytest.raises(ConfigError, match=r"recognizer\.num_jitters: .*got 'lots'"):
        Pipeline.from_config({**SHORT, "recognizer": {"name": "Dlib", "num_jitters": "lots"}})


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".toml"])
def test_each_file_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pipeline{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({**SHORT, "detector": {"name": "opencv", "min_neighbors": 4}}))
    elif suffix == ".toml":
        path.write_text('recognizer = "Dlib"\nmetric = "cosine"\nalign = true\n\n'
                        '[detector]\nname = "opencv"\nmin_neighbors = 4\n')
    else:
        path.write_text("detector:\n  name: opencv\n  min_neighbors: 4\n"
                        "recognizer: Dlib\nmetric: cosine\nalign: true\n")
    pipeline = Pipeline.from_config(path)
    assert pipeline.config.detector.name == "opencv"
    assert pipeline.plugin_configs["detector"].min_neighbors == 4  # validated by the plugin's config class


@pytest.mark.parametrize("text,suffix,match", [
    ("detector: [unclosed", ".yaml", "could not parse"),
    ("{not json", ".json", "could not parse"),
    ("- a\n- b\n", ".yaml", "top level must be a mapping"),
    ("x = 1", ".ini", "unsupported config file type"),
])
def test_bad_files(tmp_path: Path, text: str, suffix: str, match: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        parse_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        parse_config(Path("/nonexistent/pipeline.yaml"))


def test_config_round_trips_through_json() -> None:
    cfg = parse_config({"detector": {"name": "opencv", "min_neighbors": 4}, "recognizer": "Dlib", "max_faces": 2})
    again = PipelineConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
