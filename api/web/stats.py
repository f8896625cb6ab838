"""What the UI's pages show besides the calls themselves: the review queue, a call's missed stages
and unhandled objections, the scripts' titles, a colleague's example answer, and the KPI figures
of the dashboard and a manager's page.

The KPIs are not computed here: the heatmap, the score and conversion trends and the KPI table
are read from :func:`api.kpi.service.kpi_report`, the function behind ``/api/v1/kpi``, for the
same period (:func:`report_period`) and the user's scope, so a page and the API give the same
numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, joinedload

from analyzer import sales
from api.auth.scope import Scope
from api.models import (
    Call,
    CallObjection,
    CallStage,
    CallStatus,
    Dispute,
    DisputeStatus,
    Manager,
    Review,
    ScriptVersion,
)
from api.scripts.service import script_of

PERIODS = {"week": 7, "month": 30, "quarter": 90, "all": None}
"""A page's periods: the last 7, 30 or 90 days (today included), or all time."""


def report_period(session: Session, period: str, *, scope: Scope, tz: str = sales.DEFAULT_TZ,
                  today: date | None = None) -> sales.Period:
    """A page's period as the local days ``/api/v1/kpi?date_from=&date_to=`` takes: the last
    ``PERIODS[period]`` days to today, or for ``all`` from the day of the first call in scope."""
    last = today or pd.Timestamp.now(tz=tz).date()
    days = PERIODS[period]
    if days is not None:
        return sales.Period.days(last - timedelta(days=days - 1), last, tz=tz)
    first = session.scalar(scope.calls(select(func.min(Call.started_at))))
    first_day = pd.Timestamp(first).tz_convert(tz).date() if first is not None else last  # stored as UTC
    return sales.Period.days(min(first_day, last), last, tz=tz)


# -- the review queue --------------------------------------------------------------------------


@dataclass
class QueueItem:
    call: Call
    open_disputes: int
    missed: list[str]


def review_queue(session: Session, *, scope: Scope, limit: int = 100) -> list[QueueItem]:
    """Scored calls a person should look at: open disputes first, then uncertain verdicts, then low scores."""
    disputes = (select(Dispute.call_id, func.count().label("n")).where(Dispute.status == DisputeStatus.open)
                .group_by(Dispute.call_id).subquery())
    reviewed = select(Review.call_id)
    n_open = func.coalesce(disputes.c.n, 0)
    query = (
        select(Call, n_open)
        .outerjoin(disputes, disputes.c.call_id == Call.id)
        .options(joinedload(Call.manager))
        .where(Call.status == CallStatus.done)
        .where((n_open > 0) | (Call.uncertain > 0) | ((Call.score < 70) & Call.id.not_in(reviewed)))
        .order_by((n_open > 0).desc(), (Call.uncertain > 0).desc(), Call.score.asc(), Call.id.desc())
        .limit(limit)
    )
    rows = session.execute(scope.calls(query)).unique().all()
    missed = _missed_by_call(session, [c.id for c, _ in rows])
    return [QueueItem(call=c, open_disputes=int(n), missed=missed.get(c.id, [])) for c, n in rows]


