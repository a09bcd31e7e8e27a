"""Pipeline configuration (pydantic v2, unknown keys rejected).

A plugin is named by a string (``"opencv"``) or by a mapping holding ``name`` plus that plugin's
own options (``{"name": "mtcnn", "min_face_size": 40}``).  The options are validated against the
plugin's config class when the pipeline is built (see :func:`resolve_config`), so errors name the
full key path, e.g. ``detector.min_face_size``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from facepipe.errors import ConfigError, FacepipeError


class PluginRef(BaseModel):
    """A plugin name and its options (validated later against the plugin's own config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value, "options": {}}
        if isinstance(value, Mapping) and "name" in value and "options" not in value:
            rest = {k: v for k, v in value.items() if k != "name"}
            return {"name": value["name"], "options": rest}
        return value

    def to_config_value(self) -> str | dict[str, Any]:
        return self.name if not self.options else {"name": self.name, **self.options}


#: Plugins whose weights ship in registry packages: the default pipeline downloads nothing.
OFFLINE_DEFAULTS: dict[str, Any] = {
    "detector": "dlib",
    "recognizer": "Dlib",
    "metric": "cosine",
    "analyzers": {"age": "age-offline", "gender": "gender-offline", "emotion": "emotion-offline"},
}


class PipelineConfig(BaseModel):
    """Everything a :class:`facepipe.Pipeline` needs to know.

    The defaults describe the offline pipeline: dlib's HOG detector and the Dlib ResNet
    recognizer, whose real weights ship in PyPI packages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: PluginRef = Field(default=PluginRef(name=OFFLINE_DEFAULTS["detector"]),
                                description="face detector plugin (name or {name, ...options})")
    recognizer: PluginRef = Field(default=PluginRef(name=OFFLINE_DEFAULTS["recognizer"]),
                                  description="recognition model plugin")
    metric: PluginRef = Field(default=PluginRef(name=OFFLINE_DEFAULTS["metric"]),
                              description="distance metric plugin")
    analyzers: dict[str, PluginRef] = Field(
        default_factory=lambda: {k: PluginRef(name=v) for k, v in OFFLINE_DEFAULTS["analyzers"].items()},
        description="attribute analyzers by action (age, gender, emotion, race, ...)",
    )
    anti_spoofing: PluginRef | None = Field(
        None, description="anti-spoofing plugin; faces judged fake raise SpoofDetectedError in "
                          "represent/verify/analyze/find and are reported by extract_faces")
    align: bool = Field(True, description="rotate each face so the eyes are level (deepface's alignment)")
    expand_percentage: float = Field(0, ge=0, le=500, description="grow each detected box by this percent")
    on_no_face: Literal["error", "skip", "whole_image"] = Field(
        "error", description="no face found: raise, return nothing, or use the whole image as the face")
    max_faces: int | None = Field(None, ge=1, description="keep only the N largest faces per image")
    batch_size: int = Field(32, ge=1, le=4096, description="faces per model call")
    threshold: float | None = Field(None, ge=0, description="verification threshold (default: per model)")
    eye_fallback: bool = Field(True, description="find eyes with OpenCV's Haar cascade when a detector gives none")
    detect_max_side: int | None = Field(
        None, ge=64, description="shrink images whose longer side exceeds this before detection "
                                 "(much faster on large photos; boxes are mapped back to full size)")
    pad_before_detect: bool = Field(
        False, description="detect on a 50%-padded image as deepface does with align=True "
                           "(slower; reproduces deepface's boxes exactly)")

    @field_validator("analyzers", mode="before")
    @classmethod
    def _analyzer_list(cls, value: Any) -> Any:
        # ["age", "emotion"] is shorthand for {"age": "age", "emotion": "emotion"}.
        if isinstance(value, (list, tuple)):
            return {str(v): v for v in value}
        return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml), JSON or TOML config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            raise ConfigError(f"unsupported config file type {suffix!r} ({p}); use .yaml, .yml, .json or .toml")
    except ConfigError:
        raise
    except Exception as exc:  # each parser has its own error type
        raise ConfigError(f"could not parse {p}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings, got {type(data).__name__}")
    return data


def parse_config(source: PipelineConfig | Mapping[str, Any] | str | Path | None) -> PipelineConfig:
    """Turn a dict, a PipelineConfig or a config file path into a PipelineConfig."""
    from facepipe.registry import format_validation_error

    if source is None:
        return PipelineConfig()
    if isinstance(source, PipelineConfig):
        return source
    if isinstance(source, (str, Path)):
        source = load_config_file(source)
    if not isinstance(source, Mapping):
        raise ConfigError(f"a config must be a mapping, a PipelineConfig or a file path, not {type(source).__name__}")
    try:
        return PipelineConfig.model_validate(dict(source))
    except ValidationError as exc:
        raise ConfigError(_flatten_plugin_paths(format_validation_error(exc))) from None


def _flatten_plugin_paths(message: str) -> str:
    # pydantic reports "detector.name" for a PluginRef; keep it, but drop the internal "options".
    return message.replace(".options.", ".")


def resolve_config(config: PipelineConfig, registry: Any) -> dict[str, Any]:
    """Validate every plugin's options with the registry; returns {slot: PluginConfig}.

    Raises ConfigError naming the key path (``detector.min_face_size``) or PluginNotFoundError
    with a close-match suggestion.
    """
    resolved: dict[str, Any] = {}
    slots: list[tuple[str, str, PluginRef]] = [
        ("detector", "detector", config.detector),
        ("recognizer", "recognizer", config.recognizer),
        ("metric", "metric", config.metric),
    ]
    explicit_analyzers = "analyzers" in config.model_fields_set
    for action, ref in config.analyzers.items():
        slots.append((f"analyzers.{action}", "analyzer", ref))
    if config.anti_spoofing is not None:
        slots.append(("anti_spoofing", "antispoofer", config.anti_spoofing))
    for path, kind, ref in slots:
        if kind == "analyzer" and not explicit_analyzers and not registry.has(kind, ref.name):
            continue  # a default analyzer that is not installed only matters when analyze() asks for it
        resolved[path] = registry.validate_config(kind, ref.name, ref.options, path=path)
        if kind == "analyzer":
            check_analyzer_action(registry, path.partition(".")[2], ref.name)
    return resolved


def check_analyzer_action(registry: Any, action: str, name: str) -> None:
    """Refuse ``analyzers: {action: name}`` when the analyzer declares actions and ``action`` is
    not one of them (e.g. ``{age: Emotion}``)."""
    spec = registry.get("analyzer", name)
    actions = tuple(getattr(spec, "actions", ()) or ())
    if actions and action not in actions:
        answering = [n for n in registry.names("analyzer") if action in _actions_of(registry, n)]
        raise ConfigError(
            f"analyzers.{action}: the analyzer {spec.name!r} answers {', '.join(actions)}, not {action!r}; "
            f"analyzers for {action!r}: {', '.join(answering) or 'none installed'}"
        )


def _actions_of(registry: Any, name: str) -> tuple[str, ...]:
    try:
        return tuple(getattr(registry.get("analyzer", name), "actions", ()) or ())
    except FacepipeError:  # a name registered twice: listed by `facepipe plugins`, not here
        return ()


def config_schema() -> dict[str, Any]:
    """JSON schema of the pipeline configuration."""
    return PipelineConfig.model_json_schema()
