"""The `facepipe` command line: plugins, config, models, --version, help texts, serve without its extra."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


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


def test_version() -> None:
    import facepipe

    out = _cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"facepipe {facepipe.__version__}"


HIDE_MODULE = """
import sys
sys.modules[{name!r}] = None  # what an environment without the package looks like to `import`
from facepipe.apps.cli import main
sys.exit(main(["serve", "--port", "0"]))
"""


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_serve_without_the_service_extra_says_what_to_install(missing: str) -> None:
    env = dict(os.environ, FACEPIPE_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", HIDE_MODULE.format(name=missing)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "pip install 'facepipe[service]'" in out.stderr and missing in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def _walk(parser: argparse.ArgumentParser, path: str = "facepipe") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield f"{path} {name}", argparse.Action([name], name, help=helps.get(name))
                yield from _walk(child, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_command_option_and_argument_has_help() -> None:
    from facepipe.apps.cli import build_parser

    found = list(_walk(build_parser()))
    assert len(found) > 50  # the walk reached the subcommands
    missing = [f"{path}: {'/'.join(action.option_strings) or action.dest}" for path, action in found
               if not (action.help or "").strip() or action.help == argparse.SUPPRESS]
    assert missing == []


def test_draw_on_a_real_photo(dataset: Path, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    target = tmp_path / "drawn.jpg"
    out = _cli("draw", str(dataset / "img1.jpg"), "--output", str(target), "--detector", "opencv", "--json")
    assert out.returncode == 0, out.stderr
    (face,) = json.loads(out.stdout)["faces"]
    assert face["w"] > 100 and face["left_eye"] is not None
    assert cv2.imread(str(target)).shape == cv2.imread(str(dataset / "img1.jpg")).shape


def test_video_of_real_photos(dataset: Path, tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    frames = [cv2.resize(cv2.imread(str(dataset / name)), (320, 400)) for name in ("img1.jpg", "img2.jpg", "img3.jpg")]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (320, 400))
    for frame in frames * 2:
        writer.write(frame)
    writer.release()
    out = _cli("--quiet", "video", str(video), "--every", "2", "--detector", "opencv", "-o", str(tmp_path / "out.mp4"))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [item["frame"] for item in lines[:-1]] == [0, 2, 4]
    assert all(len(item["faces"]) >= 1 for item in lines[:-1])
    assert lines[-1]["summary"]["frames"] == 6 and (tmp_path / "out.mp4").stat().st_size > 0
