"""A call's verdict rows and effective score, from its machine report and its reviews.

The machine's verdicts are kept as they are; a reviewer's latest verdict on an item wins. This
runs when a call is first scored, when it is re-scored after a script change (reviews survive) and
when a reviewer changes something.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analyzer.scripts import Script
from analyzer.verdicts import score_with_verdicts
from api.models import CallObjection, CallStage, Review, utcnow


def objection_keys(objections: list[dict[str, Any]]) -> list[str]:
    """A name for each objection of a report that survives re-scoring: its type and the index of the
    client's utterance in the transcript (``price@3``), which a new script version does not move;
    ``price#2`` (the type's 2nd occurrence) for a report without utterance indexes.

    Reviews and disputes of objections are keyed by it, so when a re-score adds, drops or reorders
    objections a verdict stays on the objection it was given for (and on none when that is gone).
    """
    keys: list[str] = []
    seen: dict[str, int] = {}
    for o in objections:
        seen[o["type"]] = seen.get(o["type"], 0) + 1
        turn = (o.get("client") or {}).get("turn")
        keys.append(f"{o['type']}@{turn}" if isinstance(turn, int) else f"{o['type']}#{seen[o['type']]}")
    return keys


OBJECTION_KEY = re.compile(r"^(?P<type>[a-z][a-z0-9_]*)@(?P<turn>\d+)$")
"""An objection's key: its type and the client's utterance (``price@3``)."""


def added_objections(report: dict[str, Any], reviews: dict[tuple[str, str], Review], script: Script | None) -> list[dict[str, Any]]:
    """Objections a reviewer added where the machine found none (``price@5``: a price objection at the
    client's utterance 5), as report objections with ``added: true``, in the order of the call.
    A reviewer's ``not_objection`` on one takes it back."""
    keys = set(objection_keys(report.get("objections", [])))
    utterances = report.get("transcript") or []
    titles = {o.type: o for o in script.objections} if script is not None else {}
    out = []
    for (kind, key), review in reviews.items():
        found = OBJECTION_KEY.match(key)
        if kind != "objection" or key in keys or found is None or review.human_value not in ("passed", "missed"):
            continue
        turn = int(found["turn"])
        if not 0 <= turn < len(utterances) or utterances[turn].get("speaker") != "client":
            continue
        objection = titles.get(found["type"])
        u = utterances[turn]
        out.append({
            "type": found["type"], "title": objection.title if objection else found["type"], "status": review.human_value,
            "handled": review.human_value == "passed", "key": key, "added": True,
            "client": {"text": u.get("text", ""), "speaker": "client", "start": u.get("start"), "end": u.get("end"), "turn": turn,
                       "phrase": None, "similarity": None, "confidence": None},
            "response": None, "recommended": list(objection.recommended) if objection else [],
            "note": "added by a reviewer: the machine did not find it",
        })
    return sorted(out, key=lambda o: o["client"]["turn"])


def latest_reviews(session: Session, call_id: int) -> dict[tuple[str, str], Review]:
    rows = session.scalars(select(Review).where(Review.call_id == call_id).order_by(Review.id))
    return {(r.kind, r.item): r for r in rows}


def call_metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """The report's metrics the KPIs read, as columns of the call (so a KPI table reads no report):
    speech time (manager and client, s) and the manager's filler words."""
    metrics = report.get("metrics") or {}
    manager, client = metrics.get("manager_talk_time"), metrics.get("client_talk_time")
    fillers = metrics.get("manager_fillers")
    return {"talk_time": float(manager) + float(client) if manager is not None and client is not None else None,
            "manager_fillers": float(fillers) if fillers is not None else None}


def result_values(session: Session, call_id: int, report: dict[str, Any], script: Script) -> dict[str, Any]:
    """Replace the call's verdict rows; returns the Call columns to set (scores, counts, script)."""
    reviews = latest_reviews(session, call_id)
    session.execute(delete(CallStage).where(CallStage.call_id == call_id))
    session.execute(delete(CallObjection).where(CallObjection.call_id == call_id))
    stage_verdicts: dict[str, str] = {}
    objection_verdicts: dict[int, str] = {}
    uncertain = 0
    for i, s in enumerate(report.get("stages", [])):
        review = reviews.get(("stage", s["id"]))
        status = review.human_value if review else s["status"]
        if review:
            stage_verdicts[s["id"]] = status
        uncertain += status == "uncertain"
        session.add(CallStage(call_id=call_id, stage_id=s["id"], position=i, machine_status=s["status"], status=status,
                              reviewed=review is not None))
    objections = report.get("objections", [])
    for i, (o, key) in enumerate(zip(objections, objection_keys(objections), strict=True)):
        review = reviews.get(("objection", key))
        status = review.human_value if review else o["status"]
        if review:
            objection_verdicts[i] = status
        uncertain += status == "uncertain"
        session.add(
            CallObjection(
                call_id=call_id, position=i, type=o["type"], machine_status=o["status"], machine_handled=bool(o.get("handled")),
                status=status, handled=status == "passed", reviewed=review is not None,
            )
        )
    added = added_objections(report, reviews, script)
    for k, o in enumerate(added):
        session.add(CallObjection(call_id=call_id, position=len(objections) + k, type=o["type"], machine_status="not_found",
                                  machine_handled=False, status=o["status"], handled=o["handled"], reviewed=True))
    machine = report.get("score")
    score = machine
    if stage_verdicts or objection_verdicts or added:
        score, _ = score_with_verdicts(report, script, stages=stage_verdicts, objections=objection_verdicts,
                                       added=[(o["type"], o["status"]) for o in added])
        score = round(score, 1) if score is not None else None
    if ("score", "score") in reviews:
        score = float(reviews[("score", "score")].human_value)
    return {
        "machine_score": machine,
        "score": score,
        "uncertain": uncertain,
        "script_id": report.get("script", {}).get("id"),
        "script_version": report.get("script", {}).get("version"),
        "language": report.get("language"),
        "duration": report.get("duration"),
        **call_metrics(report),
        "updated_at": utcnow(),
    }
