"""The head of sales' dashboard: compliance heatmap, score trend, KPI table with filters, export."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from api.auth.scope import scope_of
from api.core.exports import CSV_TYPE, csv_bytes, download
from api.deps import SessionDep
from api.models import Call, Role
from api.web import stats
from api.web.charts import line_chart, share_colour
from api.web.pages import teams_for
from api.web.render import PageUser, QueryIdOrBlank, language, render, require_role, t_for

router = APIRouter(include_in_schema=False)
log = logging.getLogger("callqa.web")
DASHBOARD_ROLES = (Role.admin, Role.head_of_sales, Role.quality_controller)
Period = Annotated[str, Query(pattern="^(week|month|quarter|all)$")]
TeamId = QueryIdOrBlank


KPI_COLUMNS = ("calls", "score_mean", "compliance", "objections_handled_rate", "conversion", "revenue", "plan_completion")


def _days(session: Any, period: str) -> tuple[date, date]:
    """The period as first and last day (both included), as the KPI API takes it."""
    today = datetime.now(UTC).date()
    days = stats.PERIODS.get(period)
    if days is not None:
        return today - timedelta(days=days - 1), today
    first = session.scalar(select(func.min(Call.started_at)))
    return (first.date() if first else today - timedelta(days=364)), today


def _kpi(session: Any, user: Any, period: str, team_id: int | None) -> dict[str, Any] | None:
    """The KPI service's table and weekly trend (with CRM conversion) when that service exists, else None."""
    if not stats.kpi_service_available():
        return None
    from api.kpi import service as kpi

    first, last = _days(session, period)
    try:
        p = kpi.period_of(date_from=first, date_to=last)
        table = kpi.kpi_report(session, user=user, period=p, by="manager", team_id=team_id, outcome=False)
        overall = kpi.kpi_report(session, user=user, period=p, by="all", team_id=team_id, trend="week", outcome=False)
    except Exception:
        log.exception("the KPI report failed; the dashboard shows the call figures only")
        session.rollback()
        return None
    query = f"date_from={first.isoformat()}&date_to={last.isoformat()}" + (f"&team_id={team_id}" if team_id else "")
    catalogue = table.get("kpis") or {}
    columns = [c for c in KPI_COLUMNS if c in catalogue]
    return {"table": table, "overall": overall, "columns": columns, "catalogue": catalogue, "query": query}


def _weekly(rows: list[dict[str, Any]] | None, key: str, scale: float = 1) -> list[tuple[date, float, int]]:
    out = []
    for r in rows or []:
        value, week = r.get(key), r.get("week")
        if value is None or week is None:
            continue
        out.append((date.fromisoformat(str(week)[:10]), float(value) * scale, int(r.get("calls") or r.get("leads") or 0)))
    return sorted(out)


@router.get("/dashboard")
def dashboard(request: Request, session: SessionDep, user: PageUser, team_id: TeamId = None,
              period: Period = "all") -> HTMLResponse:
    require_role(user, *DASHBOARD_ROLES)
    t = t_for(request)
    scope = scope_of(session, user)
    since = stats.period_start(period)
    heat = stats.heatmap(session, scope=scope, team_id=team_id, since=since)
    trend = stats.score_trend(session, scope=scope, team_id=team_id, since=since)
    rows = stats.kpi_rows(session, scope=scope, team_id=team_id, since=since)
    stage_t, _ = stats.stage_titles(session, lang=language(request))
    kpi = _kpi(session, user, period, team_id)
    conversion_chart = None
    if kpi:
        points = _weekly(kpi["overall"].get("trend"), "conversion", 100)
        if points:
            conversion_chart = line_chart(points, label=t("dash.conversion_trend"), unit="%")
    return render(request, "dashboard.html", {
        "since_q": f"&date_from={quote(since.isoformat(timespec='seconds'))}" if since else "",
        "heat": heat, "stage_titles": stage_t, "colour": share_colour, "rows": rows, "teams": teams_for(session, user),
        "team_id": team_id, "period": period, "periods": list(stats.PERIODS),
        "trend": line_chart([(p.week, p.value, p.n) for p in trend], label=t("dash.trend")) if trend else None,
        "conversion_chart": conversion_chart, "kpi": kpi,
        "export": {"csv": f"/api/v1/kpi?format=csv&{kpi['query']}", "xlsx": f"/api/v1/kpi?format=xlsx&{kpi['query']}"}
        if kpi is not None else None,
    }, user=user)


@router.get("/dashboard/export.csv")
def export_csv(request: Request, session: SessionDep, user: PageUser, team_id: TeamId = None,
               period: Period = "all") -> Response:
    """The KPI table as CSV (semicolons and a BOM, so a spreadsheet opens Cyrillic right)."""
    require_role(user, *DASHBOARD_ROLES)
    t = t_for(request)
    rows = stats.kpi_rows(session, scope=scope_of(session, user), team_id=team_id,
                          since=stats.period_start(period))
    table = [[t(c) for c in ("col.manager", "col.calls", "col.avg_score", "col.compliance", "col.handled", "col.uncertain")],
             *([r.name, r.calls, "" if r.avg_score is None else f"{r.avg_score:.1f}",
                "" if r.compliance is None else f"{r.compliance:.3f}", "" if r.handled is None else f"{r.handled:.3f}",
                r.uncertain] for r in rows)]
    return download(csv_bytes(table, sep=";"), media_type=CSV_TYPE, filename=f"callqa-kpi-{period}.csv")
