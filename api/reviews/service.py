"""Reviews, disputes, the audit log and agreement between reviewers and the machine.

A review is a quality controller's verdict on one item of a scored call: a stage (passed or
missed), an objection (passed = handled, missed = not handled, not_objection = the client raised
none) or the score itself. An objection is addressed by its position in the report or its key and
stored under the key (``price@3``: type and client utterance, see
:func:`api.calls.results.objection_keys`), so a re-score that moves objections keeps each verdict on
its objection. Reviews are appended, never
edited; the latest one per (call, kind, item) wins over the machine's verdict, and the call's
verdict rows and effective score are recomputed in the same transaction as the review and its
audit entry (:func:`api.calls.results.result_values`).

A dispute is a manager's disagreement with a verdict on own call; accepting it creates a review.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, func, or_, select, true
from sqlalchemy.orm import Session, selectinload

from analyzer.verdicts import OBJECTION_VERDICTS, STAGE_VERDICTS
from api.audit import audit
from api.auth.scope import Scope, scope_of
from api.calls.results import OBJECTION_KEY, objection_keys, result_values
from api.core.errors import BadRequest, Conflict, NotFound
from api.models import (
    AuditEntry,
    Call,
    CallObjection,
    CallStage,
    CallStatus,
    Dispute,
    DisputeStatus,
    Manager,
    Review,
    Role,
    User,
    utcnow,
)
from api.scripts.service import get_version, script_of

KINDS = ("stage", "objection", "score")


@dataclass(frozen=True)
class Target:
    """The item of a call a review or dispute addresses, with its verdicts now."""

    kind: str
    item: str
    objection_type: str | None
    machine_value: str | None
    current_value: str | None
    """The verdict in force: the latest reviewer's, else the machine's."""
    reviewed: bool


# -- calls and items ---------------------------------------------------------------------------


def scored_call(session: Session, call_id: int, *, scope: Scope, lock: bool = False) -> Call:
    """A done call the scope may see; ``lock`` serialises reviews of the same call (PostgreSQL)."""
    call = session.get(Call, call_id, with_for_update=lock or None)
    if call is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    scope.call(call_id, call.manager_id)
    if call.status != CallStatus.done or call.report is None:
        raise Conflict(
            f"call {call_id} is {call.status.value}; only a scored (done) call has verdicts to review or dispute",
            code="call_not_done",
        )
    return call


def _score_text(value: float | None) -> str | None:
    return None if value is None else f"{round(value, 1):g}"


def resolve_item(session: Session, call: Call, *, kind: str, item: str | int | None) -> Target:
    """The addressed item; NotFound/BadRequest name the valid stage ids or objection positions."""
    report = call.report or {}
    if kind == "stage":
        ids = [s["id"] for s in report.get("stages", [])]
        stage = next((s for s in report.get("stages", []) if s["id"] == item), None)
        if stage is None:
            raise NotFound(f"call {call.id} has no stage {item!r}; its stages: {', '.join(ids) or 'none'}",
                           code="stage_not_found", details={"stages": ids})
        row = session.execute(
            select(CallStage.status, CallStage.reviewed).where(CallStage.call_id == call.id, CallStage.stage_id == stage["id"])
        ).first()
        return Target("stage", stage["id"], None, stage["status"], row.status if row else stage["status"],
                      bool(row and row.reviewed))
    if kind == "objection":
        objections = report.get("objections", [])
        keys = objection_keys(objections)
        valid = [{"position": i, "key": k, "type": o["type"]} for i, (o, k) in enumerate(zip(objections, keys, strict=True))]
        names = ", ".join(f"{i} ({k})" for i, k in enumerate(keys)) or "none, the call has no objections"
        position = _position(item)
        if position is None and isinstance(item, str) and item.strip() in keys:
            position = keys.index(item.strip())
        elif position is None and isinstance(item, str) and OBJECTION_KEY.match(item.strip()):
            return _missed_objection(session, call, item.strip())
        elif position is None:
            raise BadRequest(f"'item' must be an objection's key or its position in the call, or type@utterance for one "
                             f"the machine missed; objections: {names}", code="bad_objection_position",
                             details={"objections": valid})
        if not 0 <= position < len(objections):
            raise NotFound(f"call {call.id} has no objection at position {position}; objections: {names}",
                           code="objection_not_found", details={"objections": valid})
        o = objections[position]
        orow = session.execute(
            select(CallObjection.status, CallObjection.reviewed)
            .where(CallObjection.call_id == call.id, CallObjection.position == position)
        ).first()
        return Target("objection", keys[position], o["type"], o["status"], orow.status if orow else o["status"],
                      bool(orow and orow.reviewed))
    if kind == "score":
        if item not in (None, "", "score"):
            raise BadRequest("a score review addresses the call's score: leave 'item' out", code="bad_item")
        reviewed = session.scalar(select(Review.id).where(Review.call_id == call.id, Review.kind == "score").limit(1))
        return Target("score", "score", None, _score_text(call.machine_score), _score_text(call.score), reviewed is not None)
    raise BadRequest(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}", code="bad_kind")


def _missed_objection(session: Session, call: Call, key: str) -> Target:
    """An objection the machine did not find, which a reviewer adds: ``price@5``, the script's type
    at the call's utterance 5, which must be the client's."""
    found = OBJECTION_KEY.match(key)
    assert found is not None
    report = call.report or {}
    utterances = report.get("transcript") or []
    turn = int(found["turn"])
    if not 0 <= turn < len(utterances) or utterances[turn].get("speaker") != "client":
        clients = [i for i, u in enumerate(utterances) if u.get("speaker") == "client"]
        raise NotFound(f"utterance {turn} of call {call.id} is not the client's; the client's utterances: "
                       f"{', '.join(map(str, clients)) or 'none'}", code="utterance_not_found", details={"client_utterances": clients})
    types = [o.type for o in _script_of_call(session, call).objections]
    if found["type"] not in types:
        # a bad value, not a missing thing: 400 naming what the item may be, as for any other bad item
        keys = objection_keys(report.get("objections", []))
        raise BadRequest(f"the script has no objection type {found['type']!r}; types: {', '.join(types)}; the call's "
                         f"objections: {', '.join(keys) or 'none'}", code="unknown_objection_type",
                         details={"types": types, "objections": keys})
    latest = session.scalar(select(Review.human_value).where(Review.call_id == call.id, Review.kind == "objection",
                                                             Review.item == key).order_by(Review.id.desc()).limit(1))
    return Target("objection", key, found["type"], None, latest, latest is not None)


def _script_of_call(session: Session, call: Call) -> Any:
    try:
        return script_of(get_version(session, script_id=call.script_id or "", version=call.script_version or ""))
    except NotFound:
        raise Conflict(f"call {call.id} was scored with script {call.script_id}@{call.script_version}, which is not "
                       "stored; re-score the call first (POST /api/v1/calls/rescore)", code="script_version_missing") from None


def _position(item: str | int | None) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    if isinstance(item, str) and item.strip().lstrip("-").isdigit():
        return int(item.strip())
    return None


def verdict(kind: str, value: str | float | None) -> str:
    """A person's verdict in its stored form; BadRequest lists the allowed values."""
    if kind == "score":
        try:
            number = float(value) if value is not None and not isinstance(value, bool) else math.nan
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 <= number <= 100):
            raise BadRequest(f"a score must be a number from 0 to 100, not {value!r}", code="bad_verdict")
        text = _score_text(number)
        assert text is not None
        return text
    allowed = STAGE_VERDICTS if kind == "stage" else OBJECTION_VERDICTS
    if value not in allowed:
        hint = "; 'uncertain' is the machine's doubt, a person decides" if value == "uncertain" else ""
        raise BadRequest(f"{value!r} is not a {kind} verdict; use one of: {', '.join(allowed)}{hint}",
                         code="bad_verdict", details={"allowed": list(allowed)})
    return str(value)


