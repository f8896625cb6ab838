"""Sales KPIs from the database: calls with their stored verdicts joined with the CRM tables.

The computation is :func:`analyzer.sales.report.sales_report` (pure pandas); this module only loads the
frames it needs for one period and scope, ties CRM ids to rows, and names the groups. Routes, the
CLI and the web UI all call :func:`kpi_report`::

    kpi_report(session, *, user, period, by="manager", team_id=None, manager_id=None, trend=None,
               outcome=True, lookback_days=90) -> dict

``user=None`` is the command line (sees everything); ``period`` comes from :func:`period_of`.
``outcome=False`` (a view showing only the table) skips the funnel and quality vs outcome, and
costs about half. What is loaded for a period ``[start, end)``: calls of the scope started from
``start - lookback_days`` (quality vs outcome looks at the calls before a deal closed; one day
with ``outcome=False``) to ``end + 14 days`` (a lead of the period answered after it), their
stage and objection verdicts (of the period's calls only with ``outcome=False``); deals open at some time from the window's start on (open ones, and every
deal closed since); leads created from 30 days before the window (phone linking) plus the leads of
those deals; stage history of the deals created in the period; plans overlapping it; and, for
repeat sales, earlier won deals of the same clients (any manager). CRM rows without a known
manager are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal, cast

import pandas as pd
from sqlalchemy import func, or_, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from analyzer import sales
from api.auth.scope import scope_of
from api.core import exports
from api.core.errors import BadRequest
from api.crm.models import Deal, DealStageEntry, Department, Lead, SalesPlan
from api.models import Call, CallObjection, CallStage, Manager, Team, User

By = Literal["manager", "team", "department", "all"]
BY_VALUES: tuple[str, ...] = ("manager", "team", "department", "all")
CALLS_AFTER = timedelta(days=14)
LEAD_LINK_WINDOW = timedelta(days=30)
_CHUNK = 500
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2199, 12, 31)
MAX_DAYS = 1100


# --- parameters ------------------------------------------------------------------------------

def period_of(period: str | None = None, *, date_from: date | None = None, date_to: date | None = None,
              tz: str = sales.DEFAULT_TZ) -> sales.Period:
    """``period`` (``2026-11``, ``2026-Q4``, ``11.2026``) or ``date_from``..``date_to`` (both days included)."""
    for d in (date_from, date_to):
        if d is not None and not FIRST_DAY <= d <= LAST_DAY:
            raise BadRequest(f"{d} is outside {FIRST_DAY}..{LAST_DAY}", code="bad_period")
    if period and (date_from or date_to):
        raise BadRequest("give either period or date_from/date_to, not both", code="bad_period")
    if period:
        try:
            first, after = sales.parse_period(period)
        except ValueError as e:
            raise BadRequest(str(e), code="bad_period") from None
        if not FIRST_DAY <= first <= LAST_DAY:
            raise BadRequest(f"{period} is outside {FIRST_DAY:%Y}..{LAST_DAY:%Y}", code="bad_period")
        return sales.Period(pd.Timestamp(first), pd.Timestamp(after), tz)
    if date_from and date_to:
        if date_to < date_from:
            raise BadRequest(f"date_to {date_to} is before date_from {date_from}", code="bad_period")
        if (date_to - date_from).days > MAX_DAYS:
            raise BadRequest(f"a report covers at most {MAX_DAYS} days; ask for a shorter range", code="bad_period")
        return sales.Period.days(date_from, date_to, tz=tz)
    raise BadRequest("give period (2026-11, 2026-Q4) or both date_from and date_to", code="bad_period")


def scope(session: Session, *, user: User | None, team_id: int | None = None,
          manager_id: int | None = None) -> list[int] | None:
    """The managers a report covers: the user's scope (:mod:`api.auth.scope`) narrowed by the filters
    (None = all). NotFound for a team or manager that is unknown or outside the user's scope alike."""
    seen = scope_of(session, user)
    ids: set[int] | None = set(seen.manager_ids) if seen.manager_ids is not None else None
    if manager_id is not None:
        seen.manager(manager_id, found=session.get(Manager, manager_id) is not None)
        ids = {manager_id}
    if team_id is not None:
        seen.team(team_id, found=session.get(Team, team_id) is not None)
        members = set(session.scalars(select(Manager.id).where(Manager.team_id == team_id)))
        ids = members if ids is None else ids & members
    return sorted(ids) if ids is not None else None


