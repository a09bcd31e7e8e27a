"""The `facepipe` command line: plugins, config, models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FACEPIPE_OFFLINE="1")
    if home is not None:
        env["FACEPIPE_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "facepipe.apps.cli", *args], capture_output=True, text=True, env=env)


def test_plugins_json_lists_every_kind_with_status() -> None:
    out = _cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert set(rows[0]) >= {"name", "kind", "distribution", "version", "status", "extra"}
    by_kind: dict[str, set[str]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], set()).add(row["name"])
    assert {"opencv", "ssd", "dlib", "mtcnn", "fastmtcnn", "retinaface", "mediapipe", "yolov8n", "yunet",
            "centerface", "skip"} <= by_kind["detector"]
    assert {"VGG-Face", "Facenet", "Facenet512", "OpenFace", "DeepFace", "DeepID", "ArcFace", "Dlib", "SFace",
            "GhostFaceNet"} <= by_kind["recognizer"]
    assert {"Age", "Gender", "Race", "Emotion"} <= by_kind["analyzer"]
    assert {"cosine", "euclidean", "euclidean_l2", "angular"} <= by_kind["metric"]
    assert "unknown" not in by_kind, [r for r in rows if r["kind"] == "unknown"]


def test_plugins_table() -> None:
    out = _cli("plugins", "--kind", "metric")
    assert out.returncode == 0
    assert "cosine" in out.stdout and "status" in out.stdout


def test_plugins_json_gives_a_licence_for_every_builtin() -> None:
    out = _cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    builtin = [row for row in json.loads(out.stdout) if row["distribution"] == "facepipe"]
    assert builtin
    assert [row["name"] for row in builtin if not (row.get("license") or "").strip()] == []
    table = _cli("plugins", "--kind", "metric")
    assert "licence" in table.stdout and "MIT" in table.stdout


def test_config_schema_is_json_schema() -> None:
    out = _cli("config", "schema")
    schema = json.loads(out.stdout)
    assert schema["type"] == "object" and "detector" in schema["properties"]


def test_config_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("detector: {name: opencv, min_neighbors: 5}\nrecognizer: Dlib\n")
    assert _cli("config", "validate", str(good)).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: {name: opencv, min_neigbors: 5}\nrecognizer: Dlib\n")
    out = _cli("config", "validate", str(bad))
    assert out.returncode == 2 and "detector.min_neigbors: unknown key" in out.stderr


def test_models_list_shows_package_files_and_missing_ones(tmp_path: Path) -> None:
    out = _cli("models", "list", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["dlib_face_recognition_resnet_model_v1.dat"]["where"] == "package"
    assert rows["facenet_weights.h5"]["where"] == "missing"


def test_models_pull_offline_says_where_to_put_the_file(tmp_path: Path) -> None:
    out = _cli("models", "pull", "Facenet", home=tmp_path)
    assert out.returncode == 1
    assert str(tmp_path / "weights" / "facenet_weights.h5") in out.stderr


def test_models_pull_of_a_packaged_file_succeeds_offline(tmp_path: Path) -> None:
    out = _cli("models", "pull", "Dlib", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "dlib_face_recognition_resnet_model_v1.dat" in out.stdout


def test_models_verify(tmp_path: Path) -> None:
    out = _cli("models", "verify", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "dlib_face_recognition_resnet_model_v1.dat: ok" in out.stdout