def _missed_by_call(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if ids:
        for call_id, stage_id in session.execute(
            select(CallStage.call_id, CallStage.stage_id).where(CallStage.call_id.in_(ids), CallStage.status == "missed")
            .order_by(CallStage.position)
        ):
            out.setdefault(call_id, []).append(stage_id)
    return out


def missed_stages(session: Session, ids: list[int]) -> dict[int, list[str]]:
    return _missed_by_call(session, ids)


def unhandled_objections(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if ids:
        for call_id, type_ in session.execute(
            select(CallObjection.call_id, CallObjection.type).where(CallObjection.call_id.in_(ids), CallObjection.status == "missed")
            .order_by(CallObjection.position)
        ):
            out.setdefault(call_id, []).append(type_)
    return out


# -- script titles -----------------------------------------------------------------------------


def stage_titles(session: Session, *, lang: str) -> tuple[dict[str, str], dict[str, str]]:
    """Stage and objection titles from the active scripts, the UI language's script first."""
    stages: dict[str, str] = {}
    objections: dict[str, str] = {}
    rows = list(session.scalars(select(ScriptVersion).where(ScriptVersion.active.is_(True))))
    rows.sort(key=lambda v: (v.language != lang, v.script_id))
    for v in rows:
        script = script_of(v)
        for s in script.stages:
            stages.setdefault(s.id, s.title)
        for o in script.objections:
            objections.setdefault(o.type, o.title)
    return stages, objections


# -- the KPI report, as pages show it -----------------------------------------------------------


@dataclass
class Cell:
    passed: int
    total: int

    @property
    def share(self) -> float | None:
        return self.passed / self.total if self.total else None


@dataclass
class Heatmap:
    managers: list[tuple[int, str]]
    stages: list[str]
    cells: dict[tuple[int, str], Cell] = field(default_factory=dict)


def heatmap(report: Mapping[str, Any], *, stage_order: Iterable[str] = ()) -> Heatmap:
    """Managers x script stages of a by-manager KPI report: calls where the stage passed / calls
    where it was decided (``compliance``; uncertain verdicts left out). Managers with no verdict in
    the period are left out; stages in ``stage_order`` (the scripts' order), then the others."""
    cells: dict[tuple[int, str], Cell] = {}
    names: dict[int, str] = {}
    for r in report["stages"]:
        if not (r["decided"] or r["uncertain"]):
            continue
        cells[(r["manager_id"], r["stage_id"])] = Cell(int(r["passed"]), int(r["decided"]))
        names[r["manager_id"]] = r.get("name") or str(r["manager_id"])
    rank = {s: i for i, s in enumerate(stage_order)}
    stages = sorted({s for _, s in cells}, key=lambda s: (rank.get(s, len(rank)), s))
    return Heatmap(managers=sorted(names.items(), key=lambda m: (m[1], m[0])), stages=stages, cells=cells)


@dataclass(frozen=True)
class TrendPoint:
    week: date
    value: float
    n: int


def weekly(report: Mapping[str, Any], kpi: str, *, count: str, scale: float = 1) -> list[TrendPoint]:
    """One KPI of a report's weekly trend (``trend="week"``), the weeks where it is defined; ``n``:
    the ``count`` column of the week (scored calls for a score, leads for a conversion)."""
    points = []
    for r in report.get("trend") or []:
        value = r.get(kpi)
        if value is not None:
            points.append(TrendPoint(date.fromisoformat(str(r["week"])[:10]), float(value) * scale, int(r.get(count) or 0)))
    return sorted(points, key=lambda p: p.week)


# -- feedback ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    call_id: int
    score: float | None
    client: str
    answer: str


def colleague_example(session: Session, *, objection_type: str, manager_id: int | None) -> Example | None:
    """The answer from the best-scored call of another manager of the same team where this objection type
    was handled (a manager of no team has no colleague to quote: calls of other teams are not theirs to read)."""
    team_id = session.scalar(select(Manager.team_id).where(Manager.id == manager_id)) if manager_id is not None else None
    if team_id is None:
        return None
    colleagues = select(Manager.id).where(Manager.team_id == team_id, Manager.id != manager_id)
    query = (
        select(Call, CallObjection.position)
        .join(CallObjection, and_(CallObjection.call_id == Call.id, CallObjection.type == objection_type,
                                  CallObjection.status == "passed"))
        .where(Call.status == CallStatus.done)
        .order_by(Call.score.desc().nulls_last(), Call.id.desc())
        .limit(20)
    )
    for call, position in session.execute(query.where(Call.manager_id.in_(colleagues))):
        objections = (call.report or {}).get("objections", [])
        if position < len(objections):
            o = objections[position]
            client = (o.get("client") or {}).get("text")
            answer = (o.get("response") or {}).get("text")
            if client and answer:
                return Example(call.id, call.score, client, answer)
    return None
