from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, field_validator

from api.core.ids import Id
from api.core.moments import Moment
from api.models import CallStatus, Direction

_PHONE_KEEP = re.compile(r"[^\d+]")


def normalise_phone(value: str | None) -> str | None:
    """'+7 (912) 345-67-89', '8 912 345 67 89' -> '+79123456789' (Russian 8-prefix read as +7)."""
    if value is None or not value.strip():
        return None
    digits = _PHONE_KEEP.sub("", value.strip())
    plus = digits.startswith("+")
    digits = digits.replace("+", "")
    if not digits or len(digits) > 20:
        raise ValueError(f"{value!r} is not a phone number")
    if not plus and len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    return "+" + digits if (plus or len(digits) >= 11) else digits


class CallMetadataCreate(BaseModel):
    """What the PBX or the uploader knows about a call. Every field is optional."""

    model_config = ConfigDict(extra="forbid")

    manager_id: Id | None = Field(None, description="a manager of this service")
    manager_external_id: str | None = Field(
        None, max_length=200, description="the PBX extension or CRM user id; a manager is created on first sight"
    )
    client_phone: str | None = Field(None, max_length=40)
    direction: Direction | None = None
    started_at: Moment | None = None
    duration: float | None = Field(None, ge=0, le=24 * 3600)
    crm_lead_id: str | None = Field(None, max_length=100)
    crm_deal_id: str | None = Field(None, max_length=100)
    external_id: str | None = Field(None, max_length=200, description="the PBX's id of the call; a repeated id is the same call")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$")
    manager_channel: Literal["left", "right"] | None = None

    @field_validator("client_phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return normalise_phone(v)


class WebhookCallCreate(CallMetadataCreate):
    recording_url: HttpUrl = Field(description="where to download the recording (http or https)")


class ErrorInfoPublic(BaseModel):
    code: str
    message: str


class ManagerRefPublic(BaseModel):
    id: int
    name: str


class ScriptRefPublic(BaseModel):
    id: str
    version: str


class CallSummaryPublic(BaseModel):
    id: int
    status: CallStatus
    error: ErrorInfoPublic | None
    manager: ManagerRefPublic | None
    client_phone: str | None
    direction: Direction | None
    started_at: datetime | None
    duration: float | None
    language: str | None
    external_id: str | None
    crm_lead_id: str | None
    crm_deal_id: str | None
    source: str
    score: float | None
    machine_score: float | None
    uncertain: int
    script: ScriptRefPublic | None
    attempts: int
    created_at: datetime
    processed_at: datetime | None


class CallPagePublic(BaseModel):
    items: list[CallSummaryPublic]
    total: int = Field(description="how many calls match, counted up to 10 000 (see total_exact)")
    total_exact: bool = Field(description="false when more calls match than total says (shown as \"10 000+\")")
    limit: int
    next_cursor: str | None = Field(description="the next page: pass it as cursor; null on the last page")
    prev_cursor: str | None = Field(description="the previous page: pass it as cursor; null on the first page")


class StageVerdictPublic(BaseModel):
    id: str
    title: str
    status: str
    machine_status: str
    reviewed: bool
    required: bool
    weight: float
    evidence: dict[str, Any] | None
    note: str | None = None
    violations: list[dict[str, Any]] = []


class ObjectionVerdictPublic(BaseModel):
    position: int = Field(description="its index in this report (moves when a re-score finds objections differently)")
    key: str = Field(description="its stable name, type@utterance (e.g. price@3): reviews and disputes of it use this")
    type: str
    title: str
    status: str
    machine_status: str
    handled: bool | None
    reviewed: bool
    client: dict[str, Any]
    response: dict[str, Any] | None
    recommended: list[str]
    note: str | None = None
    added: bool = Field(False, description="added by a reviewer where the machine found none (machine_status not_found)")


class CallDetailPublic(CallSummaryPublic):
    stages: list[StageVerdictPublic]
    objections: list[ObjectionVerdictPublic]
    fillers: list[dict[str, Any]]
    metrics: dict[str, Any] | None
    score_breakdown: list[dict[str, Any]]
    transcript: list[dict[str, Any]]
    roles_inferred: bool
    warnings: list[str]
    recording_url: str | None = Field(None, description="this API's address of the audio, with Range support")


class UploadItemPublic(BaseModel):
    filename: str
    outcome: Literal["created", "duplicate", "rejected"]
    call_id: int | None = None
    error: ErrorInfoPublic | None = None


class UploadResultPublic(BaseModel):
    items: list[UploadItemPublic]
    created: int
    duplicates: int
    rejected: int

    @classmethod
    def of(cls, items: list[UploadItemPublic]) -> UploadResultPublic:
        return cls(items=items, created=sum(i.outcome == "created" for i in items),
                   duplicates=sum(i.outcome == "duplicate" for i in items), rejected=sum(i.outcome == "rejected" for i in items))


class RescoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    script_id: str | None = Field(None, description="score the calls in this script's language against its active "
                                  "version; default: each call against its own script id's active version")
    call_ids: list[Id] | None = Field(None, max_length=100_000)
    dry_run: StrictBool = Field(False, description="show what would change without saving")
    version: str | None = Field(None, min_length=1, max_length=50, description="with script_id and dry_run: what this "
                                "version (not active yet, e.g. one learned from reviews) would change")


class RescoreChangePublic(BaseModel):
    call_id: int
    score_before: float | None
    score_after: float | None
    stages_changed: dict[str, list[str]] = Field(description="stage id -> [before, after]")
    objections_before: list[str]
    objections_after: list[str]


class RescoreResultPublic(BaseModel):
    rescored: int
    changed: int
    dry_run: bool
    script: ScriptRefPublic | None
    stage_flips: dict[str, dict[str, int]] = Field(description="stage id -> 'missed->passed': number of calls")
    changes: list[RescoreChangePublic] = Field(description="the calls that changed (first 500)")
