"""A call's verdict rows and effective score, from its machine report and its reviews.

The machine's verdicts are kept as they are; a reviewer's latest verdict on an item wins. This
runs when a call is first scored, when it is re-scored after a script change (reviews survive) and
when a reviewer changes something.
"""

from __future__ import annotations

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


def latest_reviews(session: Session, call_id: int) -> dict[tuple[str, str], Review]:
    rows = session.scalars(select(Review).where(Review.call_id == call_id).order_by(Review.id))
    return {(r.kind, r.item): r for r in rows}


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
    machine = report.get("score")
    score = machine
    if stage_verdicts or objection_verdicts:
        score, _ = score_with_verdicts(report, script, stages=stage_verdicts, objections=objection_verdicts)
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
        # the verdict rows changed even when no column of the call does: the list index follows this
        "updated_at": utcnow(),
    }
