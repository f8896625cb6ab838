"""Sales KPIs over HTTP: the table per manager, team or department; catalogue; quality vs outcome; funnel."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.core.exports import download
from api.core.openapi import errors
from api.deps import SessionDep, UserDep
from api.kpi import service
from api.kpi.schemas import FunnelPublic, KpiInfoPublic, KpiReportPublic, QualityOutcomePublic

router = APIRouter(prefix="/api/v1/kpi", tags=["kpi"], responses=errors(400, 404))

_Period = Annotated[str | None, Query(description="a month 2026-11 (or 11.2026), a quarter 2026-Q4", max_length=20)]
_From = Annotated[date | None, Query(description="first day, included (with date_to)")]
_To = Annotated[date | None, Query(description="last day, included")]
_By = Annotated[Literal["manager", "team", "department", "all"], Query(description="one row per ...")]
_Team = Annotated[int | None, Query(ge=1, le=2_147_483_647, description="only this team's managers")]
_Manager = Annotated[int | None, Query(ge=1, le=2_147_483_647, description="only this manager")]


def _report(session: Any, user: Any, period: str | None, date_from: date | None, date_to: date | None, by: str,
            team_id: int | None, manager_id: int | None, trend: str | None = None, outcome: bool = True) -> dict[str, Any]:
    p = service.period_of(period, date_from=date_from, date_to=date_to)
    return service.kpi_report(session, user=user, period=p, by=by, team_id=team_id, manager_id=manager_id, trend=trend,
                              outcome=outcome)


@router.get(
    "",
    response_model=KpiReportPublic,
    summary="The KPI table: call quality and sales per manager, team or department",
    description="Scores, script compliance and objection handling of the calls joined with CRM leads, deals and plans. "
    "A manager sees own KPIs only, a head of sales the teams they head, admins and quality controllers everyone. "
    "`format=csv` or `format=xlsx` downloads the table (the weekly rows with `trend=week`; the XLSX also holds stages, "
    "objections, funnel, quality vs outcome and the KPI catalogue). Undefined values (a ratio over zero) are null.",
    responses={200: {"content": {service.EXPORT_TYPES["csv"]: {}, service.EXPORT_TYPES["xlsx"]: {}}}},
)
def kpi_table(
    session: SessionDep, user: UserDep, period: _Period = None, date_from: _From = None, date_to: _To = None,
    by: _By = "manager", team_id: _Team = None, manager_id: _Manager = None,
    trend: Annotated[Literal["week"] | None, Query(description="add the weekly trend")] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json, or a download")] = "json",  # noqa: A002
) -> Any:
    report = _report(session, user, period, date_from, date_to, by, team_id, manager_id, trend, outcome=format == "xlsx")
    if format == "json":
        return {k: report[k] for k in ("period", "by", "group_key", "scope", "summary", "trend", "stages", "objections", "kpis")}
    data, media_type, filename = service.export(report, fmt=format)
    return download(data, media_type=media_type, filename=filename)


@router.get("/catalogue", response_model=dict[str, KpiInfoPublic], summary="Every KPI: titles (en, ru), unit, formula")
def catalogue(_: UserDep) -> dict[str, Any]:
    return service.kpi_catalogue()


@router.get(
    "/quality-vs-outcome",
    response_model=QualityOutcomePublic,
    summary="Which parts of the script go with won deals",
    description="Deals won or lost in the period, with their calls: the win rate where a script stage was done "
    "(an objection handled) vs missed, the difference with a 95% Newcombe interval, and a verdict.",
)
def quality_vs_outcome(session: SessionDep, user: UserDep, period: _Period = None, date_from: _From = None,
                       date_to: _To = None, by: _By = "all", team_id: _Team = None, manager_id: _Manager = None) -> dict[str, Any]:
    report = _report(session, user, period, date_from, date_to, by, team_id, manager_id)
    return {"period": report["period"], "by": by, "group_key": report["group_key"], "rows": report["quality_outcome"]}


@router.get("/funnel", response_model=FunnelPublic, summary="Funnel conversion stage to stage, for deals created in the period")
def funnel(session: SessionDep, user: UserDep, period: _Period = None, date_from: _From = None, date_to: _To = None,
           by: _By = "all", team_id: _Team = None, manager_id: _Manager = None) -> dict[str, Any]:
    report = _report(session, user, period, date_from, date_to, by, team_id, manager_id)
    return {"period": report["period"], "by": by, "group_key": report["group_key"], "rows": report["funnel"]}
