"""TensorFlow's log level: set by facepipe right before its first Keras import, never over the user's.

A stand-in ``keras`` module records the environment at the moment it is imported, so these tests
see the order of events without loading TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

FAKE_KERAS = textwrap.dedent("""
    import os
    SEEN = os.environ.get("TF_CPP_MIN_LOG_LEVEL")

    class backend:
        @staticmethod
        def backend():
            return "fake"
""")

PROGRAM = textwrap.dedent("""
    import json, os, sys
    import facepipe
    import facepipe.apps.cli, facepipe.engines.keras_runner as runner
    before = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    runner._backend()
    import keras
    print(json.dumps({"before": before, "at_import": keras.SEEN,
                      "after": os.environ.get("TF_CPP_MIN_LOG_LEVEL")}))
""")


def _run(tmp_path: Path, level: str | None) -> dict[str, str | None]:
    (tmp_path / "keras.py").write_text(FAKE_KERAS)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_level_is_set_before_keras_loads_and_not_by_import_facepipe(tmp_path: Path) -> None:
    seen = _run(tmp_path, None)
    assert seen == {"before": None, "at_import": "2", "after": "2"}


def test_the_users_level_wins(tmp_path: Path) -> None:
    seen = _run(tmp_path, "0")
    assert seen == {"before": "0", "at_import": "0", "after": "0"}
