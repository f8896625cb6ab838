"""Sales KPIs: call quality joined with CRM conversion, per manager, team or department.

Pure transformations: every function takes DataFrames and returns a DataFrame; nothing here reads
files or a database. Each KPI is defined once, below, with its formula in the docstring.

Input frames (canonical columns; extra columns are ignored; times are tz-aware UTC, naive = UTC)
-----------------------------------------------------------------------------------------------
=================== ==========================================================================
calls               call_id, manager_id, started_at, direction (inbound|outbound), duration (s),
                    talk_time (s of conversation; duration when missing), score (0-100, NaN when
                    unscored), fillers (the manager's filler words in the call), crm_lead_id,
                    crm_deal_id, client_phone; optional team_id, department_id
call_stages         call_id, stage_id, status (passed|missed|uncertain)
call_objections     call_id, type, status (passed = handled|missed|uncertain)
leads               lead_id, created_at, manager_id, source, client_phone, first_response_at
                    (optional: the CRM's own first-response time)
deals               deal_id, lead_id, client, client_phone, manager_id, created_at, closed_at,
                    status (won|lost|open), amount, stage
deal_stage_history  deal_id, stage, entered_at
plans               manager_id, period_start, period_end (half-open), revenue_plan,
                    activity_plan, activity_kind (calls|meetings)
managers            manager_id, name, team_id, department_id
meetings            manager_id, held_at (optional; the fact for meeting plans)
links               call_id, lead_id, deal_id (:func:`analyzer.sales.imports.link_calls`)
=================== ==========================================================================

``analyzer.sales.imports`` produces leads, deals, plans and stage history from CRM exports (with ``manager``
names; :func:`analyzer.sales.imports.attach_manager_ids` adds ``manager_id``).

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
empty period) is ``<NA>``, never NaN or infinity; :func:`to_records` turns a frame into JSON-safe
dicts with ``None``.

Errors::

    AnalyzerError
    └── KpiInputError       an input frame lacks a required column, or a grouping needs data it lacks
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyzer.errors import AnalyzerError
from analyzer.sales.imports import DEFAULT_TZ, link_calls, status_from_stage

By = Literal["manager", "team", "department", "all"]
Freq = Literal["W"] | None
GROUP_KEYS: dict[str, str] = {"manager": "manager_id", "team": "team_id", "department": "department_id", "all": "scope"}
Z95 = 1.959963984540054


class KpiInputError(AnalyzerError):
    """An input frame lacks a column a KPI needs."""

    code = "kpi_input_error"


# --- periods ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A half-open time range ``[start, end)`` (UTC) and the time zone its days and weeks are counted in."""

    start: pd.Timestamp
    end: pd.Timestamp
    tz: str = DEFAULT_TZ

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _ts(self.start, self.tz))
        object.__setattr__(self, "end", _ts(self.end, self.tz))
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def days(cls, first: date | str, last: date | str, *, tz: str = DEFAULT_TZ) -> Period:
        """From the first to the last day, both included, in local time (``date_from``/``date_to`` of a report)."""
        return cls(pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1), tz)

    @classmethod
    def month(cls, year: int, month: int, *, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year, month, 1)
        return cls(start, start + pd.offsets.MonthBegin(1), tz)

    @classmethod
    def quarter(cls, year: int, quarter: int, *, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year, 3 * quarter - 2, 1)
        return cls(start, start + pd.offsets.MonthBegin(3), tz)

    def week_starts(self) -> pd.DatetimeIndex:
        """Local Mondays (tz-naive) of the weeks that overlap the period."""
        first = self.start.tz_convert(self.tz).tz_localize(None).normalize()
        first -= pd.Timedelta(days=first.dayofweek)
        last = (self.end - pd.Timedelta(1)).tz_convert(self.tz).tz_localize(None).normalize()
        return pd.date_range(first, last, freq="7D") if self.end > self.start else pd.DatetimeIndex([])

    def buckets(self, freq: Freq) -> pd.DataFrame:
        """The period split by ``freq``: columns ``week`` (if weekly), ``start``, ``end`` (UTC, clipped)."""
        if freq is None:
            return pd.DataFrame({"start": [self.start], "end": [self.end]})
        weeks = self.week_starts()
        starts = weeks.tz_localize(self.tz).tz_convert("UTC")
        ends = (weeks + pd.Timedelta(days=7)).tz_localize(self.tz).tz_convert("UTC")
        return pd.DataFrame({"week": weeks, "start": np.maximum(starts, self.start), "end": np.minimum(ends, self.end)})


def _ts(value: Any, tz: str) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return (t.tz_localize(tz) if t.tzinfo is None else t).tz_convert("UTC")


# --- the KPI catalogue -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KpiInfo:
    """What a KPI column means, for people: titles, unit, formula."""

    title: str
    title_ru: str
    unit: str
    formula: str


