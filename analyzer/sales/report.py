"""The KPI report of a period: the table of every KPI per group, the weekly trend, the breakdowns,
and JSON-safe records of them (missing values as ``None``, never NaN or infinity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from analyzer.sales.frames import SalesData
from analyzer.sales.grouping import GROUP_KEYS, By, group_grid, to_grid
from analyzer.sales.metrics import (
    KPIS,
    KpiInfo,
    activity_plan_fact,
    call_activity,
    funnel_conversion,
    lead_conversion,
    lead_response,
    objection_handling,
    plan_completion,
    quality_summary,
    repeat_sales,
    sales_cycle,
    sales_volume,
    stage_compliance,
    sum_weeks,
)
from analyzer.sales.periods import Freq, Period
from analyzer.sales.statistics import quality_vs_outcome


def kpi_table(data: SalesData, *, period: Period, by: By = "manager", freq: Freq = None,
              effective_seconds: float = 30.0, sla_minutes: float = 10.0) -> pd.DataFrame:
    """One row per group (x week) with every scalar KPI of :data:`KPIS` as a column."""
    d = data.prepared()
    kw: dict[str, Any] = dict(period=period, by=by, managers=d.managers, freq=freq)
    stages = stage_compliance(d.calls, d.call_stages, **kw)  # type: ignore[arg-type]
    objections = objection_handling(d.calls, d.call_objections, **kw)  # type: ignore[arg-type]
    return _kpi_table(d, stages, objections, period=period, by=by, freq=freq, effective_seconds=effective_seconds,
                      sla_minutes=sla_minutes)


def _kpi_table(d: SalesData, stages: pd.DataFrame, objections: pd.DataFrame, *, period: Period, by: By, freq: Freq,
               effective_seconds: float, sla_minutes: float) -> pd.DataFrame:
    assert d.calls is not None and d.leads is not None and d.deals is not None and d.links is not None
    assert d.plans is not None
    kw: dict[str, Any] = dict(period=period, by=by, managers=d.managers, freq=freq)
    keys = [GROUP_KEYS[by]] + (["week"] if freq == "W" else [])
    activity = call_activity(d.calls, effective_seconds=effective_seconds, **kw)
    sales = sales_volume(d.deals, **kw)
    parts = [
        activity.set_index(keys),
        quality_summary(stages, objections, keys=keys),
        lead_conversion(d.leads, d.deals, **kw).set_index(keys),
        sales.set_index(keys),
        plan_completion(d.deals, d.plans, sales=sales, **kw).set_index(keys),
        sales_cycle(d.deals, d.leads, **kw).set_index(keys),
        lead_response(d.leads, d.calls, d.links, sla_minutes=sla_minutes, **kw).set_index(keys),
        activity_plan_fact(d.calls, d.plans, d.meetings, activity=activity, **kw).set_index(keys),
        repeat_sales(d.deals, **kw).set_index(keys),
    ]
    table = parts[0]
    for p in parts[1:]:
        table = table.join(p, how="outer")
    table = table[[c for c in KPIS if c in table.columns]]
    out = to_grid(table, group_grid(table.index, keys, by, d.managers, period, freq))
    if d.meetings is None:
        out["meetings_fact"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def weekly_trend(data: SalesData, *, period: Period, by: By = "manager", **options: Any) -> pd.DataFrame:
    """:func:`kpi_table` week by week (``week`` = local Monday)."""
    return kpi_table(data, period=period, by=by, freq="W", **options)


@dataclass(frozen=True)
class SalesReport:
    """A full KPI report of one period: the table, the weekly trend and the long breakdowns."""

    period: Period
    by: str
    summary: pd.DataFrame
    trend: pd.DataFrame
    stages: pd.DataFrame
    objections: pd.DataFrame
    funnel: pd.DataFrame
    quality_outcome: pd.DataFrame
    kpis: dict[str, KpiInfo] = field(default_factory=lambda: KPIS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: every frame as records (None for missing)."""
        return {
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat(), "tz": self.period.tz},
            "by": self.by,
            "summary": to_records(self.summary), "trend": to_records(self.trend), "stages": to_records(self.stages),
            "objections": to_records(self.objections), "funnel": to_records(self.funnel),
            "quality_outcome": to_records(self.quality_outcome),
            "kpis": {k: {"title": v.title, "title_ru": v.title_ru, "unit": v.unit, "formula": v.formula}
                     for k, v in self.kpis.items()},
        }