def _opposite(target: Target) -> str | None:
    if target.kind in ("stage", "objection"):
        return {"passed": "missed", "missed": "passed"}.get(target.current_value or "")
    return None


# -- reviews -----------------------------------------------------------------------------------


def _recompute(session: Session, call: Call) -> None:
    """The call's verdict rows and effective score from its report and (latest) reviews."""
    assert call.report is not None and call.script_id and call.script_version
    values = result_values(session, call.id, call.report, _script_of_call(session, call))
    values.pop("duration", None)
    for key, value in values.items():
        setattr(call, key, value)


def _add_review(session: Session, *, actor: User, call: Call, target: Target, value: str, comment: str) -> Review:
    before = {"kind": target.kind, "item": target.item, "machine": target.machine_value, "value": target.current_value,
              "reviewed": target.reviewed, "score": call.score}
    review = Review(call_id=call.id, kind=target.kind, item=target.item, objection_type=target.objection_type,
                    machine_value=target.machine_value, human_value=value, comment=comment, user_id=actor.id)
    session.add(review)
    session.flush()
    _recompute(session, call)
    after = {"kind": target.kind, "item": target.item, "machine": target.machine_value, "value": value,
             "reviewed": True, "score": call.score, "comment": comment, "review_id": review.id}
    audit(session, user=actor, action=f"review.{target.kind}", entity="call", entity_id=call.id, before=before, after=after)
    return review


