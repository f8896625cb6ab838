"""API schemas of the script library; the table is :class:`api.models.ScriptVersion`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator


class ScriptVersionSummaryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    title: str
    language: str
    active: bool
    created_by: int | None = Field(description="the user who stored it; null for the bundled scripts")
    created_at: datetime
    learned_examples: int = Field(0, validation_alias=AliasChoices("examples", "learned_examples"),
                                  description="examples from reviews this version learned from (POST .../learn)")

    @field_validator("learned_examples", mode="before")
    @classmethod
    def _count(cls, v: Any) -> int:
        return len(v) if isinstance(v, list) else int(v or 0)


class ScriptSummaryPublic(BaseModel):
    id: str
    title: str = Field(description="the active version's title (the newest version's when none is active)")
    language: str
    active_version: str | None = Field(description="the version new calls and re-scoring use; null when none is active")
    versions: list[str] = Field(description="every stored version, oldest first")


class ScriptPublic(ScriptSummaryPublic):
    version_details: list[ScriptVersionSummaryPublic] = Field(description="the stored versions, oldest first")


class ScriptVersionPublic(ScriptVersionSummaryPublic):
    script_id: str
    body: str = Field(description="the YAML as written")
    script: dict[str, Any] = Field(description="the same script parsed and validated, as JSON")


class ScriptVersionCreate(BaseModel):
    """A new version as JSON; the same YAML may be sent as the raw body with Content-Type application/yaml."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=2_000_000, description="the script as YAML text (its id and version inside)")
