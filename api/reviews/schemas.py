"""API schemas of reviews, disputes, the audit log and agreement; the tables are in api.models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models import DisputeStatus

ReviewKind = Literal["stage", "objection", "score"]

_ITEM = ("the stage id (kind stage); the objection's `key` (e.g. `price@3`) or its `position` in the call's "
         "objections (kind objection; stored as the key, which a re-score does not move); omitted for the score")
_VALUE = ("stage: passed or missed; objection: passed (handled), missed (not handled) or not_objection (the client "
          "raised none); score: a number 0-100")


class UserRefPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ReviewKind
    item: str | int | None = Field(None, description=_ITEM)
    value: str | float = Field(description=_VALUE)
    comment: str = Field("", max_length=5000, description="why: the manager reads it as feedback")


class ReviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    call_id: int
    kind: ReviewKind
    item: str = Field(description="the stage id, the objection's key (e.g. price@3), or 'score'")
    objection_type: str | None = Field(description="the objection's type when it was reviewed (kind objection)")
    machine_value: str | None = Field(description="the machine's verdict (or score) when it was reviewed")
    human_value: str = Field(description="the reviewer's verdict (or score); it wins over the machine's")
    comment: str
    user: UserRefPublic | None
    created_at: datetime


class ReviewOutcomePublic(BaseModel):
    """The review and the call's figures recomputed with it."""

    review: ReviewPublic
    score: float | None = Field(description="the call's effective score now")
    machine_score: float | None
    uncertain: int = Field(description="verdicts of the call still left uncertain")


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ReviewKind
    item: str | int | None = Field(None, description=_ITEM)
    reason: str = Field(min_length=1, max_length=5000, description="why the verdict is wrong, e.g. where in the call")
    proposed_value: str | float | None = Field(None, description="the verdict the manager proposes; " + _VALUE)


class DisputeResolutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accept", "reject"]
    comment: str = Field("", max_length=5000, description="required when rejecting: the manager reads it")
    value: str | float | None = Field(
        None, description="accepting: the verdict to set; default the proposed one, else the opposite of the disputed one"
    )


class DisputePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    call_id: int
    kind: ReviewKind
    item: str
    disputed_value: str | None = Field(description="the verdict in force when the dispute was opened")
    proposed_value: str | None
    reason: str
    status: DisputeStatus
    opener: UserRefPublic | None = Field(description="who opened it")
    resolver: UserRefPublic | None = Field(description="who resolved it")
    resolution: str = Field(description="the reviewer's comment")
    review_id: int | None = Field(description="the review an accepted dispute created")
    created_at: datetime
    resolved_at: datetime | None


class DisputePagePublic(BaseModel):
    items: list[DisputePublic]
    total: int
    limit: int
    offset: int


class AuditEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    user: UserRefPublic | None = Field(description="null for the system (first start, a PBX webhook)")
    action: str = Field(description="e.g. review.stage, dispute.accept, script.activate, call.retry")
    entity: str = Field(description="call, dispute, script, user, team, manager")
    entity_id: str
    before: Any
    after: Any


class AuditPagePublic(BaseModel):
    items: list[AuditEntryPublic]
    total: int
    limit: int
    offset: int


class ItemAgreementPublic(BaseModel):
    id: str = Field(description="the stage id or the objection type")
    reviews: int = Field(description="reviewed items (the latest review of each call's item)")
    agreed: int = Field(description="of them, where the reviewer's verdict equals the machine's")
    agreement: float = Field(description="agreed / reviews, 0..1")
    confusion: dict[str, int] = Field(description="'machine->human' verdict pairs and their counts, e.g. 'uncertain->passed'")


class AgreementReportPublic(BaseModel):
    date_from: datetime | None
    date_to: datetime | None
    reviews: int
    agreed: int
    agreement: float | None = Field(description="over every stage and objection reviewed; null when none")
    stages: list[ItemAgreementPublic]
    objections: list[ItemAgreementPublic]
