"""Sales KPIs: call quality joined with CRM conversion, per manager, team or department.

Pure transformations: every function takes DataFrames (:mod:`analyzer.sales.frames`) and returns a
DataFrame; nothing here reads files or a database. Each KPI is defined once, below, with its
formula in the docstring and in :data:`KPIS`. Which rows a period counts and how rows are grouped:
:mod:`analyzer.sales.grouping`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyzer.sales.frames import prepare
from analyzer.sales.grouping import GROUP_KEYS, By, group_grid, group_of, in_period, ratio, to_grid
from analyzer.sales.imports import status_from_stage
from analyzer.sales.periods import Freq, Period

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


def columns_info(columns: Iterable[str]) -> dict[str, KpiInfo]:
    """The catalogue entries of the KPI columns among ``columns``."""
    return {c: KPIS[c] for c in columns if c in KPIS}


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (missing where absent), keeping the table's dtype (Series.map
    loses a datetime dtype when the table is empty)."""
    table = table[~table.index.duplicated()]
    values = table.reindex(pd.Index(keys.to_numpy())).array
    return pd.Series(values, index=keys.index, dtype=table.dtype)


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
    sub, keys = in_period(calls, "started_at", period, by, managers, freq,
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
    agg["talk_time_mean"] = ratio(agg["talk_time"], agg["calls"])
    agg["score_mean"] = ratio(agg["_score"], agg["scored_calls"])
    agg["fillers_per_call"] = ratio(agg["_fillers"], agg["_fill_n"])
    agg = agg.drop(columns=["_score", "_fill_n", "_fillers"])
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


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
    sub, keys = in_period(calls, "started_at", period, by, managers, freq, ["call_id"])
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
    return to_grid(_stage_rates(counts), group_grid(counts.index, keys + ["stage_id"], by, managers, period, freq, extra=stages))


def _stage_rates(counts: pd.DataFrame) -> pd.DataFrame:
    out = counts[["passed", "missed", "uncertain"]].astype("int64")
    out["decided"] = out["passed"] + out["missed"]
    out["compliance"] = ratio(out["passed"], out["decided"])
    return out


def _objection_rates(counts: pd.DataFrame) -> pd.DataFrame:
    out = counts[["handled", "missed", "uncertain"]].astype("int64")
    out["met"] = out["handled"] + out["missed"] + out["uncertain"]
    out["handled_rate"] = ratio(out["handled"], out["handled"] + out["missed"])
    return out[["met", "handled", "missed", "uncertain", "handled_rate"]]


def sum_weeks(weekly: pd.DataFrame, item: str, key: str) -> pd.DataFrame:
    """A weekly :func:`stage_compliance` (``item="stage_id"``) or :func:`objection_handling` (``item="type"``)
    frame summed over its weeks, rates recomputed: the frame of the whole period (the weeks tile it),
    without counting the verdicts again. ``key``: the group column."""
    rates = _stage_rates if item == "stage_id" else _objection_rates
    counts = weekly.drop(columns="week").groupby([key, item], dropna=False, sort=False).sum(numeric_only=True)
    return to_grid(rates(counts), counts.index)


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
    return to_grid(counts, group_grid(counts.index, keys + ["type"], by, managers, period, freq, extra=types))


def quality_summary(stages: pd.DataFrame, objections: pd.DataFrame, *, keys: list[str]) -> pd.DataFrame:
    """Per group (``keys``: the group column, and ``week`` if weekly) of a :func:`stage_compliance` and an
    :func:`objection_handling` frame: ``stages_passed``, ``stages_decided``, ``compliance`` =
    stages_passed / stages_decided; ``objections_met``, ``objections_handled``,
    ``objections_handled_rate`` = handled / (handled + missed). Indexed by ``keys``."""
    s = stages.groupby(keys, dropna=False, sort=False)[["passed", "decided"]].sum()
    s.columns = ["stages_passed", "stages_decided"]
    s["compliance"] = ratio(s["stages_passed"], s["stages_decided"])
    o = objections.groupby(keys, dropna=False, sort=False)[["met", "handled", "missed"]].sum()
    o["objections_handled_rate"] = ratio(o["handled"], o["handled"] + o["missed"])
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
    sub, keys = in_period(leads, "created_at", period, by, managers, freq)
    won_leads = deals.loc[deals["status"].eq("won"), "lead_id"].dropna()
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "leads": 1,
                         "converted_leads": sub["lead_id"].isin(won_leads).astype("int64")})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["conversion"] = ratio(agg["converted_leads"], agg["leads"])
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


