#!/usr/bin/env python3
"""Write ``tests/reference/parity/fasnet.json``: deepface 0.0.103's Fasnet on the parity cases.

Run from the repository root with the main venv; deepface runs in a side venv (default
``/tmp/df103``: ``python3 -m venv /tmp/df103 && /tmp/df103/bin/pip install deepface==0.0.103
--no-deps numpy onnxruntime opencv-python-headless pandas requests tqdm gdown``)::

    .venv/bin/python tests/tools/make_fasnet_reference.py [--deepface-python /tmp/df103/bin/python]

The synthetic MiniFASNet graphs (``tests/helpers/synthetic_fasnet.py``, seed 7) are placed in a
temporary ``$DEEPFACE_HOME``; the case images go over as ``.npy`` pixel arrays, so both sides see
the same pixels whatever their image decoders.  deepface is driven through its own
``modeling.build_model(task="spoofing", model_name="Fasnet")`` on the onnx backend, the path
``extract_faces(anti_spoofing=True)`` takes.  Only numbers, box lists and image names are
written; no pixels.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.fasnet_cases import REFERENCE, cases, pixels_digest  # noqa: E402
from tests.helpers.paths import photo_dir  # noqa: E402
from tests.helpers.synthetic_fasnet import synthetic_fasnet, weights_digest  # noqa: E402

SEED = 7

# Runs inside deepface's venv: argv = cases.json, out.json.
DEEPFACE_SIDE = r'''
import json, sys
import numpy as np
from deepface import __version__
from deepface.commons.onnx_utils import run_session
from deepface.models.spoofing.FasNetUtils import crop
from deepface.modules import modeling

model = modeling.build_model(task="spoofing", model_name="Fasnet")
out = {"deepface": __version__, "class": type(model).__module__ + "." + type(model).__name__, "results": []}
for case in json.load(open(sys.argv[1])):
    img = np.load(case["npy"], allow_pickle=False)
    x, y, w, h = case["box"]
    is_real, score = model.analyze(img=img, facial_area=(x, y, w, h))
    first = run_session(model.first_model, crop(img, (x, y, w, h), 2.7, 80, 80))[0]
    second = run_session(model.second_model, crop(img, (x, y, w, h), 4, 80, 80))[0]
    out["results"].append({"is_real": bool(is_real), "antispoof_score": float(score),
                           "v2": [float(v) for v in first], "v1se": [float(v) for v in second]})
json.dump(out, open(sys.argv[2], "w"))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deepface-python", default="/tmp/df103/bin/python")
    parser.add_argument("-o", "--output", type=Path, default=REFERENCE)
    args = parser.parse_args()

    graphs = synthetic_fasnet(SEED)
    all_cases = cases(photo_dir())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights = root / "home" / ".deepface" / "weights"
        weights.mkdir(parents=True)
        for path in graphs.values():
            shutil.copy(path, weights / path.name)
        listed = []
        for i, case in enumerate(all_cases):
            npy = root / f"case{i}.npy"
            np.save(npy, case["pixels"])
            listed.append({"npy": str(npy), "box": case["box"]})
        (root / "cases.json").write_text(json.dumps(listed))
        (root / "side.py").write_text(DEEPFACE_SIDE)
        env = {"DEEPFACE_HOME": str(root / "home"), "DEEPFACE_BACKEND_ENGINE": "onnx",
               "DEEPFACE_ONNX_PROVIDERS": "cpu", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([args.deepface_python, str(root / "side.py"), str(root / "cases.json"), str(root / "out.json")],
                       check=True, env=env, cwd=root)
        side = json.loads((root / "out.json").read_text())

    reference = {
        "about": "deepface's Fasnet (onnx backend) on synthetic MiniFASNet graphs; made by "
                 "tests/tools/make_fasnet_reference.py",
        "deepface": side["deepface"],
        "model_class": side["class"],
        "seed": SEED,
        "weights_digest": {variant: weights_digest(path) for variant, path in graphs.items()},
        "cases": [
            {"image": case["image"], "box": case["box"], "pixels_sha256": pixels_digest(case["pixels"]), **result}
            for case, result in zip(all_cases, side["results"])
        ],
    }
    args.output.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {len(reference['cases'])} cases to {args.output}")


if __name__ == "__main__":
    main()