def create_review(
    session: Session, *, actor: User, call_id: int, kind: str, item: str | int | None, value: str | float, comment: str
) -> tuple[Review, Call]:
    """Record a reviewer's verdict, recompute the call, audit it; one transaction."""
    call = scored_call(session, call_id, scope=scope_of(session, actor), lock=True)
    target = resolve_item(session, call, kind=kind, item=item)
    review = _add_review(session, actor=actor, call=call, target=target, value=verdict(kind, value), comment=comment.strip())
    session.commit()
    return review, call


def list_reviews(session: Session, *, call_id: int, scope: Scope) -> list[Review]:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    scope.call(call_id, call.manager_id)
    return list(session.scalars(select(Review).options(selectinload(Review.user)).where(Review.call_id == call_id)
                                .order_by(Review.id)))


# -- disputes ----------------------------------------------------------------------------------


def open_dispute(
    session: Session, *, actor: User, call_id: int, kind: str, item: str | int | None,
    reason: str, proposed_value: str | float | None,
) -> Dispute:
    """A manager disputes a verdict on own call."""
    scope = scope_of(session, actor)
    call = scored_call(session, call_id, scope=scope)
    target = resolve_item(session, call, kind=kind, item=item)
    proposed = verdict(kind, proposed_value) if proposed_value is not None else None
    if proposed is not None and proposed == target.current_value:
        raise BadRequest(f"the {kind} {target.item} already is {proposed}; nothing to dispute", code="nothing_to_dispute")
    already = session.scalar(select(Dispute.id).where(Dispute.call_id == call.id, Dispute.kind == target.kind,
                                                      Dispute.item == target.item, Dispute.status == DisputeStatus.open))
    if already is not None:
        raise Conflict(f"dispute {already} about this {kind} is still open", code="dispute_open", details={"dispute_id": already})
    dispute = Dispute(call_id=call.id, kind=target.kind, item=target.item, disputed_value=target.current_value,
                      proposed_value=proposed, reason=reason.strip(), opened_by=actor.id)
    session.add(dispute)
    session.flush()
    audit(session, user=actor, action="dispute.open", entity="dispute", entity_id=dispute.id,
          after={"call_id": call.id, "kind": target.kind, "item": target.item, "disputed_value": target.current_value,
                 "proposed_value": proposed, "reason": dispute.reason})
    session.commit()
    return get_dispute(session, dispute_id=dispute.id, scope=scope)


