"""A third-party plugin package is discovered, configured and used like a built-in."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

EXAMPLE = REPO / "examples" / "facepipe-example-plugin"


def _pip(*args: str, env_path: str | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _run(code: str, pythonpath: str | None = None) -> str:
    import os

    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def installed_example():
    _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE))
    try:
        yield
    finally:
        _pip("uninstall", "-y", "facepipe-example-plugin")


def test_example_plugin_is_discovered_configured_and_used(installed_example, dataset: Path) -> None:
    out = _run(f"""
        import json
        from facepipe import Pipeline, PluginRegistry
        registry = PluginRegistry()
        rows = {{(r.kind, r.name): r.to_dict() for r in registry.plugins()}}
        det, met = rows[("detector", "center-crop")], rows[("metric", "manhattan")]
        pipeline = Pipeline.from_config({{"detector": {{"name": "center-crop", "fraction": 0.5}},
                                          "recognizer": "Dlib",
                                          "metric": "manhattan"}}, registry=registry)
        faces = pipeline.extract_faces({str(dataset / "img1.jpg")!r}, align=False)
        result = pipeline.verify({str(dataset / "img1.jpg")!r}, {str(dataset / "img1.jpg")!r}, threshold=1.0)
        print(json.dumps({{"det": det, "met": met, "w": faces[0].area.w, "distance": result.distance,
                           "metric": result.similarity_metric}}))
    """)
    data = json.loads(out.strip().splitlines()[-1])
    assert data["det"]["distribution"] == "facepipe-example-plugin" and data["det"]["status"] == "ok"
    assert data["met"]["distribution"] == "facepipe-example-plugin"
    assert data["w"] == int(1382 * 0.5)  # img1.jpg is 1382 px wide, the shorter side
    assert data["metric"] == "manhattan" and data["distance"] == 0.0


def test_example_plugin_config_is_validated(installed_example) -> None:
    out = _run("""
        from facepipe import Pipeline
        try:
            Pipeline.from_config({"detector": {"name": "center-crop", "fraction": 2}, "recognizer": "Dlib"})
        except ValueError as exc:
            print("ERR", exc)
    """)
    assert "ERR" in out and "detector.fraction" in out


def test_broken_plugin_is_listed_as_error_and_the_rest_still_work(tmp_path: Path) -> None:
    pkg = tmp_path / "broken"
    (pkg / "src" / "facepipe_broken_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "facepipe-broken-plugin"
        version = "0.0.1"
        [project.entry-points.facepipe]
        broken = "facepipe_broken_plugin"
        [tool.setuptools.packages.find]
        where = ["src"]
    """))
    (pkg / "src" / "facepipe_broken_plugin" / "__init__.py").write_text("import a_dependency_nobody_installed\n")
    target = tmp_path / "site"
    _pip("install", "--no-deps", "--no-build-isolation", "--target", str(target), str(pkg))
    out = _run("""
        import io, json, contextlib
        from facepipe.apps.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["plugins", "--json"]) == 0
        print(buf.getvalue())
    """, pythonpath=str(target))
    rows = json.loads(out)
    broken = [r for r in rows if r["distribution"] == "facepipe-broken-plugin"]
    assert broken and broken[0]["status"] == "error"
    assert "a_dependency_nobody_installed" in broken[0]["error"]
    assert any(r["name"] == "Dlib" and r["status"] == "ok" for r in rows)
    assert any(r["name"] == "skip" for r in rows)
