"""The base class of every plugin's pydantic configuration (a record: imports pydantic only)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)


class PluginConfig(BaseModel):
    """Base class of every plugin's configuration: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)



class StoreConfig(PluginConfig):
    """Base of every store's configuration: where it is and how distances are measured.

    ``metric`` is the recognizer's metric (facepipe's definitions, so thresholds keep their meaning);
    ``fingerprint`` names the model + preprocessing the embeddings come from — a store refuses
    embeddings of another fingerprint.
    """

    url: str = Field(description="where the store is: a folder path for the embedded store, else a URL")
    metric: str = Field("cosine", description="distance metric of searches: cosine, euclidean, euclidean_l2, angular")
    fingerprint: str | None = Field(
        None, description="model + preprocessing fingerprint the embeddings must carry (fixed at the first add "
                          "when not given)")


def _existing_file(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:  # pydantic's "Path does not point to a file" does not say what to do
        raise ValueError(f"weights_path {value} is not a file; give the path of an existing weight file") from None


#: An optional explicit weight file: must exist when given (checked when the config is made).
WeightsPath = Annotated[FilePath | None, WrapValidator(_existing_file)]


class WeightsFileConfig(PluginConfig):
    """Base of the configs of plugins that load one weight file: adds the ``weights_path`` option.

    The plugin resolves it with ``weights_manager().path(weight_file, override=config.weights_path)``.
    """

    weights_path: WeightsPath = Field(
        None,
        description="explicit local weight file; overrides the weights manager (must be an existing file)",
    )
