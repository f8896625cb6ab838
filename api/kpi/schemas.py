"""API schemas of the KPI endpoints. The rows are open dicts: one column per KPI of the catalogue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class KpiInfoPublic(BaseModel):
    title: str
    title_ru: str
    unit: str = Field(description="count, share (0..1), money, s, min, days, 0-100, per call")
    formula: str


class PeriodPublic(BaseModel):
    start: str = Field(description="UTC, included")
    end: str = Field(description="UTC, excluded")
    tz: str = Field(description="the zone days and weeks are counted in")
    label: str


class KpiReportPublic(BaseModel):
    period: PeriodPublic
    by: str
    group_key: str = Field(description="the id column of each row: manager_id, team_id, department_id or scope")
    scope: list[int] | None = Field(description="the managers covered; null: all")
    summary: list[dict[str, Any]] = Field(description="one row per group: id, name and every KPI (null when undefined)")
    trend: list[dict[str, Any]] | None = Field(description="the same per week (trend=week), else null")
    stages: list[dict[str, Any]] = Field(description="script compliance per group and stage")
    objections: list[dict[str, Any]] = Field(description="objections met and handled per group and type")
    kpis: dict[str, KpiInfoPublic]


class QualityOutcomePublic(BaseModel):
    period: PeriodPublic
    by: str
    group_key: str
    rows: list[dict[str, Any]] = Field(
        description="per group and script part (factor stage|objection, name): deals where it was done vs missed, their "
        "win rates, the difference with a 95% interval, and a verdict: helps, hurts, no_clear_effect, not_enough_data")


class FunnelPublic(BaseModel):
    period: PeriodPublic
    by: str
    group_key: str
    rows: list[dict[str, Any]] = Field(description="per CRM pipeline, group and step: pipeline, from_stage, to_stage, entered, "
                                       "advanced, conversion")