KPIS: dict[str, KpiInfo] = {
    "calls": KpiInfo("Calls", "Звонки", "count", "calls started in the period"),
    "calls_inbound": KpiInfo("Inbound calls", "Входящие звонки", "count", "calls with direction inbound"),
    "calls_outbound": KpiInfo("Outbound calls", "Исходящие звонки", "count", "calls with direction outbound"),
    "effective_calls": KpiInfo("Conversations", "Результативные звонки", "count", "calls with talk time >= effective_seconds"),
    "talk_time": KpiInfo("Talk time", "Время разговоров", "s", "sum of talk_time (duration when missing)"),
    "talk_time_mean": KpiInfo("Mean talk time", "Среднее время разговора", "s", "talk_time / calls"),
    "scored_calls": KpiInfo("Scored calls", "Оценённые звонки", "count", "calls with a score"),
    "score_mean": KpiInfo("Average call score", "Средняя оценка звонка", "0-100", "sum of scores / scored_calls"),
    "fillers_per_call": KpiInfo("Fillers per call", "Слов-паразитов на звонок", "per call", "sum of fillers / calls with a filler count"),
    "stages_passed": KpiInfo("Stages passed", "Этапов выполнено", "count", "stage verdicts passed"),
    "stages_decided": KpiInfo("Stages decided", "Этапов с решением", "count", "stage verdicts passed or missed"),
    "compliance": KpiInfo("Script compliance", "Соблюдение скрипта", "share", "stages_passed / stages_decided"),
    "objections_met": KpiInfo("Objections met", "Возражений", "count", "objections raised by clients"),
    "objections_handled": KpiInfo("Objections handled", "Отработано возражений", "count", "objections with status passed"),
    "objections_handled_rate": KpiInfo("Objection handling", "Отработка возражений", "share", "handled / (handled + missed)"),
    "leads": KpiInfo("Leads", "Лиды", "count", "leads created in the period"),
    "converted_leads": KpiInfo("Leads won", "Лиды в продажу", "count", "leads of the period with a won deal"),
    "conversion": KpiInfo("Conversion lead to won", "Конверсия лид → продажа", "share", "converted_leads / leads"),
    "won_deals": KpiInfo("Won deals", "Успешные сделки", "count", "deals won, closed in the period"),
    "lost_deals": KpiInfo("Lost deals", "Проигранные сделки", "count", "deals lost, closed in the period"),
    "win_rate": KpiInfo("Win rate", "Доля выигранных", "share", "won_deals / (won_deals + lost_deals)"),
    "revenue": KpiInfo("Sales volume", "Объём продаж", "money", "sum of amount of won deals closed in the period"),
    "average_check": KpiInfo("Average check", "Средний чек", "money", "revenue / won deals with an amount"),
    "revenue_plan": KpiInfo("Revenue plan", "План по выручке", "money", "sum of plans, each x its overlap with the period"),
    "plan_completion": KpiInfo("Plan completion", "Выполнение плана", "share", "revenue / revenue_plan"),
    "cycle_deals": KpiInfo("Deals in cycle", "Сделок в расчёте цикла", "count", "won deals closed in the period with a start"),
    "cycle_days_median": KpiInfo("Sales cycle, median", "Цикл сделки, медиана", "days", "median of (closed_at - lead or deal created_at)"),
    "cycle_days_mean": KpiInfo("Sales cycle, mean", "Цикл сделки, среднее", "days", "mean of (closed_at - lead or deal created_at)"),
    "responded_leads": KpiInfo("Leads answered", "Лидов с ответом", "count", "leads of the period with a first response"),
    "response_minutes_median": KpiInfo("Lead response, median", "Скорость реакции, медиана", "min", "median of first response - created_at"),
    "response_minutes_mean": KpiInfo("Lead response, mean", "Скорость реакции, среднее", "min", "mean of first response - created_at"),
    "leads_within_sla": KpiInfo("Leads within SLA", "Лидов в SLA", "count", "leads answered within sla_minutes"),
    "sla_share": KpiInfo("SLA share", "Доля в SLA", "share", "leads_within_sla / leads"),
    "calls_plan": KpiInfo("Calls plan", "План звонков", "count", "sum of call plans, each x its overlap"),
    "calls_fact": KpiInfo("Calls fact", "Факт звонков", "count", "effective_calls"),
    "calls_plan_completion": KpiInfo("Calls plan/fact", "План/факт звонков", "share", "calls_fact / calls_plan"),
    "meetings_plan": KpiInfo("Meetings plan", "План встреч", "count", "sum of meeting plans, each x its overlap"),
    "meetings_fact": KpiInfo("Meetings fact", "Факт встреч", "count", "meetings held in the period"),
    "meetings_plan_completion": KpiInfo("Meetings plan/fact", "План/факт встреч", "share", "meetings_fact / meetings_plan"),
    "repeat_deals": KpiInfo("Repeat deals", "Повторные сделки", "count", "won deals of clients with an earlier won deal"),
    "repeat_deals_share": KpiInfo("Repeat deals share", "Доля повторных сделок", "share", "repeat_deals / won_deals"),
    "repeat_revenue": KpiInfo("Repeat revenue", "Выручка повторных", "money", "revenue of repeat deals"),
    "repeat_revenue_share": KpiInfo("Repeat revenue share", "Доля выручки повторных", "share", "repeat_revenue / revenue"),
}

# Columns that are 0 (not missing) for a group without rows: counts and sums.
_ADDITIVE = {"calls", "calls_inbound", "calls_outbound", "effective_calls", "talk_time", "scored_calls", "stages_passed",
             "stages_decided", "objections_met", "objections_handled", "leads", "converted_leads", "won_deals",
             "lost_deals", "revenue", "cycle_deals", "responded_leads", "leads_within_sla", "calls_fact",
             "repeat_deals", "repeat_revenue", "passed", "missed", "uncertain", "decided", "met", "handled",
             "entered", "advanced"}


# --- input frames ----------------------------------------------------------------------------

_REQUIRED: dict[str, tuple[str, ...]] = {
    "calls": ("call_id", "manager_id", "started_at"),
    "call_stages": ("call_id", "stage_id", "status"),
    "call_objections": ("call_id", "type", "status"),
    "leads": ("lead_id", "created_at", "manager_id"),
    "deals": ("deal_id", "manager_id", "created_at", "closed_at", "status"),
    "deal_stage_history": ("deal_id", "stage", "entered_at"),
    "plans": ("manager_id", "period_start", "period_end"),
    "managers": ("manager_id",),
    "meetings": ("manager_id", "held_at"),
    "links": ("call_id", "lead_id", "deal_id"),
}
_OPTIONAL: dict[str, dict[str, Any]] = {
    "calls": {"direction": None, "duration": np.nan, "talk_time": np.nan, "score": np.nan, "fillers": np.nan,
              "crm_lead_id": None, "crm_deal_id": None, "client_phone": None},
    "leads": {"source": None, "client_phone": None, "first_response_at": pd.NaT},
    "deals": {"lead_id": None, "client": None, "client_phone": None, "amount": np.nan, "stage": None},
    "plans": {"revenue_plan": np.nan, "activity_plan": np.nan, "activity_kind": "calls"},
}
_TIMES = {"calls": ("started_at",), "leads": ("created_at", "first_response_at"), "deals": ("created_at", "closed_at"),
          "deal_stage_history": ("entered_at",), "plans": ("period_start", "period_end"), "meetings": ("held_at",)}
_DIRECTIONS = {"in": "inbound", "incoming": "inbound", "входящий": "inbound", "out": "outbound",
               "outgoing": "outbound", "исходящий": "outbound"}


