"""A script learns from its reviewers: what quality controllers decided about objections becomes the
examples of a new version, whose learned layer (:mod:`analyzer.learned`) is trained with them.

Examples are read from the reviews themselves (the latest verdict of each objection of each call
scored with the script), so nothing is kept twice:

- an objection confirmed (``passed``: handled, ``missed``: not handled) makes the client's utterance
  an example of its type and the manager's answer (the next two turns) an example of handling or not;
- ``not_objection`` makes the utterance an example of none: a look-alike;
- an objection the machine missed, which the reviewer added (``price@5``), an example of its type
  and its answer one of handling or not, as a confirmed one.

``learn`` stores a new version, the active one's YAML with a new version name and these examples
beside it (``ScriptVersion.examples``: each names its call, so the YAML every user reads holds none
of a call's words), and answers what it would change on the stored calls (the dry-run re-score);
activating it is a separate step, as for any version.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.audit import audit
from api.auth.scope import Scope
from api.calls.results import OBJECTION_KEY, objection_keys
from api.calls.schemas import RescoreResultPublic
from api.calls.service import rescore
from api.core.errors import Conflict
from api.models import Call, CallStatus, Review, ScriptVersion, User
from api.scripts.service import active_version, versions_by_script

_VERSION_LINE = re.compile(r"^version:.*$", re.MULTILINE)


def reviewed_examples(session: Session, *, script_id: str, scope: Scope) -> list[dict[str, Any]]:
    """The examples the reviews of calls scored with ``script_id`` give, of the calls ``scope`` may see."""
    latest: dict[tuple[int, str], Review] = {}
    query = (select(Review).join(Call, Call.id == Review.call_id)
             .where(Review.kind == "objection", Call.script_id == script_id, Call.status == CallStatus.done)
             .order_by(Review.id))
    for review in session.scalars(scope.calls(query)):
        latest[(review.call_id, review.item)] = review
    calls = {c.id: c for c in session.scalars(select(Call).where(Call.id.in_({c for c, _ in latest})))} if latest else {}
    examples: list[dict[str, Any]] = []
    for (call_id, key), review in sorted(latest.items()):
        report = calls[call_id].report or {}
        objections = report.get("objections", [])
        keys = objection_keys(objections)
        added = OBJECTION_KEY.match(key)
        if key in keys:
            o = objections[keys.index(key)]
            turn = (o.get("client") or {}).get("turn")
        elif added is not None and review.human_value != "not_objection":  # one the machine missed, added by the reviewer
            o, turn = {"type": added["type"]}, int(added["turn"])
        else:
            continue  # a re-score moved the objection away: the verdict speaks of nothing now
        utterances = report.get("transcript") or []
        if not isinstance(turn, int) or not 0 <= turn < len(utterances):
            continue
        before = next((u["text"] for u in reversed(utterances[:turn]) if u.get("speaker") == "manager"), "")
        source = {"call_id": call_id, "review_id": review.id}
        text = utterances[turn]["text"]
        if review.human_value == "not_objection":
            examples.append({"kind": "utterance", "text": text, "context": before, "label": "none", **source})
            continue
        examples.append({"kind": "utterance", "text": text, "context": before, "label": o["type"], **source})
        answer = [u["text"] for u in utterances[turn + 1 :] if u.get("speaker") == "manager"][:2]
        if answer:
            examples.append({"kind": "response", "text": " ".join(answer), "context": text, "label": o["type"],
                             "handled": review.human_value == "passed", **source})
    return examples


@dataclass(frozen=True)
class Learned:
    version: ScriptVersion
    examples: int
    calls: int
    labels: dict[str, int]
    changes: RescoreResultPublic


def learn(session: Session, *, actor: User | None, script_id: str) -> Learned:
    """A new version of ``script_id`` learned from every review so far, not active; and what it would
    change on the stored calls ``actor`` may see."""
    active = active_version(session, script_id=script_id)
    examples = reviewed_examples(session, script_id=script_id, scope=Scope.system())  # the company's script: every review
    if not examples:
        raise Conflict(f"no reviewed objection of a call scored with {script_id!r} yet: review objections first "
                       "(confirm one, mark one not_objection, judge its handling)", code="nothing_to_learn")
    versions = versions_by_script(session, script_id=script_id)[script_id]
    newest_learned = next((v for v in reversed(versions) if v.examples), None)
    if newest_learned is not None and _same(newest_learned.examples or [], examples):
        raise Conflict(f"nothing new to learn: version {newest_learned.version} learned from these same reviews",
                       code="nothing_to_learn", details={"version": newest_learned.version})
    base = active.version.split("+learned.")[0]
    taken = {v.version for v in versions}
    n = 1
    while f"{base}+learned.{n}" in taken:
        n += 1
    name = f"{base}+learned.{n}"
    body = _VERSION_LINE.sub(f'version: "{name}"', active.body, count=1)
    row = ScriptVersion(script_id=script_id, version=name, language=active.language, title=active.title, body=body,
                        examples=examples, created_by=actor.id if actor else None)
    session.add(row)
    session.flush()
    labels = Counter(e["label"] if e["kind"] == "utterance" else f"answer:{'handled' if e['handled'] else 'not handled'}"
                     for e in examples)
    audit(session, user=actor, action="script.learn", entity="script", entity_id=f"{script_id}@{name}",
          after={"from": active.version, "examples": len(examples), "calls": len({e["call_id"] for e in examples})})
    session.commit()
    changes = rescore(session, actor=actor, script_id=script_id, call_ids=None, dry_run=True, version=name)  # in the actor's scope
    return Learned(row, len(examples), len({e["call_id"] for e in examples}), dict(sorted(labels.items())), changes)


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    strip = lambda rows: sorted((r["kind"], r["text"], r["label"], r.get("handled")) for r in rows)  # noqa: E731
    return strip(a) == strip(b)