# --- loading ---------------------------------------------------------------------------------

def _in(column: Any, ids: Sequence[int] | None) -> Any:
    return column.is_not(None) if ids is None else column.in_(ids)


def _frame(session: Session, query: Any, columns: list[str]) -> pd.DataFrame:
    """Rows of a Core query as a frame. The driver's tuples are taken as they are: every column here is
    a number or a string as stored (times and enums through :func:`_raw`)."""
    result = session.connection().execute(query)
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    if not rows:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
    return pd.DataFrame.from_records(rows, columns=columns)


def _chunked(session: Session, make: Any, values: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    parts = [_frame(session, make(list(values[i:i + _CHUNK])), columns) for i in range(0, len(values), _CHUNK)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _raw(column: Any) -> Any:
    """A column as the driver gives it, without SQLAlchemy's per-row conversion: SQLite's UTC time
    strings and enum names are parsed by pandas in one go (:func:`_utc`), many times faster."""
    return type_coerce(column, NullType())


def _utc(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    """Time columns (strings of UTC times as SQLite keeps them, or aware datetimes) as UTC timestamps."""
    for c in cols:
        frame[c] = pd.to_datetime(frame[c], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    return frame


def managers_frame(session: Session, ids: Sequence[int] | None) -> tuple[pd.DataFrame, dict[str, dict[Any, str]]]:
    """``manager_id, name, team_id, department_id`` of the scope, and the names of each grouping's keys."""
    rows = session.execute(
        select(Manager.id, Manager.name, Manager.team_id, Team.department_id, Team.name, Department.name)
        .outerjoin(Team, Team.id == Manager.team_id).outerjoin(Department, Department.id == Team.department_id)
        .where(_in(Manager.id, ids)).order_by(Manager.name, Manager.id)).all()
    frame = pd.DataFrame([r[:4] for r in rows], columns=["manager_id", "name", "team_id", "department_id"], dtype=object)
    names: dict[str, dict[Any, str]] = {"manager": {}, "team": {}, "department": {}, "all": {"all": "all"}}
    for mid, name, tid, did, tname, dname in rows:
        names["manager"][mid] = name
        if tid is not None:
            names["team"][tid] = tname
        if did is not None:
            names["department"][did] = dname
    return frame, names


def _keys(raw: pd.Series, owner: pd.Series, table: pd.DataFrame) -> pd.Series:
    """CRM ids as the calls carry them (``10452``) to row keys (``amocrm:deal:10452``): by the id
    when one row has it, else by the id and the manager (two CRMs may reuse an id)."""
    if table.empty:
        return pd.Series(None, index=raw.index, dtype=object)
    n = table["crm_id"].value_counts()
    single = table[table["crm_id"].map(n) == 1].set_index("crm_id")["key"]
    out = raw.map(single).astype(object)
    amb = raw.notna() & out.isna() & raw.isin(n.index[n > 1])
    if amb.any():
        both = table.drop_duplicates(["crm_id", "manager_id"]).set_index(["crm_id", "manager_id"])["key"]
        out[amb] = both.reindex(pd.MultiIndex.from_arrays([raw[amb], owner[amb]])).to_numpy()
    return out.where(out.notna(), None)


def sales_data(session: Session, *, period: sales.Period, manager_ids: Sequence[int] | None,
               lookback_days: int = 90, outcome: bool = True) -> sales.SalesData:
    """The input frames (:mod:`analyzer.sales.frames`) for one period and the managers (None = all).

    ``outcome=False``: no calls from before the period beyond a day (only quality vs outcome looks
    further back), and the verdicts of the period's calls only.
    """
    start, end = period.start.to_pydatetime(), period.end.to_pydatetime()
    win_start = start - timedelta(days=lookback_days if outcome else 1)
    win_end = end + CALLS_AFTER
    managers, _ = managers_frame(session, manager_ids)

    in_window = (_in(Call.manager_id, manager_ids), Call.started_at >= win_start, Call.started_at < win_end)
    verdicts_of = in_window if outcome else (_in(Call.manager_id, manager_ids), Call.started_at >= start,
                                             Call.started_at < end)
    calls = _frame(session, select(
        Call.id, Call.manager_id, _raw(Call.started_at), _raw(Call.direction), Call.duration, Call.talk_time,
        Call.manager_fillers, Call.score, Call.crm_lead_id, Call.crm_deal_id, Call.client_phone).where(*in_window),
        ["call_id", "manager_id", "started_at", "direction", "duration", "talk_time", "fillers", "score", "crm_lead_id",
         "crm_deal_id", "client_phone"])
    calls = _utc(calls, "started_at")
    stages = _frame(session, select(CallStage.call_id, CallStage.stage_id, CallStage.status)
                    .join(Call, Call.id == CallStage.call_id).where(*verdicts_of), ["call_id", "stage_id", "status"])
    objections = _frame(session, select(CallObjection.call_id, CallObjection.type, CallObjection.status)
                        .join(Call, Call.id == CallObjection.call_id)
                        .where(*verdicts_of, CallObjection.status != "not_objection"), ["call_id", "type", "status"])

    deal_cols = [Deal.key, Deal.crm_id, Deal.lead_key, Deal.client, Deal.client_phone, Deal.client_key, Deal.manager_id,
                 _raw(Deal.created_at), _raw(Deal.closed_at), Deal.status, Deal.amount, Deal.stage, Deal.crm, Deal.pipeline]
    deal_names = ["deal_id", "crm_id", "lead_id", "client", "client_phone", "client_key", "manager_id", "created_at",
                  "closed_at", "status", "amount", "stage", "crm", "pipeline"]
    deals = _frame(session, select(*deal_cols).where(
        _in(Deal.manager_id, manager_ids), Deal.created_at < win_end,
        or_(Deal.closed_at.is_(None), Deal.closed_at >= win_start - timedelta(days=1))), deal_names)
    # repeat sales: earlier won deals of the clients who bought in the period, whoever sold them
    buyers = deals.loc[deals["status"].eq("won") & deals["closed_at"].notna(), ["client_key", "closed_at"]]
    buyers = _utc(buyers.copy(), "closed_at")
    buyer_keys = sorted(set(buyers.loc[(buyers["closed_at"] >= period.start) & (buyers["closed_at"] < period.end),
                                       "client_key"].dropna()))
    earlier = _chunked(session, lambda ks: select(*deal_cols).where(
        Deal.client_key.in_(ks), Deal.status == "won", Deal.closed_at < win_start - timedelta(days=1),
        Deal.manager_id.is_not(None)), buyer_keys, deal_names)
    if len(earlier):
        deals = pd.concat([deals, earlier], ignore_index=True).drop_duplicates("deal_id")
    deals = _utc(deals, "created_at", "closed_at")
    deals["amount"] = deals["amount"].astype("float64")

    lead_cols = [Lead.key, Lead.crm_id, _raw(Lead.created_at), Lead.manager_id, Lead.source, Lead.client_phone,
                 _raw(Lead.first_response_at)]
    lead_names = ["lead_id", "crm_id", "created_at", "manager_id", "source", "client_phone", "first_response_at"]
    leads = _frame(session, select(*lead_cols).where(
        _in(Lead.manager_id, manager_ids), Lead.created_at >= win_start - LEAD_LINK_WINDOW, Lead.created_at < win_end),
        lead_names)
    missing = sorted(set(deals["lead_id"].dropna()) - set(leads["lead_id"]))
    more = _chunked(session, lambda ks: select(*lead_cols).where(Lead.key.in_(ks), Lead.manager_id.is_not(None)),
                    missing, lead_names)
    if len(more):
        leads = pd.concat([leads, more], ignore_index=True)
    leads = _utc(leads, "created_at", "first_response_at")

    # the calls name CRM rows by their CRM ids; the frames use the keys
    calls["crm_deal_id"] = _keys(calls["crm_deal_id"], calls["manager_id"], deals[["crm_id", "deal_id", "manager_id"]]
                                 .rename(columns={"deal_id": "key"}))
    calls["crm_lead_id"] = _keys(calls["crm_lead_id"], calls["manager_id"], leads[["crm_id", "lead_id", "manager_id"]]
                                 .rename(columns={"lead_id": "key"}))

    new = deals[(deals["created_at"] >= period.start) & (deals["created_at"] < period.end)]
    # a generic stage-history file names deals by the CRM's id alone ("generic:deal:10452")
    wanted = sorted(set(new["deal_id"]) | {f"generic:deal:{i}" for i in new["crm_id"]})
    history = _chunked(session, lambda ks: select(DealStageEntry.deal_key, DealStageEntry.stage, _raw(DealStageEntry.entered_at))
                       .where(DealStageEntry.deal_key.in_(ks)), wanted, ["deal_id", "stage", "entered_at"])
    if len(history):
        by_raw = _keys(history["deal_id"].str.rsplit(":", n=1).str[-1], pd.Series(None, index=history.index),
                       new[["crm_id", "deal_id", "manager_id"]].rename(columns={"deal_id": "key"}))
        history["deal_id"] = history["deal_id"].where(history["deal_id"].isin(set(new["deal_id"])), by_raw)
        history = history[history["deal_id"].notna()]
    history = _utc(history, "entered_at")

    plans = _frame(session, select(SalesPlan.manager_id, _raw(SalesPlan.period_start), _raw(SalesPlan.period_end), SalesPlan.revenue_plan,
                                   SalesPlan.activity_plan, SalesPlan.activity_kind)
                   .where(_in(SalesPlan.manager_id, manager_ids), SalesPlan.period_start < end, SalesPlan.period_end > start),
                   ["manager_id", "period_start", "period_end", "revenue_plan", "activity_plan", "activity_kind"])
    plans = _utc(plans, "period_start", "period_end")
    for c in ("revenue_plan", "activity_plan"):
        plans[c] = plans[c].astype("float64")
    for c in ("duration", "talk_time", "fillers", "score"):
        calls[c] = calls[c].astype("float64")
    return sales.SalesData(calls=calls, call_stages=stages, call_objections=objections, leads=leads,
                       deals=deals.drop(columns=["crm_id", "client_key"]), deal_stage_history=history,
                       plans=plans, managers=managers)


# --- the report ------------------------------------------------------------------------------

def _named(records: list[dict[str, Any]], key: str, names: dict[Any, str]) -> list[dict[str, Any]]:
    return [{key: r[key], "name": names.get(r[key]), **{k: v for k, v in r.items() if k != key}} for r in records]


def kpi_report(session: Session, *, user: User | None, period: sales.Period, by: str = "manager", team_id: int | None = None,
               manager_id: int | None = None, trend: str | None = None, outcome: bool = True,
               lookback_days: int = 90) -> dict[str, Any]:
    """The KPI report of a period for the managers the user may see, JSON-safe (missing = None).

    ``by``: manager, team, department or all. ``team_id`` / ``manager_id`` narrow the scope (403
    outside the user's own). ``trend="week"`` adds the weekly trend; ``outcome=False`` skips the
    funnel and quality vs outcome (empty lists), for a view that shows only the table. Keys: ``period``, ``by``,
    ``group_key`` (the grouping's id column), ``scope`` (manager ids, None = all), ``summary``
    (one row per group: the group id, ``name``, every KPI of ``kpis``), ``trend`` (or None),
    ``stages`` (compliance per script stage), ``objections`` (per type), ``funnel`` (stage to
    stage, per CRM pipeline), ``quality_outcome`` (win rate with a script part done vs missed), ``kpis`` (catalogue).
    """
    if by not in BY_VALUES:
        raise BadRequest(f"by={by!r} is not one of {', '.join(BY_VALUES)}", code="bad_grouping")
    if trend not in (None, "week"):
        raise BadRequest(f"trend={trend!r}: only 'week' is supported", code="bad_trend")
    ids = scope(session, user=user, team_id=team_id, manager_id=manager_id)
    data = sales_data(session, period=period, manager_ids=ids, lookback_days=lookback_days, outcome=outcome)
    _, names = managers_frame(session, ids)
    report = sales.sales_report(data, period=period, by=cast(sales.By, by), trend=trend is not None, outcome=outcome)
    out = report.to_dict()
    key = sales.GROUP_KEYS[by]
    if outcome:
        out["funnel"] = funnels(data, period=period, by=by)
    for part in ("summary", "trend", "stages", "objections", "quality_outcome", "funnel"):
        out[part] = _named(out[part], key, names[by])
    if trend is None:
        out["trend"] = None
    out["group_key"] = key
    out["scope"] = ids
    out["period"]["label"] = period_label(period)
    return out


def funnels(data: sales.SalesData, *, period: sales.Period, by: str) -> list[dict[str, Any]]:
    """Funnel conversion per pipeline (``amocrm: Продажи``): each CRM pipeline has its own stages,
    and one order over the stages of two would mix them."""
    d = data.prepared()
    assert d.deals is not None and d.deal_stage_history is not None
    deals = d.deals
    label = deals["crm"].astype(str) + (": " + deals["pipeline"].astype("string")).fillna("")
    out: list[dict[str, Any]] = []
    for name in sorted(label.unique()):
        part = deals[label.eq(name).to_numpy()]
        history = d.deal_stage_history[d.deal_stage_history["deal_id"].isin(set(part["deal_id"]))]
        rows = sales.funnel_conversion(history, part, period=period, by=cast(sales.By, by), managers=d.managers)
        out += [{"pipeline": name, **r} for r in sales.to_records(rows)]
    return out


def kpi_catalogue() -> dict[str, dict[str, str]]:
    """Every KPI column: English and Russian title, unit, formula."""
    return {k: {"title": v.title, "title_ru": v.title_ru, "unit": v.unit, "formula": v.formula} for k, v in sales.KPIS.items()}


def period_label(period: sales.Period) -> str:
    first, last = period.first_day, period.last_day
    if first.day == 1 and (last + timedelta(days=1)).day == 1 and first.month == last.month and first.year == last.year:
        return f"{first:%Y-%m}"
    return f"{first.isoformat()}_{last.isoformat()}"


# --- export ----------------------------------------------------------------------------------

EXPORT_TYPES = {"csv": exports.CSV_TYPE, "xlsx": exports.XLSX_TYPE}


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows an export holds: the weekly trend when asked for, else the summary."""
    return report["trend"] if report.get("trend") is not None else report["summary"]


def export(report: dict[str, Any], *, fmt: str, sep: str = ",",
           columns: Mapping[str, str] | None = None) -> tuple[bytes, str, str]:
    """The KPI table as CSV or XLSX (with the summary or trend, stages, objections, funnel, quality
    vs outcome and the KPI catalogue as sheets), written by :mod:`api.core.exports`. ``sep``: the
    CSV's separator; ``columns``: the table's columns and their titles (key -> title; by default
    every column under its key). Returns (bytes, media type, file name)."""
    if fmt not in EXPORT_TYPES:
        raise BadRequest(f"format={fmt!r} is not one of json, csv, xlsx", code="bad_format")
    name = re.sub(r"[^\w.-]+", "_", f"kpi_{report['period']['label']}_{report['by']}") + f".{fmt}"
    table = exports.records_table(table_rows(report), columns=columns)
    if fmt == "csv":
        return exports.csv_bytes(table, sep=sep), EXPORT_TYPES[fmt], name
    sheets: list[tuple[str, list[list[Any]]]] = [("summary", exports.records_table(report["summary"], columns=columns))]
    if report.get("trend") is not None:
        sheets.append(("trend", table))
    sheets += [(title, exports.records_table(report[part])) for title, part in
               (("stages", "stages"), ("objections", "objections"), ("funnel", "funnel"),
                ("quality_vs_outcome", "quality_outcome"))]
    sheets.append(("kpis", exports.records_table([{"kpi": k, **v} for k, v in report["kpis"].items()])))
    return exports.xlsx_bytes(sheets), EXPORT_TYPES[fmt], name


def count_crm_rows(session: Session) -> dict[str, int]:
    """How many rows each CRM table holds (for the CLI and health pages)."""
    return {name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (("leads", Lead), ("deals", Deal), ("stage_history", DealStageEntry), ("plans", SalesPlan))}
