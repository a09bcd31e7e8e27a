"""Keep TensorFlow's start-up chatter off the user's terminal.

TensorFlow's C++ runtime (and the absl logging under it) prints INFO and WARNING lines about CPU
instructions, oneDNN and CUDA probing the first time it loads.  :func:`quiet_tensorflow_logs` is
called right before facepipe's own first ``import keras`` / ``import tensorflow`` and only sets
defaults: a user who set ``TF_CPP_MIN_LOG_LEVEL`` keeps their value.  ``import facepipe`` never
calls it, so a program that only imports facepipe sees its environment unchanged.
"""

from __future__ import annotations

import os

#: "2" hides INFO and WARNING lines; errors are still printed
TF_DEFAULTS: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def quiet_tensorflow_logs() -> None:
    """Set TensorFlow's log level unless the user already chose one (read when TF first loads)."""
    for name, value in TF_DEFAULTS.items():
        os.environ.setdefault(name, value)


__all__ = ["TF_DEFAULTS", "quiet_tensorflow_logs"]
