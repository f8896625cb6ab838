"""The head of sales' dashboard: compliance heatmap, score and conversion trends, KPI table with filters, export.

Every figure on it comes from :func:`api.kpi.service.kpi_report`, the function behind
``/api/v1/kpi``, for the period the filter names (:func:`api.web.stats.report_period`) and the
user's scope: the page, its CSV and the API give the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from analyzer import sales
from api.auth.scope import scope_of
from api.core.errors import ServiceError
from api.core.exports import download
from api.deps import SessionDep
from api.kpi import service as kpi
from api.models import Role, User
from api.web import stats
from api.web.charts import line_chart, share_colour
from api.web.pages import teams_for
from api.web.render import PageUser, QueryIdOrBlank, language, render, require_role, t_for

router = APIRouter(include_in_schema=False)
DASHBOARD_ROLES = (Role.admin, Role.head_of_sales, Role.quality_controller)
PeriodName = Annotated[str, Query(pattern="^(week|month|quarter|all)$")]
TeamId = QueryIdOrBlank

KPI_COLUMNS = ("calls", "score_mean", "compliance", "objections_handled_rate", "conversion", "revenue", "plan_completion")
"""The KPI table's columns on the page (the CSV has every KPI)."""


def _report(session: Any, user: User, period: sales.Period, team_id: int | None, **options: Any) -> dict[str, Any]:
    return kpi.kpi_report(session, user=user, period=period, team_id=team_id, outcome=False, **options)


@router.get("/dashboard")
def dashboard(request: Request, session: SessionDep, user: PageUser, team_id: TeamId = None,
              period: PeriodName = "all") -> HTMLResponse:
    require_role(user, *DASHBOARD_ROLES)
    t = t_for(request)
    p = stats.report_period(session, period, scope=scope_of(session, user))
    try:
        table = _report(session, user, p, team_id, by="manager")
        overall = _report(session, user, p, team_id, by="all", trend="week")
    except ServiceError as e:  # a team outside the user's scope, as one that does not exist
        return render(request, "error.html", {"message": e.message}, user=user, status=e.status)
    stage_t, _ = stats.stage_titles(session, lang=language(request))
    scores = stats.weekly(overall, "score_mean", count="scored_calls")
    conversion = stats.weekly(overall, "conversion", count="leads", scale=100)
    catalogue = table["kpis"]
    days = {"date_from": p.first_day.isoformat(), "date_to": p.last_day.isoformat()}
    team = {"team_id": team_id} if team_id else {}
    return render(request, "dashboard.html", {
        # the drill-down from a cell: the calls of the period (all time: no bound)
        "since_q": f"&date_from={quote(p.start.isoformat())}" if period != "all" else "",
        "heat": stats.heatmap(table, stage_order=stage_t), "stage_titles": stage_t, "colour": share_colour,
        "teams": teams_for(session, user), "team_id": team_id, "period": period, "periods": list(stats.PERIODS),
        "trend": line_chart([(x.week, x.value, x.n) for x in scores], label=t("dash.trend")) if scores else None,
        "conversion_chart": line_chart([(x.week, x.value, x.n) for x in conversion], label=t("dash.conversion_trend"),
                                       unit="%") if conversion else None,
        "kpi": {"table": table, "columns": [c for c in KPI_COLUMNS if c in catalogue], "catalogue": catalogue},
        "export": {"csv": "/dashboard/export.csv?" + urlencode({"period": period, **team}),
                   "xlsx": "/api/v1/kpi?" + urlencode({"format": "xlsx", **days, **team})},
    }, user=user)


@router.get("/dashboard/export.csv")
def export_csv(request: Request, session: SessionDep, user: PageUser, team_id: TeamId = None,
               period: PeriodName = "all") -> Response:
    """The dashboard's KPI table as CSV for a spreadsheet: the rows of the page and of ``/api/v1/kpi``
    for the same days, every KPI titled in the reader's language, semicolons and a BOM (what Excel
    in a Russian locale opens as columns, Cyrillic intact)."""
    require_role(user, *DASHBOARD_ROLES)
    t = t_for(request)
    p = stats.report_period(session, period, scope=scope_of(session, user))
    try:
        report = _report(session, user, p, team_id, by="manager")
    except ServiceError as e:
        return render(request, "error.html", {"message": e.message}, user=user, status=e.status)
    ru = language(request) == "ru"
    columns = {"name": t("col.manager"), **{k: v["title_ru"] if ru else v["title"] for k, v in report["kpis"].items()}}
    data, media_type, filename = kpi.export(report, fmt="csv", sep=";", columns=columns)
    return download(data, media_type=media_type, filename=filename)