def resolve_dispute(
    session: Session, *, actor: User, dispute_id: int, decision: str, comment: str, value: str | float | None
) -> Dispute:
    """Accept (a review with the proposed, given or opposite verdict) or reject (with a comment)."""
    scope = scope_of(session, actor)
    dispute = session.get(Dispute, dispute_id, with_for_update=True)
    if dispute is None or not scope.sees_manager(session.scalar(select(Call.manager_id).where(Call.id == dispute.call_id))):
        raise NotFound(f"no dispute {dispute_id}", code="dispute_not_found")
    if dispute.status != DisputeStatus.open:
        raise Conflict(f"dispute {dispute_id} is already {dispute.status.value}", code="dispute_resolved")
    comment = comment.strip()
    after: dict[str, Any] = {"status": decision, "resolution": comment}
    if decision == "reject":
        if not comment:
            raise BadRequest("say why the dispute is rejected in 'comment': the manager reads it", code="comment_required")
        dispute.status = DisputeStatus.rejected
    else:
        call = scored_call(session, dispute.call_id, scope=scope, lock=True)
        target = resolve_item(session, call, kind=dispute.kind, item=dispute.item)
        chosen = value if value is not None else dispute.proposed_value or _opposite(target)
        if chosen is None:
            raise BadRequest(f"the dispute proposes no verdict and {target.current_value!r} has no opposite; give 'value'",
                             code="verdict_required")
        human = verdict(dispute.kind, chosen)
        review = _add_review(session, actor=actor, call=call, target=target, value=human,
                             comment=comment or f"dispute {dispute.id} accepted: {dispute.reason}")
        dispute.status = DisputeStatus.accepted
        dispute.review_id = review.id
        after.update(value=human, review_id=review.id)
    dispute.resolution = comment
    dispute.resolved_by = actor.id
    dispute.resolved_at = utcnow()
    audit(session, user=actor, action=f"dispute.{decision}", entity="dispute", entity_id=dispute.id,
          before={"status": "open", "call_id": dispute.call_id, "kind": dispute.kind, "item": dispute.item}, after=after)
    session.commit()
    return get_dispute(session, dispute_id=dispute.id, scope=scope)


def _disputes(scope: Scope) -> Select[Any]:
    query = select(Dispute).options(selectinload(Dispute.opener), selectinload(Dispute.resolver))
    if not scope.everything:
        query = query.join(Call, Call.id == Dispute.call_id).where(scope.managers(Call.manager_id))
    return query


def get_dispute(session: Session, *, dispute_id: int, scope: Scope) -> Dispute:
    """A dispute about a call the scope may see; NotFound for a missing one and one outside it alike."""
    dispute: Dispute | None = session.scalar(_disputes(scope).where(Dispute.id == dispute_id)
                                             .execution_options(populate_existing=True))
    if dispute is None:
        raise NotFound(f"no dispute {dispute_id}", code="dispute_not_found")
    return dispute


