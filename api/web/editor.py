"""The script library and editor: YAML in a textarea, validated on save with each error at its field
(dotted path and line), and "try it" on a pasted transcript before anything is stored; learning a new
version from the reviews (:mod:`api.learning.service`), with what it would change before anyone
activates it."""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from analyzer.errors import AnalyzerError, ScriptValidationError
from analyzer.results import Transcript
from analyzer.scoring import score_transcript
from analyzer.scripts import parse_script_text
from api.auth.scope import scope_of
from api.core.errors import ServiceError
from api.core.exports import CSV_TYPE, csv_bytes, download
from api.deps import STAFF, SessionDep
from api.learning import service as learning
from api.models import Role
from api.scripts import service as scripts
from api.web.auth import check_csrf
from api.web.render import PageUser, fmt_version, language, redirect, render, require_role, t_for
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
            status: int = 200, **extra: Any) -> HTMLResponse:
    versions = scripts.versions_by_script(session, script_id=script_id).get(script_id)
    if not versions:
        return render(request, "error.html", {"message": t_for(request)("learn.no_script")}, user=user, status=404)
    shown = next((v for v in versions if v.version == version), None) or next((v for v in versions if v.active), versions[-1])
    return render(request, "editor.html", {
        "script_id": script_id, "versions": versions, "shown": shown, "body": shown.body if body is None else body,
        "can_activate": user.role in ACTIVATORS, "transcript": extra.pop("transcript", ""), "errors": extra.pop("errors", []),
        "learning": _learning(session, user, script_id, shown), **extra,
    }, user=user, status=status)


def _titles(version: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The script's stage and objection titles (its own words: a reviewer reads them, never ids)."""
    script = scripts.script_of(version)
    return {s.id: s.title for s in script.stages}, {o.type: o.title for o in script.objections}


def _learning(session: Any, user: Any, script_id: str, shown: Any) -> dict[str, Any]:
    """What the reviews of this script's calls (those ``user`` may see) would teach it: counts by label."""
    rows = learning.reviewed_examples(session, script_id=script_id, scope=scope_of(session, user))
    _, objection_titles = _titles(shown)
    utterances = Counter(r["label"] for r in rows if r["kind"] == "utterance")
    answers = Counter(bool(r["handled"]) for r in rows if r["kind"] == "response")
    return {"examples": len(rows), "calls": len({r["call_id"] for r in rows}), "answers": answers,
            "labels": sorted(((objection_titles.get(k, k) if k != "none" else None), n) for k, n in utterances.items()
                             if k != "none") + ([(None, utterances["none"])] if utterances["none"] else [])}


def _changes(learned: learning.Learned, version: Any) -> list[dict[str, Any]]:
    """The calls whose verdicts or score the learned version would change, in words: a stage's title with
    its verdict before and after; the objections that differ, before and after."""
    stage_titles, objection_titles = _titles(version)
    out = []
    for c in learned.changes.changes:
        before, after = Counter(c.objections_before), Counter(c.objections_after)
        gone, new = sorted((before - after).elements()), sorted((after - before).elements())
        if not c.stages_changed and not gone and not new and c.score_before == c.score_after:
            continue  # only the version's name differs
        word = lambda key: (objection_titles.get(key.split(":")[0], key.split(":")[0]), key.split(":")[1])  # noqa: E731
        out.append({"call_id": c.call_id, "score_before": c.score_before, "score_after": c.score_after,
                    "stages": [(stage_titles.get(k, k), a, b) for k, (a, b) in c.stages_changed.items()],
                    "gone": [word(k) for k in gone], "new": [word(k) for k in new]})
    return out


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
    return redirect(request, f"/scripts/{row.script_id}?version={quote(row.version)}", flash=t("editor.saved", v=fmt_version(row.version, language(request))))


@router.post("/scripts/{script_id}/learn")
def learn_post(request: Request, session: SessionDep, user: PageUser, script_id: str,
               csrf: Annotated[str, Form(max_length=100)]) -> Response:
    """Learn a new version from the reviews: stored, not active; the page shows what activating it would change."""
    check_csrf(request, csrf)
    require_role(user, *STAFF)
    t = t_for(request)
    if not scripts.versions_by_script(session, script_id=script_id).get(script_id):
        return _editor(request, session, user, script_id)  # the page's own "no such script"
    try:
        learned = learning.learn(session, actor=user, script_id=script_id)
    except ServiceError as e:
        session.rollback()
        done = (e.details or {}).get("version")
        message = t("learn.nothing_new", v=fmt_version(done, language(request))) if done else t("learn.nothing_yet")
        return _editor(request, session, user, script_id, learn_error=message, status=409)
    changes = _changes(learned, learned.version)
    return _editor(request, session, user, script_id, version=learned.version.version, learned=learned, changes=changes)


@router.post("/scripts/{script_id}/activate")
def activate_post(request: Request, session: SessionDep, user: PageUser, script_id: str,
                  csrf: Annotated[str, Form(max_length=100)], version: Annotated[str, Form(max_length=200)]) -> Response:
    check_csrf(request, csrf)
    require_role(user, *ACTIVATORS)
    try:
        scripts.activate_version(session, actor=user, script_id=script_id, version=version)
    except ServiceError:
        session.rollback()
        return _editor(request, session, user, script_id, learn_error=t_for(request)("learn.no_version", v=fmt_version(version, language(request))), status=404)
    return redirect(request, f"/scripts/{script_id}?version={quote(version)}", flash=t_for(request)("learn.activated", v=fmt_version(version, language(request))))


@router.get("/scripts/{script_id}/examples.csv")
def examples_csv(request: Request, session: SessionDep, user: PageUser, script_id: str) -> Response:
    """The reviewed examples in the reader's language (semicolons and a BOM, for Excel): what a
    reviewer decided about each objection, with its words and the call it came from."""
    require_role(user, *STAFF)
    t = t_for(request)
    versions = scripts.versions_by_script(session, script_id=script_id).get(script_id)
    if not versions:
        return render(request, "error.html", {"message": t("learn.no_script")}, user=user, status=404)
    _, objection_titles = _titles(next((v for v in versions if v.active), versions[-1]))
    table = [[t(c) for c in ("learn.col.kind", "learn.col.label", "learn.col.handled", "learn.col.text", "learn.col.context",
                             "col.call")]]
    for r in learning.reviewed_examples(session, script_id=script_id, scope=scope_of(session, user)):
        label = t("verdict.not_objection") if r["label"] == "none" else objection_titles.get(r["label"], r["label"])
        handled = "" if r["kind"] != "response" else t("objection.passed" if r["handled"] else "objection.missed")
        table.append([t(f"learn.kind.{r['kind']}"), label, handled, r["text"], r["context"], t("call.no", id=r["call_id"])])
    return download(csv_bytes(table, sep=";"), media_type=CSV_TYPE, filename=f"{script_id}-examples.csv")