def sales_volume(deals: pd.DataFrame, *, period: Period, by: By = "manager", managers: pd.DataFrame | None = None,
                 freq: Freq = None) -> pd.DataFrame:
    """Won and lost deals closed in the period, revenue and average check, by the deal's manager.

    - ``won_deals``, ``lost_deals`` = deals with that status and closed_at in the period
    - ``win_rate`` = won_deals / (won_deals + lost_deals)
    - ``revenue`` = sum of amount of the won deals (sales volume)
    - ``average_check`` = revenue / won deals with an amount
    """
    deals = prepare("deals", deals)
    sub, keys = in_period(deals, "closed_at", period, by, managers, freq)
    won = sub["status"].eq("won")
    amount = sub["amount"].astype("float64")
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "won_deals": won.astype("int64"),
                         "lost_deals": sub["status"].eq("lost").astype("int64"),
                         "revenue": amount.where(won, 0.0).fillna(0.0),
                         "_priced": (won & amount.notna()).astype("int64")})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["win_rate"] = ratio(agg["won_deals"], agg["won_deals"] + agg["lost_deals"])
    agg["average_check"] = ratio(agg["revenue"], agg["_priced"])
    agg = agg.drop(columns="_priced")[["won_deals", "lost_deals", "win_rate", "revenue", "average_check"]]
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


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
    cross = p.assign(_g=group_of(p, by, managers).to_numpy()).merge(b, how="cross")
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
                    managers: pd.DataFrame | None = None, freq: Freq = None,
                    sales: pd.DataFrame | None = None) -> pd.DataFrame:
    """Revenue plan and its completion.

    - ``revenue_plan`` = sum over plans of revenue_plan x overlap(plan, period) / length(plan)
      (a monthly plan counts 7/31 in a week of that month); missing without a plan
    - ``plan_completion`` = revenue / revenue_plan (revenue as in :func:`sales_volume`)

    ``sales``: the :func:`sales_volume` frame of the same deals, period and grouping when the
    caller has it already (the deals are not counted again).
    """
    if sales is None:
        sales = sales_volume(deals, period=period, by=by, managers=managers, freq=freq)
    plans = prepare("plans", plans)
    plan, keys = _prorated_plans(plans, "revenue_plan", period=period, by=by, managers=managers, freq=freq)
    agg = sales.set_index(keys)[["revenue"]].astype("float64").join(plan.rename("revenue_plan"), how="outer")
    agg["plan_completion"] = ratio(agg["revenue"], agg["revenue_plan"])
    agg = agg[["revenue_plan", "plan_completion"]]
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


