"""Builds a recognizer's registration record from what its class already states.

A recognizer class names its config, input size, embedding size and thresholds; the spec
repeats them for the pipeline, which reads specs and never builds a model to learn them.
Reading them from the class keeps the two from drifting apart.
"""

from __future__ import annotations

from typing import Any

from facepipe.plugins.recognizers._deepface_published import Published
from facepipe.specs import RecognizerSpec, WeightFile


def recognizer_spec(
    recognizer: type,
    *,
    name: str,
    description: str,
    license: str,
    requires: tuple[str, ...],
    extra: str | None,
    aliases: tuple[str, ...] = (),
    weights: tuple[WeightFile, ...] | None = None,
    published: Published | None = None,
    **more: Any,
) -> RecognizerSpec:
    """The :class:`RecognizerSpec` of ``recognizer`` (a Recognizer subclass, not imported lazily:
    recognizer modules import no ML runtime at module level).  ``weights`` defaults to the
    class's ``weight_file``; ``published`` adds the model's confidence model and value range."""
    if weights is None:
        weights = (recognizer.weight_file,)
    return RecognizerSpec(
        name=name,
        aliases=aliases,
        factory=f"{recognizer.__module__}:{recognizer.__qualname__}",
        config=recognizer.config_class,
        weights=weights,
        requires=requires,
        extra=extra,
        license=license,
        description=description,
        embedding_size=recognizer.embedding_size,
        input_size=tuple(recognizer.input_size),
        thresholds={metric: float(value) for metric, value in recognizer.thresholds.items()},
        confidence=dict(published.confidence) if published else {},
        value_range=published.value_range if published else None,
        **more,
    )


def keras_recognizer_spec(recognizer: type, **fields: Any) -> RecognizerSpec:
    """:func:`recognizer_spec` for a deepface Keras model (needs keras + h5py, ``[keras]`` extra)."""
    fields.setdefault("requires", ("keras", "h5py"))
    fields.setdefault("extra", "keras")
    return recognizer_spec(recognizer, **fields)
