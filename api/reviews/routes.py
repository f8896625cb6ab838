"""Reviews, disputes, the audit log and agreement over HTTP.

Roles: quality controllers and admins review and resolve disputes; a manager disputes verdicts on
own calls; every role reads reviews and disputes of the calls it may see; staff (admin, head of
sales, quality controller) read the audit log and the agreement figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from api.auth.scope import scope_of
from api.core.ids import MAX_ID, PathId, QueryId
from api.core.moments import iso_only
from api.deps import REVIEWERS, STAFF, SessionDep, UserDep, require
from api.models import DisputeStatus, Role, User
from api.reviews import service
from api.reviews.schemas import (
    AgreementReportPublic,
    AuditEntryPublic,
    AuditPagePublic,
    DisputeCreate,
    DisputePagePublic,
    DisputePublic,
    DisputeResolutionCreate,
    ReviewCreate,
    ReviewOutcomePublic,
    ReviewPublic,
)

router = APIRouter(prefix="/api/v1", tags=["reviews, disputes, audit"])

_Reviewer = Annotated[User, Depends(require(*REVIEWERS))]
_Staff = Annotated[User, Depends(require(*STAFF))]
_Manager = Annotated[User, Depends(require(Role.manager))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the verdict, item or comment cannot be used as given (the message names the valid ones)"},
    403: {"description": "the role or the call's manager does not allow it"},
    404: {"description": "no such call, or no such stage / objection position (the valid ones are named)"},
    409: {"description": "the call is not done (`call_not_done`), or the dispute is already resolved / still open"},
}


@router.post(
    "/calls/{call_id:int}/reviews", response_model=ReviewOutcomePublic, status_code=201, responses=_ERRORS,
    summary="Override a stage, an objection or the score of a call, with a comment",
    description="`kind` stage: `item` is the stage id, `value` passed or missed. `kind` objection: `item` is the "
    "objection's `key` (e.g. `price@3`, stable across re-scores) or its `position` in the call, `value` passed "
    "(handled), missed (not handled) or not_objection (the machine wrongly saw one). `kind` score: `value` 0-100. The machine's verdict is kept beside the reviewer's; the call's "
    "verdicts and score are recomputed at once and the change is written to the audit log.",
)
def create_review(session: SessionDep, call_id: PathId, body: ReviewCreate, actor: _Reviewer) -> ReviewOutcomePublic:
    review, call = service.create_review(session, actor=actor, call_id=call_id, kind=body.kind, item=body.item,
                                         value=body.value, comment=body.comment)
    return ReviewOutcomePublic(review=ReviewPublic.model_validate(review), score=call.score, machine_score=call.machine_score,
                         uncertain=call.uncertain)


@router.get("/calls/{call_id:int}/reviews", response_model=list[ReviewPublic], responses=_ERRORS,
            summary="Every review of a call, oldest first (the latest per item is in force)")
def list_reviews(session: SessionDep, user: UserDep, call_id: PathId) -> list[ReviewPublic]:
    rows = service.list_reviews(session, call_id=call_id, scope=scope_of(session, user))
    return [ReviewPublic.model_validate(r) for r in rows]


@router.get(
    "/reviews/agreement", response_model=AgreementReportPublic,
    summary="How often reviewers agreed with the machine, per stage and objection type",
    description="Over the latest review of each call's stage or objection (optionally those made in a period): "
    "how many were reviewed, how many kept the machine's verdict, the rate, and the machine->human confusion counts, "
    "e.g. `uncertain->passed`: the figures to tune thresholds by.",
)
def agreement(
    session: SessionDep, user: _Staff,
    date_from: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="reviews made at or after")] = None,
    date_to: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="reviews made before")] = None,
) -> AgreementReportPublic:
    return AgreementReportPublic.model_validate(service.agreement(session, scope=scope_of(session, user), date_from=date_from,
                                                           date_to=date_to))


@router.post(
    "/calls/{call_id:int}/disputes", response_model=DisputePublic, status_code=201, responses=_ERRORS,
    summary="A manager disputes a verdict on own call",
    description="`kind` and `item` as for reviews; `proposed_value` is optional. A quality controller resolves it.",
)
def open_dispute(session: SessionDep, call_id: PathId, body: DisputeCreate, actor: _Manager) -> DisputePublic:
    dispute = service.open_dispute(session, actor=actor, call_id=call_id,
                                   kind=body.kind, item=body.item, reason=body.reason, proposed_value=body.proposed_value)
    return DisputePublic.model_validate(dispute)


@router.get("/disputes", response_model=DisputePagePublic,
            summary="Disputes, newest first (a manager sees those on own calls, a head of sales those of own teams)")
def list_disputes(
    session: SessionDep, user: UserDep,
    status: DisputeStatus | None = None,
    call_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DisputePagePublic:
    rows, total = service.list_disputes(session, scope=scope_of(session, user), status=status, call_id=call_id,
                                        limit=limit, offset=offset)
    return DisputePagePublic(items=[DisputePublic.model_validate(d) for d in rows], total=total, limit=limit, offset=offset)


@router.get("/disputes/{dispute_id:int}", response_model=DisputePublic, responses=_ERRORS, summary="One dispute")
def get_dispute(session: SessionDep, user: UserDep, dispute_id: PathId) -> DisputePublic:
    return DisputePublic.model_validate(
        service.get_dispute(session, dispute_id=dispute_id, scope=scope_of(session, user))
    )


@router.post(
    "/disputes/{dispute_id:int}/resolve", response_model=DisputePublic, responses=_ERRORS,
    summary="Accept a dispute (the verdict changes) or reject it (with a comment)",
    description="Accepting creates a review with `value`, else the proposed verdict, else the opposite of the "
    "disputed one (passed <-> missed); the call is recomputed. Rejecting needs a `comment`.",
)
def resolve_dispute(session: SessionDep, dispute_id: PathId, body: DisputeResolutionCreate, actor: _Reviewer) -> DisputePublic:
    dispute = service.resolve_dispute(session, actor=actor, dispute_id=dispute_id, decision=body.decision,
                                      comment=body.comment, value=body.value)
    return DisputePublic.model_validate(dispute)


@router.get("/audit", response_model=AuditPagePublic, summary="The audit log: who changed what, before and after; newest first")
def list_audit(
    session: SessionDep, user: _Staff,
    entity: Annotated[str | None, Query(max_length=50, description="call, dispute, script, user, team, manager")] = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="who made the change")] = None,
    action: Annotated[str | None, Query(max_length=100, description="e.g. review.stage")] = None,
    date_from: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="at or after")] = None,
    date_to: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPagePublic:
    rows, total = service.list_audit(session, scope=scope_of(session, user), entity=entity, entity_id=entity_id, user_id=user_id, action=action,
                                     date_from=date_from, date_to=date_to, limit=limit, offset=offset)
    return AuditPagePublic(items=[AuditEntryPublic.model_validate(e) for e in rows], total=total, limit=limit, offset=offset)
