"""The tables. API schemas live beside each domain's routes (``*/schemas.py``), never here; the CRM's
tables live with their domain (:mod:`api.crm.models`), and :mod:`api.tables` gathers them all.

A call's lifecycle (``Call.status``)::

    queued ──claim──> transcribing ──> scoring ──> done
       ^                  │               │
       └──retry/backoff───┴───────────────┴──> failed (reason a person can act on; can be retried)

The database is the source of truth for the queue: a worker claims a call by writing a lease
(owner, token, expiry) and every later write is fenced by the token, so a worker that lost its
lease (killed, paused, partitioned) can never write a result.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.core.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    admin = "admin"
    head_of_sales = "head_of_sales"
    quality_controller = "quality_controller"
    manager = "manager"


class CallStatus(enum.StrEnum):
    queued = "queued"
    transcribing = "transcribing"
    scoring = "scoring"
    done = "done"
    failed = "failed"


class Direction(enum.StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class DisputeStatus(enum.StrEnum):
    open = "open"
    accepted = "accepted"
    rejected = "rejected"


def _enum(e: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum): adding a value needs no type migration.
    return Enum(e, name=name, native_enum=False, length=32, validate_strings=True)


class Department(Base):
    """A sales department (отдел продаж): teams belong to one (``Team.department_id``)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    head_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True, name="fk_teams_head_user_id_users")
    )
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    managers: Mapped[list[Manager]] = relationship(back_populates="team")


class Manager(Base):
    """A salesperson whose calls are scored; may or may not have a login (``user_id``)."""

    __tablename__ = "managers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, doc="PBX extension or CRM user id")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team | None] = relationship(back_populates="managers")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """Bearer tokens; only their sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SignInFailures(Base):
    """Failed sign-ins of one username or one address, for throttling (:mod:`api.auth.throttle`)."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True, doc="user:<username casefolded> or addr:<IP address>")
    failures: Mapped[int] = mapped_column(Integer, default=0, doc="since the first of them")
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, doc="the first failure still counted")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="no sign-in with this key before this moment")


class Recording(Base):
    """A stored audio file, addressed by the sha256 of its bytes."""

    __tablename__ = "recordings"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(300), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_queue", "status", "next_attempt_at"),
        Index("ix_calls_manager_started", "manager_id", "started_at"),
        # the call list's keyset pages by start time and by score (migration 0010)
        Index("ix_calls_started", "started_at", "id",
              postgresql_include=["manager_id", "score", "status", "uncertain"]),  # 0012: no table pages read
        Index("ix_calls_score", "score", "id", postgresql_include=["manager_id", "started_at", "status", "uncertain"]),
        # the call list's filters and sorts from an index (migration 0003), with the call id on
        # PostgreSQL (0005; SQLite keeps the row id in every index)
        Index("ix_calls_list", "manager_id", "started_at", "status", "score", "uncertain", postgresql_include=["id"]),
        Index("ix_calls_status_list", "status", "manager_id", "started_at", "score", postgresql_include=["id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # metadata
    recording_sha256: Mapped[str | None] = mapped_column(ForeignKey("recordings.sha256"), unique=True)
    recording_url: Mapped[str | None] = mapped_column(Text, doc="where a PBX webhook said the recording is")
    source: Mapped[str] = mapped_column(String(20), default="upload", doc="upload, import, webhook")
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))
    client_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    direction: Mapped[Direction | None] = mapped_column(_enum(Direction, "direction"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration: Mapped[float | None] = mapped_column(Float)
    crm_lead_id: Mapped[str | None] = mapped_column(String(100), index=True)
    crm_deal_id: Mapped[str | None] = mapped_column(String(100), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, doc="the PBX's call id")
    language: Mapped[str | None] = mapped_column(String(8))
    manager_channel: Mapped[str | None] = mapped_column(String(5), doc="left/right override for this call")
    # processing
    status: Mapped[CallStatus] = mapped_column(_enum(CallStatus, "call_status"), default=CallStatus.queued)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="last sent to the Celery broker")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # results (the transcript and report, tens of KB, are in CallContent: the calls table stays narrow
    # for the lists, filters and KPIs that read it)
    script_id: Mapped[str | None] = mapped_column(String(100))
    script_version: Mapped[str | None] = mapped_column(String(50))
    machine_score: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float, doc="the reviewer's score when overridden, else the machine's")
    uncertain: Mapped[int] = mapped_column(Integer, default=0, doc="stages and objections left uncertain")
    talk_time: Mapped[float | None] = mapped_column(Float, doc="speech of both sides, s (the report's metrics)")
    manager_fillers: Mapped[float | None] = mapped_column(Float, doc="the manager's filler words (the report's metrics)")

    manager: Mapped[Manager | None] = relationship()
    recording: Mapped[Recording | None] = relationship()
    stages: Mapped[list[CallStage]] = relationship(cascade="all, delete-orphan", order_by="CallStage.position")
    objections: Mapped[list[CallObjection]] = relationship(cascade="all, delete-orphan", order_by="CallObjection.position")
    content: Mapped[CallContent | None] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    transcript: AssociationProxy[dict[str, Any] | None] = association_proxy(
        "content", "transcript", creator=lambda value: CallContent(transcript=value))
    """The stored transcript (:meth:`analyzer.results.Transcript.to_dict` with word timings), or None."""
    report: AssociationProxy[dict[str, Any] | None] = association_proxy(
        "content", "report", creator=lambda value: CallContent(report=value))
    """The report of the last scoring (:meth:`analyzer.results.CallReport.to_dict`), or None."""


class CallContent(Base):
    """A call's transcript and report: large, read for one call at a time (its page, re-scoring)."""

    __tablename__ = "call_contents"

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    transcript: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CallStage(Base):
    """One stage verdict of a call, for filtering and agreement; the evidence is in ``Call.report``."""

    __tablename__ = "call_stages"
    __table_args__ = (Index("ix_call_stages_stage_status", "stage_id", "status", "call_id"),)

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    machine_status: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), doc="the reviewer's when overridden, else the machine's")
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)