def empty_frame(name: str) -> pd.DataFrame:
    """An empty input frame with the canonical columns of ``name`` (``calls``, ``deals``, ...)."""
    cols = list(_REQUIRED[name]) + [c for c in _OPTIONAL.get(name, {}) if c not in _REQUIRED[name]]
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    for c in _TIMES.get(name, ()):
        df[c] = pd.Series(dtype="datetime64[ns, UTC]")
    return df


def prepare(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Check and coerce one input frame: required columns present, optional ones added, times UTC."""
    if frame is None:
        return empty_frame(name)
    missing = [c for c in _REQUIRED[name] if c not in frame.columns]
    if missing:
        raise KpiInputError(f"{name} frame lacks column(s) {', '.join(missing)}; it needs {', '.join(_REQUIRED[name])}")
    out = frame
    extra = {c: v for c, v in _OPTIONAL.get(name, {}).items() if c not in frame.columns}
    if extra:
        out = out.assign(**extra)
    for c in _TIMES.get(name, ()):
        if c in out.columns and str(out[c].dtype) != "datetime64[ns, UTC]":
            out = out.assign(**{c: _utc(out[c]).astype("datetime64[ns, UTC]")})
    if name == "calls" and len(out):
        d = out["direction"]
        if not (d.isin(["inbound", "outbound"]) | d.isna()).all():
            low = d.astype("string").str.strip().str.casefold()
            out = out.assign(direction=low.replace(_DIRECTIONS).astype(object))
    return out


def _utc(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize("UTC")
    return pd.to_datetime(s, utc=True, errors="coerce")


@dataclass(frozen=True)
class SalesData:
    """All the input frames of a report. Missing ones are empty; :meth:`prepared` checks and coerces them."""

    calls: pd.DataFrame | None = None
    call_stages: pd.DataFrame | None = None
    call_objections: pd.DataFrame | None = None
    leads: pd.DataFrame | None = None
    deals: pd.DataFrame | None = None
    deal_stage_history: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None
    managers: pd.DataFrame | None = None
    meetings: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    """Call-to-lead/deal links; computed with :func:`analyzer.sales.imports.link_calls` when missing."""

    def prepared(self) -> SalesData:
        kw = {n: prepare(n, getattr(self, n)) for n in _REQUIRED if n not in ("managers", "meetings", "links")}
        kw["managers"] = prepare("managers", self.managers) if self.managers is not None else None
        kw["meetings"] = prepare("meetings", self.meetings) if self.meetings is not None else None
        data = replace(self, **kw)
        if self.links is None:
            assert data.calls is not None and data.leads is not None and data.deals is not None
            links = link_calls(data.calls, data.leads, data.deals)
        else:
            links = prepare("links", self.links)
        return replace(data, links=links)


# --- grouping helpers ------------------------------------------------------------------------

def _group(frame: pd.DataFrame, by: By, managers: pd.DataFrame | None, manager_col: str = "manager_id") -> pd.Series:
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


def _week(t: pd.Series, tz: str) -> np.ndarray:
    """Local Monday (tz-naive datetime64) of each timestamp."""
    local = t.dt.tz_convert(tz).dt.tz_localize(None).to_numpy("datetime64[ns]")
    days = local.astype("datetime64[D]").astype(np.int64)
    return (days - (days + 3) % 7).astype("datetime64[D]").astype("datetime64[ns]")


def _select(frame: pd.DataFrame, time_col: str, period: Period, by: By, managers: pd.DataFrame | None,
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
    sub = sub.assign(**{key: _group(sub, by, managers, manager_col)})
    keys = [key]
    if freq == "W":
        sub = sub.assign(week=_week(sub[time_col], period.tz))
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


def _grid(index: pd.Index, keys: list[str], by: By, managers: pd.DataFrame | None, period: Period, freq: Freq,
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


def _finish(agg: pd.DataFrame, grid: pd.Index) -> pd.DataFrame:
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


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (missing where absent), keeping the table's dtype (Series.map
    loses a datetime dtype when the table is empty)."""
    table = table[~table.index.duplicated()]
    values = table.reindex(pd.Index(keys.to_numpy())).array
    return pd.Series(values, index=keys.index, dtype=table.dtype)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den; missing where den is 0 or missing."""
    n = num.astype("float64")
    d = den.astype("float64")
    return (n / d.where(d != 0)).replace([np.inf, -np.inf], np.nan)


# --- call KPIs -------------------------------------------------------------------------------

def call_activity(calls: pd.DataFrame, *, period: Period, by: By = "manager", managers: pd.DataFrame | None = None,
                  freq: Freq = None, effective_seconds: float = 30.0) -> pd.DataFrame:
    """Calls, talk time, score and fillers per group.

    - ``calls`` = calls started in the period; ``calls_inbound``/``calls_outbound`` by direction
    - ``effective_calls`` = calls with talk_time >= ``effective_seconds`` (a conversation, not a dial)
    - ``talk_time`` = sum of talk_time in s (duration where talk_time is missing);
      ``talk_time_mean`` = talk_time / calls
    - ``score_mean`` = sum of scores / ``scored_calls`` (calls with a score)
    - ``fillers_per_call`` = sum of fillers / calls with a filler count
    """
    calls = prepare("calls", calls)
    sub, keys = _select(calls, "started_at", period, by, managers, freq,
                        ["direction", "talk_time", "duration", "score", "fillers"])
    tt = sub["talk_time"].astype("float64").fillna(sub["duration"].astype("float64"))
    score = sub["score"].astype("float64")
    fillers = sub["fillers"].astype("float64")
    work = pd.DataFrame({
        **{k: sub[k] for k in keys},
        "calls": 1,
        "calls_inbound": (sub["direction"] == "inbound").astype("int64"),
        "calls_outbound": (sub["direction"] == "outbound").astype("int64"),
        "effective_calls": (tt >= effective_seconds).astype("int64"),
        "talk_time": tt.fillna(0.0),
        "scored_calls": score.notna().astype("int64"),
        "_score": score.fillna(0.0),
        "_fill_n": fillers.notna().astype("int64"),
        "_fillers": fillers.fillna(0.0),
    })
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["talk_time_mean"] = _ratio(agg["talk_time"], agg["calls"])
    agg["score_mean"] = _ratio(agg["_score"], agg["scored_calls"])
    agg["fillers_per_call"] = _ratio(agg["_fillers"], agg["_fill_n"])
    agg = agg.drop(columns=["_score", "_fill_n", "_fillers"])
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def _codes(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code of each row's key combination, and the combinations (row i = code i)."""
    if len(keys) == 1:
        codes, uniq = pd.factorize(frame[keys[0]], use_na_sentinel=False)
        return np.asarray(codes), pd.DataFrame({keys[0]: np.asarray(uniq, dtype=object)})
    g = frame.groupby(keys, sort=False, dropna=False)
    return g.ngroup().to_numpy(), g.size().index.to_frame(index=False)


def _verdict_counts(calls: pd.DataFrame, verdicts: pd.DataFrame, item: str, *, period: Period, by: By,
                    managers: pd.DataFrame | None, freq: Freq) -> tuple[pd.DataFrame, list[str]]:
    """Verdicts of the calls in the period counted per group (x week) x item: columns passed,
    missed, uncertain (one bincount; no merge of the big verdict frame)."""
    calls = prepare("calls", calls)
    sub, keys = _select(calls, "started_at", period, by, managers, freq, ["call_id"])
    gcodes, groups = _codes(sub, keys)
    pos = pd.Index(sub["call_id"]).get_indexer(verdicts["call_id"])
    hit = pos >= 0
    icodes, items = pd.factorize(verdicts[item][hit], use_na_sentinel=False)
    status = verdicts["status"][hit]
    scodes = np.where(status.eq("passed").to_numpy(), 0, np.where(status.eq("missed").to_numpy(), 1, 2))
    ng, ni = len(groups), max(len(items), 1)
    counts = np.bincount((gcodes[pos[hit]] * ni + icodes) * 3 + scodes, minlength=ng * ni * 3).reshape(-1, 3)
    cells = np.flatnonzero(counts.sum(axis=1) > 0)
    out = groups.iloc[cells // ni].reset_index(drop=True)
    out[item] = np.asarray(items, dtype=object)[cells % ni] if len(cells) else pd.Series(dtype=object)
    out[["passed", "missed", "uncertain"]] = counts[cells]
    return out.set_index([*keys, item]), keys


def stage_compliance(calls: pd.DataFrame, call_stages: pd.DataFrame, *, period: Period, by: By = "manager",
                     managers: pd.DataFrame | None = None, freq: Freq = None) -> pd.DataFrame:
    """Script compliance per stage: one row per group (x week) x ``stage_id``.

    ``passed``/``missed``/``uncertain`` = stage verdicts of the calls in the period;
    ``decided`` = passed + missed; ``compliance`` = passed / decided (uncertain verdicts wait for a person).
    """
    call_stages = prepare("call_stages", call_stages)
    counts, keys = _verdict_counts(calls, call_stages, "stage_id", period=period, by=by, managers=managers, freq=freq)
    stages = list(pd.unique(call_stages["stage_id"].dropna()))
    return _finish(_stage_rates(counts), _grid(counts.index, keys + ["stage_id"], by, managers, period, freq, extra=stages))


def _stage_rates(counts: pd.DataFrame) -> pd.DataFrame:
    out = counts[["passed", "missed", "uncertain"]].astype("int64")
    out["decided"] = out["passed"] + out["missed"]
    out["compliance"] = _ratio(out["passed"], out["decided"])
    return out


def _objection_rates(counts: pd.DataFrame) -> pd.DataFrame:
    out = counts[["handled", "missed", "uncertain"]].astype("int64")
    out["met"] = out["handled"] + out["missed"] + out["uncertain"]
    out["handled_rate"] = _ratio(out["handled"], out["handled"] + out["missed"])
    return out[["met", "handled", "missed", "uncertain", "handled_rate"]]


def _whole_period(weekly: pd.DataFrame, item: str, key: str) -> pd.DataFrame:
    """A weekly per-item frame summed over the weeks (the weeks tile the period), rates recomputed."""
    rates = _stage_rates if item == "stage_id" else _objection_rates
    counts = weekly.drop(columns="week").groupby([key, item], dropna=False, sort=False).sum(numeric_only=True)
    return _finish(rates(counts), counts.index)


def objection_handling(calls: pd.DataFrame, call_objections: pd.DataFrame, *, period: Period, by: By = "manager",
                       managers: pd.DataFrame | None = None, freq: Freq = None) -> pd.DataFrame:
    """Objections met and handled per type: one row per group (x week) x ``type``.

    ``met`` = objections raised in the calls of the period; ``handled`` = status passed;
    ``missed`` = not handled; ``handled_rate`` = handled / (handled + missed).
    """
    call_objections = prepare("call_objections", call_objections)
    counts, keys = _verdict_counts(calls, call_objections, "type", period=period, by=by, managers=managers, freq=freq)
    counts = _objection_rates(counts.rename(columns={"passed": "handled"}))
    types = list(pd.unique(call_objections["type"].dropna()))
    return _finish(counts, _grid(counts.index, keys + ["type"], by, managers, period, freq, extra=types))


def _quality_summary(stages: pd.DataFrame, objections: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group: stages_passed, stages_decided, compliance; objections_met, objections_handled, objections_handled_rate."""
    s = stages.groupby(keys, dropna=False, sort=False)[["passed", "decided"]].sum()
    s.columns = ["stages_passed", "stages_decided"]
    s["compliance"] = _ratio(s["stages_passed"], s["stages_decided"])
    o = objections.groupby(keys, dropna=False, sort=False)[["met", "handled", "missed"]].sum()
    o["objections_handled_rate"] = _ratio(o["handled"], o["handled"] + o["missed"])
    o = o.rename(columns={"met": "objections_met", "handled": "objections_handled"}).drop(columns="missed")
    return s.join(o, how="outer")


# --- CRM KPIs --------------------------------------------------------------------------------

def lead_conversion(leads: pd.DataFrame, deals: pd.DataFrame, *, period: Period, by: By = "manager",
                    managers: pd.DataFrame | None = None, freq: Freq = None) -> pd.DataFrame:
    """Leads and conversion lead -> won, by the lead's manager and creation time.

    - ``leads`` = leads created in the period
    - ``converted_leads`` = those leads with a won deal (whenever it closed: a cohort)
    - ``conversion`` = converted_leads / leads
    """
    leads, deals = prepare("leads", leads), prepare("deals", deals)
    sub, keys = _select(leads, "created_at", period, by, managers, freq)
    won_leads = deals.loc[deals["status"].eq("won"), "lead_id"].dropna()
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "leads": 1,
                         "converted_leads": sub["lead_id"].isin(won_leads).astype("int64")})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["conversion"] = _ratio(agg["converted_leads"], agg["leads"])
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def sales_volume(deals: pd.DataFrame, *, period: Period, by: By = "manager", managers: pd.DataFrame | None = None,
                 freq: Freq = None) -> pd.DataFrame:
    """Won and lost deals closed in the period, revenue and average check, by the deal's manager.

    - ``won_deals``, ``lost_deals`` = deals with that status and closed_at in the period
    - ``win_rate`` = won_deals / (won_deals + lost_deals)
    - ``revenue`` = sum of amount of the won deals (sales volume)
    - ``average_check`` = revenue / won deals with an amount
    """
    deals = prepare("deals", deals)
    sub, keys = _select(deals, "closed_at", period, by, managers, freq)
    won = sub["status"].eq("won")
    amount = sub["amount"].astype("float64")
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "won_deals": won.astype("int64"),
                         "lost_deals": sub["status"].eq("lost").astype("int64"),
                         "revenue": amount.where(won, 0.0).fillna(0.0),
                         "_priced": (won & amount.notna()).astype("int64")})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["win_rate"] = _ratio(agg["won_deals"], agg["won_deals"] + agg["lost_deals"])
    agg["average_check"] = _ratio(agg["revenue"], agg["_priced"])
    agg = agg.drop(columns="_priced")[["won_deals", "lost_deals", "win_rate", "revenue", "average_check"]]
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def _prorated_plans(plans: pd.DataFrame, column: str, *, period: Period, by: By, managers: pd.DataFrame | None,
                    freq: Freq, kind: str | None = None) -> tuple[pd.Series, list[str]]:
    """Sum over plans of ``column`` x (overlap of the plan with the bucket) / (plan length), per group (x week)."""
    p = plans if kind is None else plans[plans["activity_kind"].eq(kind)]
    p = p[p[column].notna()]
    b = period.buckets(freq)
    key = GROUP_KEYS[by]
    keys = [key] + (["week"] if freq == "W" else [])
    if p.empty:
        return pd.Series(dtype="float64", index=pd.MultiIndex.from_arrays([[]] * len(keys), names=keys)
                         if len(keys) > 1 else pd.Index([], name=key)), keys
    cross = p.assign(_g=_group(p, by, managers).to_numpy()).merge(b, how="cross")
    ns = {c: cross[c].astype("datetime64[ns, UTC]").array.asi8 for c in ("period_start", "period_end", "start", "end")}
    overlap = np.minimum(ns["period_end"], ns["end"]) - np.maximum(ns["period_start"], ns["start"])
    length = (ns["period_end"] - ns["period_start"]).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = pd.Series(np.where(length > 0, np.clip(overlap, 0, None) / length, 0.0), index=cross.index)
    share = share.where(cross["period_start"].notna() & cross["period_end"].notna(), 0.0)
    cross[key] = cross["_g"]
    cross["_v"] = cross[column].astype("float64") * share
    cross = cross[share > 0]
    return cross.groupby(keys, dropna=False, sort=False)["_v"].sum(), keys


def plan_completion(deals: pd.DataFrame, plans: pd.DataFrame, *, period: Period, by: By = "manager",
                    managers: pd.DataFrame | None = None, freq: Freq = None) -> pd.DataFrame:
    """Revenue plan and its completion.

    - ``revenue_plan`` = sum over plans of revenue_plan x overlap(plan, period) / length(plan)
      (a monthly plan counts 7/31 in a week of that month); missing without a plan
    - ``plan_completion`` = revenue / revenue_plan (revenue as in :func:`sales_volume`)
    """
    sales = sales_volume(deals, period=period, by=by, managers=managers, freq=freq)
    return _plan_completion(sales, plans, period=period, by=by, managers=managers, freq=freq)


def _plan_completion(sales: pd.DataFrame, plans: pd.DataFrame, *, period: Period, by: By,
                     managers: pd.DataFrame | None, freq: Freq) -> pd.DataFrame:
    plans = prepare("plans", plans)
    plan, keys = _prorated_plans(plans, "revenue_plan", period=period, by=by, managers=managers, freq=freq)
    agg = sales.set_index(keys)[["revenue"]].astype("float64").join(plan.rename("revenue_plan"), how="outer")
    agg["plan_completion"] = _ratio(agg["revenue"], agg["revenue_plan"])
    agg = agg[["revenue_plan", "plan_completion"]]
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def activity_plan_fact(calls: pd.DataFrame, plans: pd.DataFrame, meetings: pd.DataFrame | None = None, *,
                       period: Period, by: By = "manager", managers: pd.DataFrame | None = None, freq: Freq = None,
                       effective_seconds: float = 30.0) -> pd.DataFrame:
    """Activity plan vs fact, for calls and for meetings.

    - ``calls_plan`` = prorated activity_plan of plans with activity_kind calls (as revenue_plan)
    - ``calls_fact`` = effective calls (talk_time >= ``effective_seconds``): contacts, not dials
    - ``calls_plan_completion`` = calls_fact / calls_plan
    - ``meetings_plan``, ``meetings_fact`` (meetings held in the period; missing without a
      meetings frame), ``meetings_plan_completion`` = meetings_fact / meetings_plan
    """
    act = call_activity(calls, period=period, by=by, managers=managers, freq=freq, effective_seconds=effective_seconds)
    return _activity_plan_fact(act, plans, meetings, period=period, by=by, managers=managers, freq=freq)


def _activity_plan_fact(act: pd.DataFrame, plans: pd.DataFrame, meetings: pd.DataFrame | None, *, period: Period,
                        by: By, managers: pd.DataFrame | None, freq: Freq) -> pd.DataFrame:
    plans = prepare("plans", plans)
    keys = [GROUP_KEYS[by]] + (["week"] if freq == "W" else [])
    agg = act.set_index(keys)[["effective_calls"]].astype("float64").rename(columns={"effective_calls": "calls_fact"})
    cp, _ = _prorated_plans(plans, "activity_plan", period=period, by=by, managers=managers, freq=freq, kind="calls")
    mp, _ = _prorated_plans(plans, "activity_plan", period=period, by=by, managers=managers, freq=freq, kind="meetings")
    agg = agg.join(cp.rename("calls_plan"), how="outer").join(mp.rename("meetings_plan"), how="outer")
    if meetings is not None:
        m = prepare("meetings", meetings)
        sub, _ = _select(m, "held_at", period, by, managers, freq)
        agg = agg.join(sub.groupby(keys, dropna=False, sort=False).size().rename("meetings_fact"), how="outer")
        agg["meetings_fact"] = agg["meetings_fact"].fillna(0)
    else:
        agg["meetings_fact"] = np.nan
    agg["calls_fact"] = agg["calls_fact"].fillna(0)
    agg["calls_plan_completion"] = _ratio(agg["calls_fact"], agg["calls_plan"])
    agg["meetings_plan_completion"] = _ratio(agg["meetings_fact"], agg["meetings_plan"])
    agg = agg[["calls_plan", "calls_fact", "calls_plan_completion", "meetings_plan", "meetings_fact",
               "meetings_plan_completion"]]
    out = _finish(agg, _grid(agg.index, keys, by, managers, period, freq))
    if meetings is None:
        out["meetings_fact"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def sales_cycle(deals: pd.DataFrame, leads: pd.DataFrame, *, period: Period, by: By = "manager",
                managers: pd.DataFrame | None = None, freq: Freq = None) -> pd.DataFrame:
    """Sales cycle in days of the won deals closed in the period.

    cycle = closed_at - start, in days, where start = created_at of the deal's lead when known,
    else the deal's created_at. A negative cycle (bad data) is left out.
    ``cycle_deals`` = deals counted; ``cycle_days_median``, ``cycle_days_mean``.
    """
    deals, leads = prepare("deals", deals), prepare("leads", leads)
    sub, keys = _select(deals[deals["status"].eq("won")], "closed_at", period, by, managers, freq)
    lead_created = leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
    start = _lookup(sub["lead_id"], lead_created)
    start = start.where(start.notna(), sub["created_at"])
    days = (sub["closed_at"] - start).dt.total_seconds().astype("float64") / 86400.0
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "days": days}).loc[days >= 0]
    g = work.groupby(keys, dropna=False, sort=False)["days"]
    agg = pd.DataFrame({"cycle_deals": g.size(), "cycle_days_median": g.median(), "cycle_days_mean": g.mean()})
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def lead_response(leads: pd.DataFrame, calls: pd.DataFrame, links: pd.DataFrame, *, period: Period,
                  by: By = "manager", managers: pd.DataFrame | None = None, freq: Freq = None,
                  sla_minutes: float = 10.0) -> pd.DataFrame:
    """Lead response time and the share of leads answered within the SLA.

    first response = the lead's ``first_response_at`` when the CRM has it, else the first call
    linked to the lead (either direction; an inbound call that created the lead is a response at 0).
    response minutes = max(0, first response - created_at).

    - ``leads`` = leads created in the period; ``responded_leads`` = those with a first response
    - ``response_minutes_median``, ``response_minutes_mean`` over responded leads
    - ``leads_within_sla`` = responded within ``sla_minutes`` (default 10)
    - ``sla_share`` = leads_within_sla / leads (a lead never answered misses the SLA)
    """
    leads, calls, links = prepare("leads", leads), prepare("calls", calls), prepare("links", links)
    sub, keys = _select(leads, "created_at", period, by, managers, freq)
    linked = links.loc[links["lead_id"].notna(), ["call_id", "lead_id"]]
    lpos = pd.Index(sub["lead_id"]).get_indexer(linked["lead_id"])
    cpos = pd.Index(calls["call_id"]).get_indexer(linked["call_id"])
    ok = (lpos >= 0) & (cpos >= 0)
    nat = np.iinfo(np.int64).min
    started = calls["started_at"].array.asi8[cpos[ok]]
    first_ns = np.full(len(sub), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_ns, lpos[ok][started != nat], started[started != nat])
    first_ns[first_ns == np.iinfo(np.int64).max] = nat
    by_call = pd.Series(pd.to_datetime(first_ns, utc=True), index=sub.index)
    first = sub["first_response_at"].astype("datetime64[ns, UTC]")
    first = first.where(first.notna(), by_call)
    minutes = ((first - sub["created_at"]).dt.total_seconds().astype("float64") / 60.0).clip(lower=0.0)
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "leads": 1, "responded_leads": minutes.notna().astype("int64"),
                         "leads_within_sla": (minutes <= sla_minutes).astype("int64"), "_m": minutes})
    g = work.groupby(keys, dropna=False, sort=False)
    agg = g[["leads", "responded_leads", "leads_within_sla"]].sum()
    agg["response_minutes_median"] = g["_m"].median()
    agg["response_minutes_mean"] = g["_m"].mean()
    agg["sla_share"] = _ratio(agg["leads_within_sla"], agg["leads"])
    agg = agg[["responded_leads", "response_minutes_median", "response_minutes_mean", "leads_within_sla", "sla_share"]]
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def _client_key(deals: pd.DataFrame) -> pd.Series:
    name = deals["client"].astype("string").str.strip().str.casefold()
    return deals["client_phone"].astype(object).where(deals["client_phone"].notna(), ("name:" + name).astype(object))


def repeat_sales(deals: pd.DataFrame, *, period: Period, by: By = "manager", managers: pd.DataFrame | None = None,
                 freq: Freq = None) -> pd.DataFrame:
    """Repeat sales: won deals (closed in the period) of clients who had a won deal closed before.

    The client is the normalised phone, else the client name (case-insensitive); a deal with neither
    is never a repeat. "Before" looks at all history, not only the period.
    ``repeat_deals_share`` = repeat_deals / won_deals; ``repeat_revenue_share`` = repeat_revenue / revenue.
    """
    deals = prepare("deals", deals)
    won = deals[deals["status"].eq("won") & deals["closed_at"].notna()]
    won = won.assign(_client=_client_key(won))
    first = won.groupby("_client")["closed_at"].transform("min")
    won = won.assign(_repeat=won["_client"].notna() & (first < won["closed_at"]))
    sub, keys = _select(won, "closed_at", period, by, managers, freq)
    amount = sub["amount"].astype("float64").fillna(0.0)
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "_won": 1, "repeat_deals": sub["_repeat"].astype("int64"),
                         "_revenue": amount, "repeat_revenue": amount.where(sub["_repeat"], 0.0)})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["repeat_deals_share"] = _ratio(agg["repeat_deals"], agg["_won"])
    agg["repeat_revenue_share"] = _ratio(agg["repeat_revenue"], agg["_revenue"])
    agg = agg[["repeat_deals", "repeat_deals_share", "repeat_revenue", "repeat_revenue_share"]]
    return _finish(agg, _grid(agg.index, keys, by, managers, period, freq))


def stage_order(history: pd.DataFrame, deals: pd.DataFrame | None = None) -> list[str]:
    """The funnel's stage order inferred from history: stages by their mean position in the deals'
    histories, won stages last, lost stages left out."""
    h = history.dropna(subset=["stage"])
    deal_codes = pd.factorize(h["deal_id"])[0]
    order_ = np.lexsort((h["entered_at"].array.asi8, deal_codes))
    sorted_codes = deal_codes[order_]
    first_of_deal = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1] if len(order_) else np.zeros(0, dtype=np.int64)
    starts = np.repeat(first_of_deal, np.diff(np.r_[first_of_deal, len(order_)]))
    pos = pd.Series(np.arange(len(order_)) - starts, dtype="float64")
    mean = pos.groupby(np.asarray(h["stage"].to_numpy(), dtype=object)[order_]).mean()
    if deals is not None and "stage" in deals:
        extra = [s for s in pd.unique(deals["stage"].dropna()) if s not in mean.index]
        mean = pd.concat([mean, pd.Series(mean.max() + 1 if len(mean) else 0, index=extra)])
    status = status_from_stage(pd.Series(mean.index, dtype=object)).to_numpy()
    order = mean.to_frame("pos").assign(won=status == "won", lost=status == "lost")
    order = order[~order["lost"]].sort_values(["won", "pos"], kind="stable")
    return [str(s) for s in order.index]


def funnel_conversion(deal_stage_history: pd.DataFrame, deals: pd.DataFrame, *, period: Period, by: By = "manager",
                      managers: pd.DataFrame | None = None, freq: Freq = None,
                      stages: Sequence[str] | None = None) -> pd.DataFrame:
    """Stage-to-stage conversion of the funnel, for deals created in the period.

    A deal has reached a stage if its history (or its current stage) holds that stage or any later
    one in ``stages`` (the funnel order; inferred by :func:`stage_order` when not given; lost stages
    are not steps). For each step from stage i to i+1:
    ``entered`` = deals that reached stage i, ``advanced`` = deals that reached i+1,
    ``conversion`` = advanced / entered.
    """
    hist, deals = prepare("deal_stage_history", deal_stage_history), prepare("deals", deals)
    order = list(stages) if stages is not None else stage_order(hist, deals)
    sub, keys = _select(deals, "created_at", period, by, managers, freq)
    steps = pd.DataFrame({"step": range(1, len(order)), "from_stage": order[:-1], "to_stage": order[1:]})
    rank = {s: i for i, s in enumerate(order)}
    top = pd.Series(sub["stage"].map(rank), dtype="float64").fillna(-1).to_numpy()
    dpos = pd.Index(sub["deal_id"]).get_indexer(hist["deal_id"])
    hrank = pd.Series(hist["stage"].map(rank), dtype="float64").fillna(-1).to_numpy()
    ok = (dpos >= 0) & (hrank >= 0)
    np.maximum.at(top, dpos[ok], hrank[ok])
    work = pd.DataFrame({**{k: sub[k].to_numpy() for k in keys}, "top": top})
    work = work[work["top"] >= 0]
    n = len(order)
    gcodes, guniq = pd.factorize(pd.MultiIndex.from_frame(work[keys]) if len(keys) > 1 else work[keys[0]],
                                 use_na_sentinel=False)
    counts = np.bincount(gcodes * max(n, 1) + work["top"].astype(int).to_numpy(), minlength=len(guniq) * n).reshape(-1, n) \
        if n else np.zeros((len(guniq), 0), dtype=np.int64)
    at_least = counts[:, ::-1].cumsum(axis=1)[:, ::-1]  # deals whose top stage is >= i
    rows = []
    gidx = guniq if isinstance(guniq, pd.MultiIndex) else pd.Index(guniq)
    for gi in range(len(guniq)):
        g = gidx[gi] if len(keys) > 1 else (gidx[gi],)
        for s in range(n - 1):
            rows.append((*g, s + 1, int(at_least[gi, s]), int(at_least[gi, s + 1])))
    agg = pd.DataFrame(rows, columns=[*keys, "step", "entered", "advanced"]).set_index([*keys, "step"])
    agg["conversion"] = _ratio(agg["advanced"], agg["entered"])
    out = _finish(agg, _grid(agg.index, [*keys, "step"], by, managers, period, freq, extra=list(steps["step"])))
    return out.merge(steps, on="step", how="left")[[*keys, "step", "from_stage", "to_stage", "entered", "advanced",
                                                    "conversion"]]


# --- quality vs outcome ----------------------------------------------------------------------

def wilson_interval(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n); NaN for n = 0."""
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(successes, dtype="float64") / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray,
                      z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (method 10) for p1 - p2 from the two Wilson intervals:
    d - sqrt((p1-l1)² + (u2-p2)²) .. d + sqrt((u1-p1)² + (p2-l2)²)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.asarray(x1, dtype="float64") / np.asarray(n1, dtype="float64")
        p2 = np.asarray(x2, dtype="float64") / np.asarray(n2, dtype="float64")
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def quality_vs_outcome(calls: pd.DataFrame, call_stages: pd.DataFrame, call_objections: pd.DataFrame,
                       deals: pd.DataFrame, links: pd.DataFrame, *, period: Period, by: By = "all",
                       managers: pd.DataFrame | None = None, min_n: int = 20, z: float = Z95) -> pd.DataFrame:
    """Which script parts go with winning: win rate of deals where a stage was done vs missed.

    Deals: won or lost, closed in the period; their calls: linked by ``links`` and started no later
    than the close. Per deal and script stage: **done** if the stage passed in at least one of its
    calls; **missed** if it was decided in some call and passed in none; otherwise (only uncertain,
    no calls) the deal is left out. Per deal and objection type (only deals where the client raised
    it): **done** (handled) if every decided occurrence was handled; **missed** if one was not.

    Columns: ``factor`` (stage|objection), ``name``, ``deals_done``, ``won_done``, ``win_rate_done``,
    ``deals_missed``, ``won_missed``, ``win_rate_missed``, ``difference`` = win_rate_done -
    win_rate_missed, ``ci_low``/``ci_high`` (Newcombe hybrid score interval, 95% by default),
    ``verdict``: ``not_enough_data`` when either side has fewer than ``min_n`` deals, else ``helps``
    (interval above 0), ``hurts`` (below 0), ``no_clear_effect`` (interval holds 0).
    """
    calls, deals, links = prepare("calls", calls), prepare("deals", deals), prepare("links", links)
    closed, keys = _select(deals[deals["status"].isin(["won", "lost"])], "closed_at", period, by, managers, None)
    closed = closed.drop_duplicates("deal_id")
    dpos = pd.Index(closed["deal_id"])
    lk = links[links["deal_id"].notna()]
    lk = lk.assign(_d=dpos.get_indexer(lk["deal_id"]))
    lk = lk[lk["_d"] >= 0]
    cpos = pd.Index(calls["call_id"]).get_indexer(lk["call_id"])
    ok = cpos >= 0
    lk, cpos = lk[ok], cpos[ok]
    started = calls["started_at"].array.asi8[cpos]
    before_close = (started != np.iinfo(np.int64).min) & (started <= closed["closed_at"].array.asi8[lk["_d"].to_numpy()])
    lk = lk[before_close]
    call_deal = pd.Series(lk["_d"].to_numpy(), index=lk["call_id"].to_numpy())
    call_deal = call_deal[~call_deal.index.duplicated()]
    won = closed["status"].eq("won").to_numpy()
    gcodes, guniq = pd.factorize(closed[keys[0]], use_na_sentinel=False)
    parts = []
    for factor, frame, item, rule in (("stage", prepare("call_stages", call_stages), "stage_id", "any"),
                                      ("objection", prepare("call_objections", call_objections), "type", "all")):
        pos = pd.Index(call_deal.index).get_indexer(frame["call_id"])
        hit = pos >= 0
        d = call_deal.to_numpy()[pos[hit]]
        icodes, iuniq = pd.factorize(frame[item][hit], use_na_sentinel=False)
        st = frame["status"][hit]
        ni = max(len(iuniq), 1)
        cell = d * ni + icodes
        size = len(closed) * ni
        passed = np.bincount(cell, weights=st.eq("passed").to_numpy(), minlength=size) > 0
        missed = np.bincount(cell, weights=st.eq("missed").to_numpy(), minlength=size) > 0
        done = passed if rule == "any" else passed & ~missed
        miss = missed & ~passed if rule == "any" else missed
        deal_of = np.repeat(np.arange(len(closed)), ni)
        item_of = np.tile(np.arange(ni), len(closed))
        g_of = gcodes[deal_of]
        w = won[deal_of]
        gi = g_of * ni + item_of
        nsz = max(len(guniq), 1) * ni
        res = pd.DataFrame({
            "deals_done": np.bincount(gi, weights=done, minlength=nsz), "won_done": np.bincount(gi, weights=done & w, minlength=nsz),
            "deals_missed": np.bincount(gi, weights=miss, minlength=nsz), "won_missed": np.bincount(gi, weights=miss & w, minlength=nsz),
        })
        res[keys[0]] = np.asarray(guniq, dtype=object)[np.arange(nsz) // ni] if len(guniq) else None
        res["name"] = np.asarray(iuniq, dtype=object)[np.arange(nsz) % ni] if len(iuniq) else None
        res["factor"] = factor
        parts.append(res[(res["deals_done"] + res["deals_missed"]) > 0] if len(iuniq) else res.iloc[0:0])
    out = pd.concat(parts, ignore_index=True)
    for c in ("deals_done", "won_done", "deals_missed", "won_missed"):
        out[c] = out[c].astype("int64")
    out["win_rate_done"] = _ratio(out["won_done"], out["deals_done"])
    out["win_rate_missed"] = _ratio(out["won_missed"], out["deals_missed"])
    out["difference"] = out["win_rate_done"] - out["win_rate_missed"]
    lo, hi = newcombe_interval(out["won_done"].to_numpy(), out["deals_done"].to_numpy(), out["won_missed"].to_numpy(),
                               out["deals_missed"].to_numpy(), z)
    out["ci_low"], out["ci_high"] = lo, hi
    small = np.minimum(out["deals_done"], out["deals_missed"]) < min_n
    out["verdict"] = np.select([small, out["ci_low"] > 0, out["ci_high"] < 0],
                               ["not_enough_data", "helps", "hurts"], "no_clear_effect")
    out = out[[keys[0], "factor", "name", "deals_done", "won_done", "win_rate_done", "deals_missed", "won_missed",
               "win_rate_missed", "difference", "ci_low", "ci_high", "verdict"]]
    out = out.sort_values([keys[0], "factor", "name"], key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)
    for c in ("win_rate_done", "win_rate_missed", "difference", "ci_low", "ci_high"):
        out[c] = out[c].astype("float64").replace([np.inf, -np.inf], np.nan).astype("Float64")
    for c in ("deals_done", "won_done", "deals_missed", "won_missed"):
        out[c] = out[c].astype("Int64")
    return out


# --- the report ------------------------------------------------------------------------------

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
        _quality_summary(stages, objections, keys),
        lead_conversion(d.leads, d.deals, **kw).set_index(keys),
        sales.set_index(keys),
        _plan_completion(sales, d.plans, **kw).set_index(keys),
        sales_cycle(d.deals, d.leads, **kw).set_index(keys),
        lead_response(d.leads, d.calls, d.links, sla_minutes=sla_minutes, **kw).set_index(keys),
        _activity_plan_fact(activity, d.plans, d.meetings, **kw).set_index(keys),
        repeat_sales(d.deals, **kw).set_index(keys),
    ]
    table = parts[0]
    for p in parts[1:]:
        table = table.join(p, how="outer")
    table = table[[c for c in KPIS if c in table.columns]]
    out = _finish(table, _grid(table.index, keys, by, d.managers, period, freq))
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
        compliance, objections = _whole_period(stages_w, "stage_id", key), _whole_period(objections_w, "type", key)
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


def columns_info(columns: Iterable[str]) -> dict[str, KpiInfo]:
    """The catalogue entries of the KPI columns among ``columns``."""
    return {c: KPIS[c] for c in columns if c in KPIS}
