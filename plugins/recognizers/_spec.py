"""Builds a recognizer's registration record from what its class already states.

A recognizer class names its config, input size, embedding size and thresholds; the spec
repeats them for the pipeline, which reads specs and never builds a model to learn them.
Reading them from the class keeps the two from drifting apart.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from facepipe.specs import ConfidenceParams, RecognizerSpec, WeightFile


def deepface_confidence(**per_metric: Sequence[float]) -> dict[str, ConfidenceParams]:
    """``{metric: ConfidenceParams}`` from rows written in deepface's column order:
    ``w, b, normalizer, denorm_min_true, denorm_max_true, denorm_min_false, denorm_max_false``."""
    return {metric: ConfidenceParams(*map(float, row)) for metric, row in per_metric.items()}


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
    confidence: Mapping[str, ConfidenceParams] | None = None,
    value_range: tuple[float, float] | None = None,
    **more: Any,
) -> RecognizerSpec:
    """The :class:`RecognizerSpec` of ``recognizer`` (a Recognizer subclass, not imported lazily:
    recognizer modules import no ML runtime at module level).  ``weights`` defaults to the
    class's ``weight_file``."""
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
        confidence=dict(confidence or {}),
        value_range=value_range,
        **more,
    )


def keras_recognizer_spec(recognizer: type, **fields: Any) -> RecognizerSpec:
    """:func:`recognizer_spec` for a deepface Keras model (needs keras + h5py, ``[keras]`` extra)."""
    fields.setdefault("requires", ("keras", "h5py"))
    fields.setdefault("extra", "keras")
    return recognizer_spec(recognizer, **fields)
