#!/usr/bin/env python3
"""Write ``tests/reference/parity/buffalo_l.json``: deepface 0.0.103's Buffalo_L embeddings of
known faces, computed by deepface's own client on a stand-in model.

Run it with the Python of a venv that has deepface 0.0.103 and InsightFace 0.7.3 (not facepipe's)::

    /tmp/df103/bin/python tests/tools/make_buffalo_l_parity.py [--photos DIR] [--out FILE]

For each stand-in graph style of :mod:`tests.helpers.buffalo_l_like` ("pytorch", "mxnet") it
writes the graph where deepface looks for the weights
(``$DEEPFACE_HOME/.deepface/weights/buffalo_l/webface_r50.onnx``, in a temporary home), builds
deepface's ``Buffalo_L`` client (InsightFace ``get_model`` -> ``ArcFaceONNX``) and feeds it the
faces the way ``DeepFace.represent`` does after detection: the crop as ``extract_faces`` returns
it (RGB, /255), flipped back to BGR, ``preprocessing.resize_image`` to 112x112,
``normalize_input(..., "base")``, one batch through ``model.forward``.

Each style runs in a child process, since deepface caches one client per model name.  Only
numbers go into the JSON; the photos' crops are recomputed by the test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.helpers.buffalo_l_like import (  # noqa: E402
    FACE_SHAPES,
    PHOTOS,
    SEED,
    centre_crop,
    synthetic_faces,
    write_buffalo_l_like,
)

DEFAULT_OUT = REPO / "tests" / "reference" / "parity" / "buffalo_l.json"


def deepface_embeddings(crops: list) -> list[list[float]]:  # type: ignore[type-arg]
    """deepface's Buffalo_L embeddings of BGR uint8 ``crops`` (represent's steps after detection)."""
    import numpy as np
    from deepface.modules import modeling, preprocessing

    model = modeling.build_model(task="facial_recognition", model_name="Buffalo_L")
    batch = []
    for crop in crops:
        face = crop / 255  # extract_faces: [0, 1] ...
        face = face[:, :, ::-1]  # ... and RGB; represent flips it back to BGR:
        img = face[:, :, ::-1]
        img = preprocessing.resize_image(img=img, target_size=(model.input_shape[1], model.input_shape[0]))
        batch.append(preprocessing.normalize_input(img=img, normalization="base"))
    out = np.asarray(model.forward(np.concatenate(batch, axis=0)), dtype=np.float64)
    # 8 significant digits: far below the test's 1e-4 tolerance, half the file size
    return [[float(f"{v:.8g}") for v in row] for row in out.reshape(len(crops), -1)]


def child(style: str, photos: str | None) -> None:
    """Runs in a child process: one graph style, prints a JSON object on the last line."""
    import cv2
    import deepface

    with tempfile.TemporaryDirectory() as home:
        os.environ["DEEPFACE_HOME"] = home
        write_buffalo_l_like(Path(home) / ".deepface" / "weights" / "buffalo_l" / "webface_r50.onnx", style)
        result = {"synthetic": deepface_embeddings(synthetic_faces())}
        if photos:
            crops = [centre_crop(cv2.imread(str(Path(photos) / name))) for name in PHOTOS]
            result["photos"] = deepface_embeddings(crops)
        from deepface.modules import modeling

        client = modeling.build_model(task="facial_recognition", model_name="Buffalo_L")
        result["insightface_scaling"] = [client.model.input_mean, client.model.input_std]
        result["deepface"] = deepface.__version__
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", help="dataset photos folder (adds centre crops of %s)" % ", ".join(PHOTOS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", choices=("pytorch", "mxnet"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.photos)
        return

    import insightface
    import onnxruntime

    styles = {}
    for style in ("pytorch", "mxnet"):
        cmd = [sys.executable, __file__, "--child", style] + (["--photos", args.photos] if args.photos else [])
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        styles[style] = json.loads(done.stdout.strip().splitlines()[-1])
    first = styles["pytorch"]
    reference = {
        "source": "deepface's Buffalo_L client (InsightFace ArcFaceONNX) on the stand-in graphs of "
        "tests/helpers/buffalo_l_like.py; written by tests/tools/make_buffalo_l_parity.py",
        "deepface": first["deepface"],
        "insightface": insightface.__version__,
        "onnxruntime": onnxruntime.__version__,
        "seed": SEED,
        "face_shapes": [list(s) for s in FACE_SHAPES],
        "photos": list(PHOTOS) if args.photos else [],
        "styles": {
            style: {key: value for key, value in result.items() if key != "deepface"}
            for style, result in styles.items()
        },
    }
    args.out.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
