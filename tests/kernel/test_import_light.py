"""`import facepipe` and `facepipe plugins --json` must not import any ML runtime."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("tensorflow", "keras", "torch", "cv2", "dlib", "onnxruntime", "mediapipe")


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_facepipe_loads_no_ml_runtime() -> None:
    assert _loaded_after("import facepipe") == []


def test_plugins_json_loads_no_ml_runtime() -> None:
    code = (
        "import io, contextlib\nfrom facepipe.apps.cli import main\nbuf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n    rc = main(['plugins', '--json'])\n"
        "assert rc == 0\nrows = json.loads(buf.getvalue())\nassert len(rows) > 10\n"
        "import json"
    )
    code = "import json\n" + code
    assert _loaded_after(code) == []


def test_config_schema_and_validation_load_no_ml_runtime() -> None:
    code = (
        "from facepipe import Pipeline, default_registry\n"
        "from facepipe.pipeline.config import parse_config, resolve_config\n"
        "cfg = parse_config({'detector': 'opencv', 'recognizer': 'Dlib', 'metric': 'cosine'})\n"
        "resolve_config(cfg, default_registry())\n"
        "from facepipe.pipeline.config import config_schema\nconfig_schema()"
    )
    assert _loaded_after(code) == []
