"""Which rows a period counts and how they are grouped: the helpers every KPI of :mod:`analyzer.sales.metrics` shares.

Which rows a period counts
--------------------------
- calls, stage verdicts, objections: the call started in the period;
- leads, conversion, lead response: the lead was created in the period (a cohort: its won deal
  counts whenever it closes);
- won and lost deals, revenue, average check, sales cycle, repeat sales: the deal closed in it;
- funnel: the deal was created in it;
- plans: each plan counts in proportion to its overlap with the period (or week).

Grouping: ``by="manager" | "team" | "department" | "all"``; the key column is ``manager_id``,
``team_id``, ``department_id`` or ``scope`` (= ``"all"``). Teams and departments come from
``managers`` (the frame's own ``team_id`` when no managers frame is given). ``freq="W"`` adds a
``week`` column: the Monday (local date in ``period.tz``) of each week, weeks clipped to the
period. Every group in ``managers`` gets a row (counts 0, ratios missing), every week too.

Outputs use nullable dtypes (``Int64``, ``Float64``): an undefined value (a ratio over zero, an
empty period) is ``<NA>``, never NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyzer.sales.errors import KpiInputError
from analyzer.sales.periods import Freq, Period

By = Literal["manager", "team", "department", "all"]
GROUP_KEYS: dict[str, str] = {"manager": "manager_id", "team": "team_id", "department": "department_id", "all": "scope"}
"""The key column of each grouping."""

# Columns that are 0 (not missing) for a group without rows: counts and sums.
_ADDITIVE = {"calls", "calls_inbound", "calls_outbound", "effective_calls", "talk_time", "scored_calls", "stages_passed",
             "stages_decided", "objections_met", "objections_handled", "leads", "converted_leads", "won_deals",
             "lost_deals", "revenue", "cycle_deals", "responded_leads", "leads_within_sla", "calls_fact",
             "repeat_deals", "repeat_revenue", "passed", "missed", "uncertain", "decided", "met", "handled",
             "entered", "advanced"}


def group_of(frame: pd.DataFrame, by: By, managers: pd.DataFrame | None, manager_col: str = "manager_id") -> pd.Series:
    """The group of each row: its manager, the manager's team or department (from ``managers``), or ``"all"``."""
    key = GROUP_KEYS[by]
    if by == "all":
        return pd.Series("all", index=frame.index, dtype=object)
    if by == "manager":
        return frame[manager_col]
    if managers is not None and key in managers.columns:
        m = managers.drop_duplicates("manager_id").set_index("manager_id")[key]
        return frame[manager_col].map(m)
    if key in frame.columns:
        return frame[key]
    raise KpiInputError(f"grouping by {by} needs {key} in the managers frame (or in the {manager_col} rows' frame)")


def week_of(t: pd.Series, tz: str) -> np.ndarray:
    """Local Monday (tz-naive datetime64) of each timestamp."""
    local = t.dt.tz_convert(tz).dt.tz_localize(None).to_numpy("datetime64[ns]")
    days = local.astype("datetime64[D]").astype(np.int64)
    return (days - (days + 3) % 7).astype("datetime64[D]").astype("datetime64[ns]")


def in_period(frame: pd.DataFrame, time_col: str, period: Period, by: By, managers: pd.DataFrame | None,
              freq: Freq, columns: Sequence[str] | None = None, manager_col: str = "manager_id") -> tuple[pd.DataFrame, list[str]]:
    """Rows with ``time_col`` in the period (only ``columns`` of them, if given), with the key
    columns added; returns (rows, key names)."""
    t = frame[time_col]
    mask = (t >= period.start) & (t < period.end)
    key = GROUP_KEYS[by]
    if columns is not None:
        keep = list(dict.fromkeys([time_col, manager_col, *columns, *([key] if key in frame.columns else [])]))
        sub = frame.loc[mask, keep]
    else:
        sub = frame.loc[mask]
    sub = sub.assign(**{key: group_of(sub, by, managers, manager_col)})
    keys = [key]
    if freq == "W":
        sub = sub.assign(week=week_of(sub[time_col], period.tz))
        keys.append("week")
    return sub, keys


def _groups(by: By, managers: pd.DataFrame | None) -> list[Any]:
    if by == "all":
        return ["all"]
    if managers is None:
        return []
    col = GROUP_KEYS[by]
    if col not in managers.columns:
        return []
    return list(pd.unique(managers[col].dropna()))


def group_grid(index: pd.Index, keys: list[str], by: By, managers: pd.DataFrame | None, period: Period, freq: Freq,
               extra: Sequence[Any] | None = None) -> pd.Index:
    """All groups (managers' and seen) x all weeks (x ``extra`` values, e.g. stage ids)."""
    level0 = index.get_level_values(0) if len(index) else pd.Index([])
    groups = _groups(by, managers)
    known = set(groups)
    groups += [g for g in pd.unique(level0) if g not in known]
    levels: list[Sequence[Any]] = [groups]
    names = [keys[0]]
    if freq == "W":
        levels.append(list(period.week_starts()))
        names.append("week")
    if extra is not None:
        levels.append(list(extra))
        names.append(index.names[-1])
    if len(levels) == 1:
        return pd.Index(groups, name=keys[0], dtype=object)
    return pd.MultiIndex.from_product(levels, names=names)


def to_grid(agg: pd.DataFrame, grid: pd.Index) -> pd.DataFrame:
    """Reindex to the grid; sums and counts 0 where empty; nullable dtypes; no NaN, no infinity."""
    out = agg.reindex(grid)
    for c in out.columns:
        col = out[c]
        if c in _ADDITIVE:
            col = col.fillna(0)
        if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_object_dtype(col.dtype):
            out[c] = col
            continue
        if pd.api.types.is_numeric_dtype(col.dtype):
            arr = col.astype("float64").replace([np.inf, -np.inf], np.nan)
            whole = c in _ADDITIVE and (arr.dropna() % 1 == 0).all() and c not in {"talk_time", "revenue", "repeat_revenue"}
            out[c] = arr.round().astype("Int64") if whole else arr.astype("Float64")
    return out.reset_index()


def ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den; missing where den is 0 or missing."""
    n = num.astype("float64")
    d = den.astype("float64")
    return (n / d.where(d != 0)).replace([np.inf, -np.inf], np.nan)
