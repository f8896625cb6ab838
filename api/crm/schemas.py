"""API schemas of the CRM import (rows live in :mod:`api.crm.models`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EntityName = Literal["leads", "deals", "plans", "stage_history", "managers"]
SourceName = Literal["amocrm", "bitrix24", "generic"]


class ImportCountsPublic(BaseModel):
    inserted: int
    updated: int
    unchanged: int


class RowErrorPublic(BaseModel):
    line: int = Field(description="the physical line of the file (header = 1), or the record's number from 1")
    reason: str
    column: str | None
    value: str | None
    skipped: bool = Field(description="true: the row was not loaded; false: loaded with this field left empty")


class ImportResultPublic(ImportCountsPublic):
    file: str
    source: SourceName
    entity: EntityName
    rows: int = Field(description="good rows read")
    also: dict[str, ImportCountsPublic] = Field(description="entities written alongside: an amoCRM deal is also its lead")
    errors: list[RowErrorPublic]
    unmatched_managers: list[str] = Field(description="CRM manager names no manager here matches (rows kept, not in KPIs)")
    outside_scope: dict[str, int] = Field(default_factory=dict, description="a head of sales' import: rows not loaded "
                                          "because their manager (or deal) is not in a team they head, by manager name "
                                          "or deal id")


class CrmRecordsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: EntityName | None = Field(None, description="detected from the keys when not given")
    source: SourceName | None = Field(None, description="detected from the keys when not given")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=100_000,
                                          description="rows as objects with the export's headers as keys")
