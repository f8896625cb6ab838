"""Pages: sign-in, the review queue, calls, a call (player, transcript, verdicts, reviews, disputes,
feedback) and a manager's own calls. Forms post to the same service functions the API uses, so the
audit log records every change."""

from __future__ import annotations

import hmac
import math
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from api.auth.scope import Scope, scope_of
from api.auth.service import manager_of, sign_in, sign_out
from api.auth.throttle import ThrottlePolicy
from api.calls import service as calls
from api.core.errors import NotFound, ServiceError, TooManyRequests
from api.core.ids import PathId
from api.deps import REVIEWERS, SessionDep, SettingsDep, client_address
from api.kpi import service as kpi
from api.models import Call, CallStage, CallStatus, DisputeStatus, Manager, Role, Team, User
from api.reviews import service as reviews
from api.scripts.service import get_version, script_of
from api.web import stats
from api.web.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, check_csrf, new_login_csrf, secure_cookies, session_token
from api.web.charts import line_chart
from api.web.render import (
    HOME,
    PageUser,
    QueryIdOrBlank,
    QueryStatusOrBlank,
    QueryTimeOrBlank,
    language,
    redirect,
    render,
    require_role,
    t_for,
)

router = APIRouter(include_in_schema=False)
CsrfField = Annotated[str, Form(alias="csrf", max_length=100)]


def safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host) is followed after sign-in."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return "/"
    return value


@router.get("/login")
def login_page(request: Request, next: str | None = None, reason: str | None = None) -> HTMLResponse:
    token = new_login_csrf()
    response = render(request, "login.html", {"login_csrf": token, "next": safe_next(next), "reason": reason})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict",
                        secure=secure_cookies(request))
    return response