class CallObjection(Base):
    __tablename__ = "call_objections"
    __table_args__ = (
        Index("ix_call_objections_type_handled", "type", "handled", "call_id"),
        Index("ix_call_objections_type_status", "type", "status", "call_id"),
    )

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, doc="index in the report's objections")
    type: Mapped[str] = mapped_column(String(100))
    machine_status: Mapped[str] = mapped_column(String(16))
    machine_handled: Mapped[bool] = mapped_column(Boolean)
    handled: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)


class CallRun(Base):
    """One attempt of a worker at a call: the processing history, and proof of exactly-once."""

    __tablename__ = "call_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    lease_token: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20), doc="done, failed, retry, lost; null while running")
    error: Mapped[str | None] = mapped_column(Text)


class ScriptVersion(Base):
    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("script_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    script_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(50))
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, doc="the YAML as written")
    examples: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON, doc="what reviewers decided, learned into this version (api/learning/service.py); not in the YAML, "
        "which everyone may read: each example names the call it came from")
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Review(Base):
    """A quality controller's verdict on one item of a call, beside the machine's.

    Reviews are never edited: a later review of the same (call, kind, item) supersedes the earlier,
    and the whole history stays for agreement figures and the audit trail.
    """

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_call_item", "call_id", "kind", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), doc="stage, objection or score")
    item: Mapped[str] = mapped_column(String(100), doc="stage id, objection key (type@utterance, e.g. price@3), or 'score'")
    objection_type: Mapped[str | None] = mapped_column(String(100), doc="the objection's type when it was reviewed")
    machine_value: Mapped[str | None] = mapped_column(String(50))
    human_value: Mapped[str] = mapped_column(String(50))
    comment: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User | None] = relationship()


class Dispute(Base):
    """A manager disagreeing with a verdict on own call; a quality controller resolves it."""

    __tablename__ = "disputes"
    __table_args__ = (Index("ix_disputes_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    item: Mapped[str] = mapped_column(String(100))
    disputed_value: Mapped[str | None] = mapped_column(String(50), doc="the verdict in force when the dispute was opened")
    proposed_value: Mapped[str | None] = mapped_column(String(50), doc="the verdict the manager proposes, if any")
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(_enum(DisputeStatus, "dispute_status"), default=DisputeStatus.open)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution: Mapped[str] = mapped_column(Text, default="")
    review_id: Mapped[int | None] = mapped_column(
        ForeignKey("reviews.id", ondelete="SET NULL"), doc="the review an accepted dispute created"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    opener: Mapped[User | None] = relationship(foreign_keys=[opened_by])
    resolver: Mapped[User | None] = relationship(foreign_keys=[resolved_by])


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_entity", "entity", "entity_id"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_user_at", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)

    user: Mapped[User | None] = relationship()