def activity_plan_fact(calls: pd.DataFrame, plans: pd.DataFrame, meetings: pd.DataFrame | None = None, *,
                       period: Period, by: By = "manager", managers: pd.DataFrame | None = None, freq: Freq = None,
                       effective_seconds: float = 30.0, activity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Activity plan vs fact, for calls and for meetings.

    - ``calls_plan`` = prorated activity_plan of plans with activity_kind calls (as revenue_plan)
    - ``calls_fact`` = effective calls (talk_time >= ``effective_seconds``): contacts, not dials
    - ``calls_plan_completion`` = calls_fact / calls_plan
    - ``meetings_plan``, ``meetings_fact`` (meetings held in the period; missing without a
      meetings frame), ``meetings_plan_completion`` = meetings_fact / meetings_plan

    ``activity``: the :func:`call_activity` frame of the same calls, period, grouping and
    ``effective_seconds`` when the caller has it already (the calls are not counted again).
    """
    act = activity if activity is not None else call_activity(calls, period=period, by=by, managers=managers, freq=freq,
                                                              effective_seconds=effective_seconds)
    plans = prepare("plans", plans)
    keys = [GROUP_KEYS[by]] + (["week"] if freq == "W" else [])
    agg = act.set_index(keys)[["effective_calls"]].astype("float64").rename(columns={"effective_calls": "calls_fact"})
    cp, _ = _prorated_plans(plans, "activity_plan", period=period, by=by, managers=managers, freq=freq, kind="calls")
    mp, _ = _prorated_plans(plans, "activity_plan", period=period, by=by, managers=managers, freq=freq, kind="meetings")
    agg = agg.join(cp.rename("calls_plan"), how="outer").join(mp.rename("meetings_plan"), how="outer")
    if meetings is not None:
        m = prepare("meetings", meetings)
        sub, _ = in_period(m, "held_at", period, by, managers, freq)
        agg = agg.join(sub.groupby(keys, dropna=False, sort=False).size().rename("meetings_fact"), how="outer")
        agg["meetings_fact"] = agg["meetings_fact"].fillna(0)
    else:
        agg["meetings_fact"] = np.nan
    agg["calls_fact"] = agg["calls_fact"].fillna(0)
    agg["calls_plan_completion"] = ratio(agg["calls_fact"], agg["calls_plan"])
    agg["meetings_plan_completion"] = ratio(agg["meetings_fact"], agg["meetings_plan"])
    agg = agg[["calls_plan", "calls_fact", "calls_plan_completion", "meetings_plan", "meetings_fact",
               "meetings_plan_completion"]]
    out = to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))
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
    sub, keys = in_period(deals[deals["status"].eq("won")], "closed_at", period, by, managers, freq)
    lead_created = leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"]
    start = _lookup(sub["lead_id"], lead_created)
    start = start.where(start.notna(), sub["created_at"])
    days = (sub["closed_at"] - start).dt.total_seconds().astype("float64") / 86400.0
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "days": days}).loc[days >= 0]
    g = work.groupby(keys, dropna=False, sort=False)["days"]
    agg = pd.DataFrame({"cycle_deals": g.size(), "cycle_days_median": g.median(), "cycle_days_mean": g.mean()})
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


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
    sub, keys = in_period(leads, "created_at", period, by, managers, freq)
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
    agg["sla_share"] = ratio(agg["leads_within_sla"], agg["leads"])
    agg = agg[["responded_leads", "response_minutes_median", "response_minutes_mean", "leads_within_sla", "sla_share"]]
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


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
    sub, keys = in_period(won, "closed_at", period, by, managers, freq)
    amount = sub["amount"].astype("float64").fillna(0.0)
    work = pd.DataFrame({**{k: sub[k] for k in keys}, "_won": 1, "repeat_deals": sub["_repeat"].astype("int64"),
                         "_revenue": amount, "repeat_revenue": amount.where(sub["_repeat"], 0.0)})
    agg = work.groupby(keys, dropna=False, sort=False).sum()
    agg["repeat_deals_share"] = ratio(agg["repeat_deals"], agg["_won"])
    agg["repeat_revenue_share"] = ratio(agg["repeat_revenue"], agg["_revenue"])
    agg = agg[["repeat_deals", "repeat_deals_share", "repeat_revenue", "repeat_revenue_share"]]
    return to_grid(agg, group_grid(agg.index, keys, by, managers, period, freq))


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
    sub, keys = in_period(deals, "created_at", period, by, managers, freq)
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
    agg["conversion"] = ratio(agg["advanced"], agg["entered"])
    out = to_grid(agg, group_grid(agg.index, [*keys, "step"], by, managers, period, freq, extra=list(steps["step"])))
    return out.merge(steps, on="step", how="left")[[*keys, "step", "from_stage", "to_stage", "entered", "advanced",
                                                    "conversion"]]