@router.post("/login")
def login(
    request: Request, session: SessionDep, settings: SettingsDep,
    username: Annotated[str, Form(max_length=200)], password: Annotated[str, Form(max_length=200)],
    login_csrf: Annotated[str, Form(max_length=100)], next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie or not hmac.compare_digest(cookie, login_csrf):
        return render(request, "login.html", {"login_csrf": cookie or new_login_csrf(), "next": safe_next(next),
                                              "error": t_for(request)("error.csrf"), "username": username}, status=403)
    try:
        token, row, user = sign_in(session, username=username, password=password, hours=settings.token_hours,
                                   address=client_address(request), now=request.app.state.clock(),
                                   throttling=ThrottlePolicy.of(settings))
    except TooManyRequests as e:
        minutes = math.ceil(int(e.headers["Retry-After"]) / 60)
        return render(request, "login.html", {"login_csrf": cookie, "next": safe_next(next), "username": username,
                                              "error": t_for(request)("login.locked", minutes=minutes)},
                      status=429, headers=e.headers)
    except ServiceError:
        return render(request, "login.html", {"login_csrf": cookie, "next": safe_next(next),
                                              "error": t_for(request)("login.failed"), "username": username})
    target = safe_next(next)
    response = RedirectResponse(HOME[user.role] if target == "/" else target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.token_hours * 3600), path="/", httponly=True,
                        samesite="strict", secure=secure_cookies(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: CsrfField) -> Response:
    check_csrf(request, csrf)
    token = session_token(request)
    if token:
        sign_out(session, token=token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(user: PageUser) -> RedirectResponse:
    return RedirectResponse(HOME[user.role], status_code=303)


# -- lists ----------------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    require_role(user, *REVIEWERS)
    scope = scope_of(session, user)
    items = stats.review_queue(session, scope=scope)
    failed = calls.list_calls(session, filters=calls.CallFilters(status=CallStatus.failed), scope=scope, limit=20,
                              order="-created_at").calls
    titles, _ = stats.stage_titles(session, lang=language(request))
    return render(request, "queue.html", {"items": items, "failed": failed, "titles": titles}, user=user)


@router.get("/calls")
def calls_page(
    request: Request, session: SessionDep, user: PageUser,
    manager_id: QueryIdOrBlank = None,
    team_id: QueryIdOrBlank = None,
    status: QueryStatusOrBlank = None,
    stage_missed: Annotated[str | None, Query(max_length=100)] = None,
    objection_unhandled: Annotated[str | None, Query(max_length=100)] = None,
    date_from: QueryTimeOrBlank = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    scope = scope_of(session, user)
    filters = calls.CallFilters(manager_id=manager_id, team_id=team_id, status=status, stage_missed=stage_missed or None,
                                objection_unhandled=objection_unhandled or None, date_from=date_from)
    page = calls.list_calls(session, filters=filters, scope=scope, limit=50, order="-started_at", cursor=cursor)
    rows = page.calls
    ids = [c.id for c in rows]
    stage_t, objection_t = stats.stage_titles(session, lang=language(request))
    managers = managers_for(session, scope)
    drill = None
    if manager_id and stage_missed:
        name = next((m.name for m in managers if m.id == manager_id), str(manager_id))
        drill = t_for(request)("calls.drill", manager=name, stage=stage_t.get(stage_missed, stage_missed))
    return render(request, "calls.html", {
        "rows": rows, "page": page, "missed": stats.missed_stages(session, ids),
        "unhandled": stats.unhandled_objections(session, ids), "stage_titles": stage_t, "objection_titles": objection_t,
        "managers": managers, "statuses": list(CallStatus), "drill": drill, "since": date_from,
        "f": {"manager_id": manager_id, "status": status.value if status else "", "stage_missed": stage_missed or "",
              "objection_unhandled": objection_unhandled or "", "team_id": team_id,
              "date_from": date_from.isoformat() if date_from else ""},
    }, user=user)


def managers_for(session: Any, scope: Scope) -> list[Manager]:
    return list(session.scalars(select(Manager).where(scope.managers(Manager.id)).order_by(Manager.name)))


@router.get("/my")
def my_calls(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    manager = manager_of(session, user)
    rows: list[Any] = []
    avg = None
    often: list[tuple[str, int]] = []
    if manager is not None:
        rows = calls.list_calls(session, filters=calls.CallFilters(manager_id=manager.id), scope=scope_of(session, user),
                                limit=100, order="-started_at").calls
        scores = [c.score for c in rows if c.score is not None]
        avg = sum(scores) / len(scores) if scores else None
        often = [(s, int(n)) for s, n in session.execute(
            select(CallStage.stage_id, func.count()).join_from(CallStage, Call, CallStage.call_id == Call.id)
            .where(Call.manager_id == manager.id, CallStage.status == "missed")
            .group_by(CallStage.stage_id).order_by(func.count().desc()).limit(3))]
    ids = [c.id for c in rows]
    stage_t, objection_t = stats.stage_titles(session, lang=language(request))
    trend = _score_trend(session, user, manager.id) if manager else []
    chart = line_chart([(p.week, p.value, p.n) for p in trend], label=t_for(request)("dash.trend")) if len(trend) > 1 else None
    return render(request, "my.html", {
        "manager": manager, "rows": rows, "avg": avg, "often": often, "trend": chart, "missed": stats.missed_stages(session, ids),
        "unhandled": stats.unhandled_objections(session, ids), "stage_titles": stage_t, "objection_titles": objection_t,
    }, user=user)


def _score_trend(session: Any, user: User, manager_id: int) -> list[stats.TrendPoint]:
    """The manager's average score week by week, all time: the KPI service's, as on the dashboard."""
    scope = scope_of(session, user)
    try:
        report = kpi.kpi_report(session, user=user, period=stats.report_period(session, "all", scope=scope), by="all",
                                manager_id=manager_id, trend="week", outcome=False)
    except ServiceError:  # the user's manager is outside the user's scope: no figures of them to show
        return []
    return stats.weekly(report, "score_mean", count="scored_calls")


# -- a call -----------------------------------------------------------------------------------------


@router.get("/calls/{call_id:int}")
def call_page(request: Request, session: SessionDep, user: PageUser, call_id: PathId) -> HTMLResponse:
    scope = scope_of(session, user)
    try:
        call = calls.get_call(session, call_id, scope=scope)
    except ServiceError as e:
        return render(request, "error.html", {"message": e.message}, user=user, status=e.status)
    detail = calls.detail(call)
    lines = detail["transcript"]
    history = reviews.list_reviews(session, call_id=call.id, scope=scope) if call.status == CallStatus.done else []
    disputes, _ = reviews.list_disputes(session, scope=scope, status=None, call_id=call.id, limit=50, offset=0)
    open_items = {(d.kind, d.item) for d in disputes if d.status == DisputeStatus.open}
    stage_recommended: dict[str, list[str]] = {}
    if call.script_id and call.script_version:
        try:
            script = script_of(get_version(session, script_id=call.script_id, version=call.script_version))
            stage_recommended = {s.id: s.recommended for s in script.stages}
        except NotFound:
            pass
    feedback = _feedback(session, call, detail, stage_recommended)
    latest = {(r.kind, r.item): r for r in history}
    return render(request, "call.html", {
        "call": call, "d": detail, "lines": lines, "history": history, "latest": latest, "disputes": disputes,
        "open_items": open_items, "feedback": feedback, "can_review": user.role in REVIEWERS,
        "can_dispute": user.role == Role.manager, "stage_recommended": stage_recommended,
    }, user=user)


def _feedback(session: Any, call: Any, detail: dict[str, Any], recommended: dict[str, list[str]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if call.status != CallStatus.done:
        return items
    for s in detail["stages"]:
        if s["status"] == "missed":
            items.append({"kind": "stage", "item": s["id"], "title": s["title"], "recommended": recommended.get(s["id"], [])})
    for o in detail["objections"]:
        if o["status"] == "missed":
            items.append({"kind": "objection", "item": o.get("key") or str(o["position"]), "title": o.get("title") or o["type"],
                          "recommended": o.get("recommended") or [], "client": (o.get("client") or {}).get("text"),
                          "example": stats.colleague_example(session, objection_type=o["type"], manager_id=call.manager_id)})
    return items


def _back(call_id: int, anchor: str = "") -> str:
    return f"/calls/{call_id}" + (f"#{anchor}" if anchor else "")


@router.post("/calls/{call_id:int}/review")
def review_action(
    request: Request, session: SessionDep, user: PageUser, call_id: PathId, csrf: CsrfField,
    kind: Annotated[str, Form(max_length=20)], value: Annotated[str, Form(max_length=50)],
    item: Annotated[str, Form(max_length=100)] = "", comment: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_role(user, *REVIEWERS)
    t = t_for(request)
    anchor = f"{kind}-{item}" if kind != "score" else "score"
    try:
        _, call = reviews.create_review(session, actor=user, call_id=call_id, kind=kind, item=item or None, value=value,
                                        comment=comment)
    except ServiceError as e:
        session.rollback()
        return redirect(request, _back(call_id, anchor), flash=t("flash.error", message=e.message))
    return redirect(request, _back(call_id, anchor), flash=t("call.reviewed_flash", score=f"{call.score:.0f}"
                                                               if call.score is not None else "—"))


@router.post("/calls/{call_id:int}/dispute")
def dispute_action(
    request: Request, session: SessionDep, user: PageUser, call_id: PathId, csrf: CsrfField,
    kind: Annotated[str, Form(max_length=20)], reason: Annotated[str, Form(min_length=1, max_length=5000)],
    item: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_role(user, Role.manager)
    t = t_for(request)
    anchor = f"{kind}-{item}" if kind != "score" else "score"
    try:
        reviews.open_dispute(session, actor=user, call_id=call_id, kind=kind,
                             item=item or None, reason=reason, proposed_value=None)
    except ServiceError as e:
        session.rollback()
        return redirect(request, _back(call_id, anchor), flash=t("flash.error", message=e.message))
    return redirect(request, _back(call_id, anchor), flash=t("dispute.sent"))


@router.post("/disputes/{dispute_id:int}/resolve")
def resolve_action(
    request: Request, session: SessionDep, user: PageUser, dispute_id: PathId, csrf: CsrfField,
    decision: Annotated[str, Form(pattern="^(accept|reject)$")], comment: Annotated[str, Form(max_length=5000)] = "",
    call_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 0,
) -> Response:
    check_csrf(request, csrf)
    require_role(user, *REVIEWERS)
    t = t_for(request)
    try:
        d = reviews.resolve_dispute(session, actor=user, dispute_id=dispute_id, decision=decision, comment=comment, value=None)
        call_id = d.call_id
    except ServiceError as e:
        session.rollback()
        return redirect(request, _back(call_id, "disputes") if call_id else "/queue", flash=t("flash.error", message=e.message))
    return redirect(request, _back(call_id, "disputes"), flash=t("dispute.resolved"))


@router.post("/calls/{call_id:int}/retry")
def retry_action(request: Request, session: SessionDep, user: PageUser, call_id: PathId, csrf: CsrfField) -> Response:
    check_csrf(request, csrf)
    require_role(user, *REVIEWERS)
    try:
        calls.retry_call(session, call_id=call_id, actor=user)
        request.app.state.executor.submit(call_id)
    except ServiceError as e:
        session.rollback()
        return redirect(request, _back(call_id), flash=t_for(request)("flash.error", message=e.message))
    return redirect(request, _back(call_id))


def teams_for(session: Any, user: User) -> list[Team]:
    return list(session.scalars(select(Team).where(scope_of(session, user).teams(Team.id)).order_by(Team.name)))