def sales_report(data: SalesData, *, period: Period, by: By = "manager", stages: Sequence[str] | None = None,
                 min_n: int = 20, effective_seconds: float = 30.0, sla_minutes: float = 10.0, trend: bool = True,
                 outcome: bool = True) -> SalesReport:
    """Everything for one period and grouping: KPI table, weekly trend, per-stage compliance,
    objections per type, funnel steps and quality vs outcome (``stages``: the funnel order).

    ``trend=False`` leaves the weekly trend empty, ``outcome=False`` the funnel and quality vs
    outcome (each costs about as much as the table: skip what a view does not show).
    """
    d = data.prepared()
    assert d.calls is not None and d.deals is not None and d.links is not None
    kw: dict[str, Any] = dict(period=period, by=by, managers=d.managers)
    opts: dict[str, Any] = dict(period=period, by=by, effective_seconds=effective_seconds, sla_minutes=sla_minutes)
    key = GROUP_KEYS[by]
    if trend:
        # the verdict counts once, by week; the weeks tile the period, so their sums are the period's
        stages_w = stage_compliance(d.calls, d.call_stages, freq="W", **kw)  # type: ignore[arg-type]
        objections_w = objection_handling(d.calls, d.call_objections, freq="W", **kw)  # type: ignore[arg-type]
        compliance, objections = sum_weeks(stages_w, "stage_id", key), sum_weeks(objections_w, "type", key)
        weekly = _kpi_table(d, stages_w, objections_w, freq="W", **opts)
    else:
        compliance = stage_compliance(d.calls, d.call_stages, **kw)  # type: ignore[arg-type]
        objections = objection_handling(d.calls, d.call_objections, **kw)  # type: ignore[arg-type]
        weekly = pd.DataFrame(columns=[key, "week", *KPIS])
    if outcome:
        funnel = funnel_conversion(d.deal_stage_history, d.deals, stages=stages, **kw)  # type: ignore[arg-type]
        quality = quality_vs_outcome(d.calls, d.call_stages, d.call_objections, d.deals, d.links,  # type: ignore[arg-type]
                                     min_n=min_n, **kw)
    else:
        funnel = pd.DataFrame(columns=[key, "step", "from_stage", "to_stage", "entered", "advanced", "conversion"])
        quality = pd.DataFrame(columns=[key, "factor", "name", "deals_done", "won_done", "win_rate_done", "deals_missed",
                                        "won_missed", "win_rate_missed", "difference", "ci_low", "ci_high", "verdict"])
    return SalesReport(
        period=period, by=by,
        summary=_kpi_table(d, compliance, objections, freq=None, **opts),
        trend=weekly,
        stages=compliance,
        objections=objections,
        funnel=funnel,
        quality_outcome=quality,
    )


# --- JSON-safe output ------------------------------------------------------------------------

def json_value(v: Any) -> Any:
    """A cell as a JSON-safe Python value: None for NA/NaN/NaT/inf, ISO strings for times."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, pd.Timestamp | datetime):
        if v.tzinfo is None and v.hour == v.minute == v.second == v.microsecond == 0:
            return v.date().isoformat()
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def to_records(frame: pd.DataFrame, *, digits: int | None = None) -> list[dict[str, Any]]:
    """Rows as dicts of JSON-safe values (see :func:`json_value`); floats rounded to ``digits`` if given."""
    cols = list(frame.columns)
    out = []
    for row in frame.itertuples(index=False, name=None):
        rec = {}
        for c, v in zip(cols, row, strict=True):
            j = json_value(v)
            rec[str(c)] = round(j, digits) if digits is not None and isinstance(j, float) else j
        out.append(rec)
    return out