def list_disputes(
    session: Session, *, scope: Scope, status: DisputeStatus | None, call_id: int | None, limit: int, offset: int
) -> tuple[list[Dispute], int]:
    query = _disputes(scope)
    if status is not None:
        query = query.where(Dispute.status == status)
    if call_id is not None:
        query = query.where(Dispute.call_id == call_id)
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(Dispute.id).subquery())) or 0
    rows = session.scalars(query.order_by(Dispute.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


# -- audit log ---------------------------------------------------------------------------------


def _audit_scope(scope: Scope) -> Any:
    """The audit entries a scope may read: those about its calls, their disputes, its managers, teams and
    their users' logins, the script library's versions, and what the user did themselves. Entity ids
    are text in the log, so the ids are compared as text."""
    if scope.everything:
        return true()
    calls = select(cast(Call.id, String)).where(scope.managers(Call.manager_id))
    disputes = select(cast(Dispute.id, String)).join(Call, Call.id == Dispute.call_id).where(scope.managers(Call.manager_id))
    managers = select(cast(Manager.id, String)).where(scope.managers(Manager.id))
    logins = select(cast(Manager.user_id, String)).where(scope.managers(Manager.id), Manager.user_id.is_not(None))
    teams = [str(t) for t in sorted(scope.team_ids or ())] if scope.role == Role.head_of_sales else []
    return or_(
        and_(AuditEntry.entity == "call", AuditEntry.entity_id.in_(calls)),
        and_(AuditEntry.entity == "dispute", AuditEntry.entity_id.in_(disputes)),
        and_(AuditEntry.entity == "manager", AuditEntry.entity_id.in_(managers)),
        and_(AuditEntry.entity == "team", AuditEntry.entity_id.in_(teams)),
        and_(AuditEntry.entity == "user", or_(AuditEntry.entity_id.in_(logins), AuditEntry.entity_id == str(scope.user_id))),
        and_(AuditEntry.entity == "script", AuditEntry.action.in_(("script.create", "script.activate"))),
        AuditEntry.user_id == scope.user_id,
    )


def list_audit(
    session: Session, *, scope: Scope, entity: str | None, entity_id: str | None, user_id: int | None, action: str | None,
    date_from: datetime | None, date_to: datetime | None, limit: int, offset: int,
) -> tuple[list[AuditEntry], int]:
    conditions = []
    if entity is not None:
        conditions.append(AuditEntry.entity == entity)
    if entity_id is not None:
        conditions.append(AuditEntry.entity_id == entity_id)
    if user_id is not None:
        conditions.append(AuditEntry.user_id == user_id)
    if action is not None:
        conditions.append(AuditEntry.action == action)
    if date_from is not None:
        conditions.append(AuditEntry.at >= date_from)
    if date_to is not None:
        conditions.append(AuditEntry.at < date_to)
    where = and_(_audit_scope(scope), *conditions)
    total = session.scalar(select(func.count(AuditEntry.id)).where(where)) or 0
    rows = session.scalars(select(AuditEntry).options(selectinload(AuditEntry.user)).where(where)
                           .order_by(AuditEntry.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


# -- agreement ---------------------------------------------------------------------------------


def agreement(session: Session, *, scope: Scope, date_from: datetime | None, date_to: datetime | None) -> dict[str, Any]:
    """How often reviewers agreed with the machine, per stage id and per objection type, over the calls
    the scope may see.

    Only the latest review of each (call, kind, item) counts (a reviewer who changed their mind is
    counted once, with the final verdict); the period filters on that review's time.
    """
    latest = (select(func.max(Review.id)).where(Review.kind.in_(("stage", "objection")))
              .group_by(Review.call_id, Review.kind, Review.item))
    if not scope.everything:
        latest = latest.where(Review.call_id.in_(scope.calls(select(Call.id))))
    subject = case((Review.kind == "stage", Review.item), else_=func.coalesce(Review.objection_type, "unknown"))
    query = (select(Review.kind, subject, Review.machine_value, Review.human_value, func.count())
             .where(Review.id.in_(latest)).group_by(Review.kind, subject, Review.machine_value, Review.human_value))
    if date_from is not None:
        query = query.where(Review.created_at >= date_from)
    if date_to is not None:
        query = query.where(Review.created_at < date_to)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, key, machine, human, count in session.execute(query):
        g = groups.setdefault((kind, key), {"id": key, "reviews": 0, "agreed": 0, "confusion": {}})
        g["reviews"] += count
        g["agreed"] += count if machine == human else 0
        pair = f"{machine or '-'}->{human}"
        g["confusion"][pair] = g["confusion"].get(pair, 0) + count
    for g in groups.values():
        g["agreement"] = round(g["agreed"] / g["reviews"], 4)
        g["confusion"] = dict(sorted(g["confusion"].items()))
    reviews = sum(g["reviews"] for g in groups.values())
    agreed = sum(g["agreed"] for g in groups.values())
    return {
        "date_from": date_from, "date_to": date_to, "reviews": reviews, "agreed": agreed,
        "agreement": round(agreed / reviews, 4) if reviews else None,
        "stages": [g for (k, _), g in sorted(groups.items()) if k == "stage"],
        "objections": [g for (k, _), g in sorted(groups.items()) if k == "objection"],
    }
