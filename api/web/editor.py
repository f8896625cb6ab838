"""The script library and editor: YAML in a textarea, validated on save with each error at its field
(dotted path and line), and "try it" on a pasted transcript before anything is stored."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from analyzer.errors import AnalyzerError, ScriptValidationError
from analyzer.results import Transcript
from analyzer.scoring import score_transcript
from analyzer.scripts import parse_script_text
from api.core.errors import ServiceError
from api.deps import STAFF, SessionDep
from api.models import Role
from api.scripts import service as scripts
from api.web.auth import check_csrf
from api.web.render import PageUser, redirect, render, require_role, t_for
from api.web.yamlpos import field_line, syntax_error_line

router = APIRouter(include_in_schema=False)
ACTIVATORS = (Role.admin, Role.head_of_sales)
_SPEAKERS = {"manager": "manager", "менеджер": "manager", "m": "manager", "м": "manager", "sales": "manager",
             "client": "client", "клиент": "client", "c": "client", "к": "client", "customer": "client"}
_LINE = re.compile(r"^\s*([^\s:]+)\s*:\s*(.+?)\s*$")


def parse_pasted(text: str) -> list[dict[str, Any]]:
    """Lines like ``manager: ...`` / ``client: ...`` as transcript turns; other lines continue the last turn."""
    turns: list[dict[str, Any]] = []
    for raw in text.splitlines():
        m = _LINE.match(raw)
        speaker = _SPEAKERS.get(m.group(1).lower()) if m else None
        if m and speaker:
            turns.append({"speaker": speaker, "text": m.group(2)})
        elif raw.strip() and turns:
            turns[-1]["text"] += " " + raw.strip()
    return turns


def script_errors(body: str, exc: Exception) -> list[dict[str, Any]]:
    """Each error with its dotted field and the line of that field in the YAML."""
    details = getattr(exc, "errors", None) or getattr(exc, "details", None) or []
    if not details:
        return [{"field": "", "message": str(getattr(exc, "message", exc)), "line": syntax_error_line(body)}]
    out = []
    for e in details:
        path = str(e.get("field", ""))
        message = str(e.get("message", ""))
        if path and message.startswith(path + ": "):
            message = message[len(path) + 2:]
        out.append({"field": path, "message": message, "line": field_line(body, path) if path else None})
    return out


@router.get("/scripts")
def scripts_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    require_role(user, *STAFF)
    grouped = scripts.versions_by_script(session)
    return render(request, "scripts.html", {"scripts": grouped}, user=user)


def _editor(request: Request, session: Any, user: Any, script_id: str, *, body: str | None = None, version: str | None = None,
            **extra: Any) -> HTMLResponse:
    versions = scripts.versions_by_script(session, script_id=script_id).get(script_id)
    if not versions:
        return render(request, "error.html", {"message": f"no script {script_id!r}"}, user=user, status=404)
    shown = next((v for v in versions if v.version == version), None) or next((v for v in versions if v.active), versions[-1])
    return render(request, "editor.html", {
        "script_id": script_id, "versions": versions, "shown": shown, "body": shown.body if body is None else body,
        "can_activate": user.role in ACTIVATORS, "transcript": extra.pop("transcript", ""), "errors": extra.pop("errors", []),
        **extra,
    }, user=user)


@router.get("/scripts/{script_id}")
def editor_page(request: Request, session: SessionDep, user: PageUser, script_id: str, version: str | None = None) -> HTMLResponse:
    require_role(user, *STAFF)
    return _editor(request, session, user, script_id, version=version)


@router.post("/scripts/{script_id}")
def editor_post(
    request: Request, session: SessionDep, user: PageUser, script_id: str,
    csrf: Annotated[str, Form(max_length=100)], body: Annotated[str, Form(max_length=1_000_000)],
    action: Annotated[str, Form(pattern="^(save|try)$")] = "try",
    transcript: Annotated[str, Form(max_length=200_000)] = "", activate: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    check_csrf(request, csrf)
    require_role(user, *STAFF)
    t = t_for(request)
    if action == "try":
        try:
            script = parse_script_text(body, source="script")
        except ScriptValidationError as e:
            return _editor(request, session, user, script_id, body=body, transcript=transcript, errors=script_errors(body, e))
        turns = parse_pasted(transcript)
        if not turns:
            return _editor(request, session, user, script_id, body=body, transcript=transcript, try_error=t("editor.no_lines"))
        try:
            report = score_transcript(Transcript.from_dict({"language": script.language, "turns": turns}), script).to_dict()
        except AnalyzerError as e:
            return _editor(request, session, user, script_id, body=body, transcript=transcript, try_error=str(e))
        return _editor(request, session, user, script_id, body=body, transcript=transcript, result=report)
    try:
        row = scripts.create_version(session, actor=user, body=body, activate=bool(activate) and user.role in ACTIVATORS)
    except ServiceError as e:
        session.rollback()
        errors = script_errors(body, e) if e.code == "script_invalid" else [{"field": "version" if e.code == "script_version_exists"
                                                                              else "", "message": e.message,
                                                                              "line": field_line(body, "version")}]
        return _editor(request, session, user, script_id, body=body, transcript=transcript, errors=errors)
    return redirect(request, f"/scripts/{row.script_id}?version={row.version}", flash=t("editor.saved", v=row.version))
