"""A stored report's score with some verdicts decided by a person.

A quality controller may decide an uncertain stage, or overturn the machine on a stage or an
objection; the score is then recomputed by the same rule as the machine's
(:func:`analyzer.scoring.weighted_score`) from the report's verdicts with the person's ones
substituted. Works on the report's JSON, so a service can apply reviews without re-scoring the
transcript.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from analyzer.scoring import weighted_score
from analyzer.scripts import Script

STAGE_VERDICTS = ("passed", "missed")
OBJECTION_VERDICTS = ("passed", "missed", "not_objection")
"""passed: raised and handled; missed: raised, not handled; not_objection: the machine was wrong that one was raised."""


def score_with_verdicts(
    report: dict[str, Any],
    script: Script,
    *,
    stages: dict[str, str] | None = None,
    objections: dict[int, str] | None = None,
    added: list[tuple[str, str]] | None = None,
) -> tuple[float | None, list[dict[str, Any]]]:
    """The score and its breakdown with ``stages[id]`` and ``objections[position]`` decided by a person,
    and the objections a person ``added`` that the machine did not find, as ``(type, passed|missed)``."""
    stages = stages or {}
    objections = objections or {}
    stage_rows = []
    for s in report.get("stages", []):
        status = stages.get(s["id"], s["status"])
        stage_rows.append(
            SimpleNamespace(
                id=s["id"], status=status, passed=status == "passed", required=s.get("required", True),
                weight=s.get("weight", 10.0), violations=s.get("violations") or (),
            )
        )
    objection_rows = []
    for i, o in enumerate(report.get("objections", [])):
        status = objections.get(i, o["status"])
        if status == "not_objection":
            continue
        handled = o.get("handled") if status == "uncertain" else status == "passed"
        objection_rows.append(SimpleNamespace(type=o["type"], status=status, handled=handled))
    for type_, status in added or ():
        objection_rows.append(SimpleNamespace(type=type_, status=status, handled=status == "passed"))
    score, items = weighted_score(stage_rows, objection_rows, script)  # type: ignore[arg-type]
    return score, [i.to_dict() for i in items]
