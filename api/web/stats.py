"""The figures the UI's pages show, read from the stored call results.

The review queue, the head of sales' heatmap (managers x stages), the weekly score trend, the KPI
table, and the colleague's example answer a manager's feedback cites. When ``api/kpi/service.py``
exists its ``kpi_report`` adds CRM figures (conversion, revenue) to the dashboard; these functions
need only the calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, joinedload

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


def period_start(period: str, *, now: datetime | None = None) -> datetime | None:
    days = PERIODS.get(period)
    return None if days is None else (now or datetime.now(UTC)) - timedelta(days=days)


def _scope(query: Any, *, scope: Scope, team_id: int | None, since: datetime | None) -> Any:
    query = scope.calls(query)
    if team_id is not None:
        query = query.where(Call.manager_id.in_(select(Manager.id).where(Manager.team_id == team_id)))
    if since is not None:
        query = query.where(Call.started_at >= since)
    return query


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


# -- the heatmap -------------------------------------------------------------------------------


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


def heatmap(session: Session, *, scope: Scope, team_id: int | None, since: datetime | None) -> Heatmap:
    """Per manager and stage: calls where the stage passed / calls where it was decided (uncertain left out)."""
    passed = func.sum(case((CallStage.status == "passed", 1), else_=0))
    decided = func.sum(case((CallStage.status.in_(("passed", "missed")), 1), else_=0))
    query = (
        select(Call.manager_id, CallStage.stage_id, passed, decided, func.min(CallStage.position))
        .join(Call, Call.id == CallStage.call_id)
        .where(Call.status == CallStatus.done, Call.manager_id.is_not(None))
        .group_by(Call.manager_id, CallStage.stage_id)
    )
    rows = session.execute(_scope(query, scope=scope, team_id=team_id, since=since)).all()
    order: dict[str, int] = {}
    cells: dict[tuple[int, str], Cell] = {}
    for manager_id, stage_id, p, d, pos in rows:
        cells[(manager_id, stage_id)] = Cell(int(p or 0), int(d or 0))
        order[stage_id] = min(order.get(stage_id, pos), pos)
    ids = sorted({m for m, _ in cells})
    names = dict(session.execute(select(Manager.id, Manager.name).where(Manager.id.in_(ids))).all()) if ids else {}
    managers = sorted(((i, names.get(i, str(i))) for i in ids), key=lambda m: m[1])
    return Heatmap(managers=managers, stages=sorted(order, key=lambda s: (order[s], s)), cells=cells)


# -- trends and the KPI table ------------------------------------------------------------------


@dataclass
class TrendPoint:
    week: date
    value: float
    n: int


def score_trend(session: Session, *, scope: Scope, team_id: int | None, since: datetime | None) -> list[TrendPoint]:
    """Average effective score of the scored calls, per week (Monday) of the call's start."""
    query = select(func.coalesce(Call.started_at, Call.created_at), Call.score).where(
        Call.status == CallStatus.done, Call.score.is_not(None))
    weeks: dict[date, list[float]] = {}
    for started, score in session.execute(_scope(query, scope=scope, team_id=team_id, since=since)):
        day = started.date()
        weeks.setdefault(day - timedelta(days=day.weekday()), []).append(float(score))
    return [TrendPoint(w, sum(v) / len(v), len(v)) for w, v in sorted(weeks.items())]


@dataclass
class KpiRow:
    manager_id: int
    name: str
    calls: int
    avg_score: float | None
    compliance: float | None
    handled: float | None
    uncertain: int
    extra: dict[str, Any] = field(default_factory=dict)


def kpi_rows(session: Session, *, scope: Scope, team_id: int | None, since: datetime | None) -> list[KpiRow]:
    calls_q = (select(Call.manager_id, func.count(), func.avg(Call.score), func.sum(Call.uncertain))
               .where(Call.status == CallStatus.done, Call.manager_id.is_not(None)).group_by(Call.manager_id))
    per_manager = {m: (n, avg, unc) for m, n, avg, unc in session.execute(_scope(calls_q, scope=scope, team_id=team_id, since=since))}
    stage_q = (select(Call.manager_id, func.sum(case((CallStage.status == "passed", 1), else_=0)),
                      func.sum(case((CallStage.status.in_(("passed", "missed")), 1), else_=0)))
               .join(Call, Call.id == CallStage.call_id).where(Call.status == CallStatus.done).group_by(Call.manager_id))
    stages = {m: (p, d) for m, p, d in session.execute(_scope(stage_q, scope=scope, team_id=team_id, since=since))}
    obj_q = (select(Call.manager_id, func.sum(case((CallObjection.status == "passed", 1), else_=0)),
                    func.sum(case((CallObjection.status.in_(("passed", "missed")), 1), else_=0)))
             .join(Call, Call.id == CallObjection.call_id).where(Call.status == CallStatus.done).group_by(Call.manager_id))
    objections = {m: (p, d) for m, p, d in session.execute(_scope(obj_q, scope=scope, team_id=team_id, since=since))}
    mq = select(Manager.id, Manager.name).where(Manager.active.is_(True))
    mq = mq.where(scope.managers(Manager.id))
    if team_id is not None:
        mq = mq.where(Manager.team_id == team_id)
    out = []
    for manager_id, name in session.execute(mq.order_by(Manager.name)):
        n, avg, unc = per_manager.get(manager_id, (0, None, 0))
        sp, sd = stages.get(manager_id, (0, 0))
        op, od = objections.get(manager_id, (0, 0))
        out.append(KpiRow(manager_id, name, int(n), float(avg) if avg is not None else None,
                          (sp or 0) / sd if sd else None, (op or 0) / od if od else None, int(unc or 0)))
    return out


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


def kpi_service_available() -> bool:
    try:
        from api.kpi import service  # noqa: F401
    except ImportError:
        return False
    return hasattr(service, "kpi_report")
