"""The base class of every plugin's pydantic configuration (a record: imports pydantic only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PluginConfig(BaseModel):
    """Base class of every plugin's configuration: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

