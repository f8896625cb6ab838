"""Calls: ingestion (upload, folder import, PBX webhook), listing with filters, detail, retry, re-scoring."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic_core import to_json
from sqlalchemy import CompoundSelect, Select, bindparam, func, literal_column, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, joinedload, object_session

from analyzer.audio import probe_audio
from analyzer.errors import AnalyzerError
from analyzer.results import Transcript
from analyzer.scoring import score_transcript
from api.auth.scope import Scope, scope_of
from api.auth.service import manager_by_external_id
from api.calls.list_index import list_index
from api.calls.results import added_objections, latest_reviews, objection_keys, result_values
from api.calls.schemas import CallMetadata, RescoreChange, RescoreResult, ScriptRef
from api.core.audit import audit
from api.core.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError, UnprocessableRecording
from api.core.storage import RecordingStore, Stored
from api.models import Call, CallObjection, CallStage, CallStatus, Manager, Recording, ScriptVersion, User, utcnow
from api.scripts.service import active_version, get_version, script_of

AUDIO_EXTENSIONS = {".wav", ".mp3", ".ogg", ".opus", ".oga", ".flac", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".amr", ".gsm"}


@dataclass(frozen=True)
class Ingested:
    call: Call
    created: bool


def display_name(name: str | None) -> str:
    """Only the last part of a client-given file name is kept, for display; it never becomes a path."""
    base = (name or "recording").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base if base not in ("", ".", "..") else "recording"


def _apply_metadata(session: Session, call: Call, meta: CallMetadata, scope: Scope) -> None:
    """The call's metadata; its manager must be one the uploader sees. Uploaders who see every team
    (admins, quality controllers, the PBX) may name a new extension, which makes its manager; a head of
    sales names a manager of their teams, so a call never lands outside them or in another team."""
    data = meta.model_dump(exclude_unset=True, exclude_none=True)
    manager_ext = data.pop("manager_external_id", None)
    manager_id = data.pop("manager_id", None)
    if manager_id is not None:
        if session.get(Manager, manager_id) is None or not scope.sees_manager(manager_id):
            raise BadRequest(f"no manager {manager_id}", code="manager_not_found")
        call.manager_id = manager_id
    elif manager_ext:
        manager = manager_by_external_id(session, manager_ext, create=scope.everything)
        if manager is None or not scope.sees_manager(manager.id):
            raise BadRequest(f"no manager with the external id {manager_ext!r} in your teams; add the manager first "
                             "(POST /api/v1/managers)", code="manager_not_found")
        call.manager_id = manager.id
    elif not scope.everything:
        raise BadRequest("name the call's manager (manager_id or manager_external_id): a call without one would be "
                         "outside your teams", code="manager_required")
    for key, value in data.items():
        setattr(call, key, value)


def ingest_stream(
    session: Session, store: RecordingStore, *, stream: BinaryIO, filename: str | None, content_type: str | None,
    meta: CallMetadata, source: str = "upload", actor: User | None = None,
) -> Ingested:
    """Store a recording and queue its call. The same bytes again are the same call (its metadata is
    not overwritten); a file that is not usable audio is rejected before anything is stored."""
    name = display_name(filename)
    with store.receive_stream(stream, name=name) as stored:  # the address is held until the call is committed or refused
        try:
            info = probe_audio(stored.path)
        except AnalyzerError as e:
            _drop_if_orphan(session, store, stored)
            raise UnprocessableRecording(str(e).replace(stored.sha256, name), code=e.code) from None
        try:
            return _ingest_stored(session, stored=stored, duration=info.duration, filename=filename,
                                  content_type=content_type, meta=meta, source=source, actor=actor)
        except ServiceError:
            _drop_if_orphan(session, store, stored)
            raise


def _drop_if_orphan(session: Session, store: RecordingStore, stored: Stored) -> None:
    """Remove a just-stored file that no recording row or call refers to (the upload was refused);
    inside the store's hold on the address, so no concurrent upload of the same bytes is between
    storing them and committing its call."""
    session.rollback()
    if session.get(Recording, stored.sha256) is None and \
            session.scalar(select(Call.id).where(Call.recording_sha256 == stored.sha256).limit(1)) is None:
        store.discard(stored)


def _ingest_stored(
    session: Session, *, stored: Stored, duration: float | None, filename: str | None, content_type: str | None,
    meta: CallMetadata, source: str, actor: User | None,
) -> Ingested:
    scope = scope_of(session, actor)
    existing = session.scalar(select(Call).where(Call.recording_sha256 == stored.sha256))
    if existing is not None:
        return _duplicate(existing, scope)
    if meta.external_id:
        same = session.scalar(select(Call).where(Call.external_id == meta.external_id))
        if same is not None:
            raise _external_id_taken(meta.external_id, same, scope)
    if session.get(Recording, stored.sha256) is None:
        session.add(Recording(sha256=stored.sha256, size=stored.size, original_name=display_name(filename),
                              content_type=(content_type or "application/octet-stream")[:100]))
    call = Call(recording_sha256=stored.sha256, source=source, duration=duration)
    _apply_metadata(session, call, meta, scope)
    session.add(call)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()  # the same recording, or the same PBX call id, arrived at the same moment from elsewhere
        existing = session.scalar(select(Call).where(Call.recording_sha256 == stored.sha256))
        if existing is not None:
            return _duplicate(existing, scope)
        same = session.scalar(select(Call).where(Call.external_id == meta.external_id)) if meta.external_id else None
        if same is not None and meta.external_id:
            raise _external_id_taken(meta.external_id, same, scope) from None
        raise
    audit(session, user=actor, action="call.ingest", entity="call", entity_id=call.id,
          after={"source": source, "recording": stored.sha256, "file": display_name(filename)})
    session.commit()
    return Ingested(call, True)


def _duplicate(existing: Call, scope: Scope) -> Ingested:
    """The same bytes again are the same call; one outside the uploader's scope is not named."""
    if not scope.sees_manager(existing.manager_id):
        raise Conflict("this recording is already stored, as a call outside your teams", code="duplicate_recording")
    return Ingested(existing, False)


def _external_id_taken(external_id: str, same: Call, scope: Scope) -> Conflict:
    if not scope.sees_manager(same.manager_id):
        return Conflict(f"the PBX call {external_id!r} is already stored with a different recording",
                        code="external_id_taken")
    return Conflict(f"the PBX call {external_id!r} is already call {same.id} with a different recording",
                    code="external_id_taken", details={"call_id": same.id})


def ingest_webhook(session: Session, *, url: str, meta: CallMetadata, actor: User | None) -> Ingested:
    """Queue a call whose recording the worker will download; a repeated PBX call id is the same call."""
    if meta.external_id:
        same = session.scalar(select(Call).where(Call.external_id == meta.external_id))
        if same is not None:
            return Ingested(same, False)
    call = Call(recording_url=url, source="webhook")
    _apply_metadata(session, call, meta, scope_of(session, actor))
    session.add(call)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        same = session.scalar(select(Call).where(Call.external_id == meta.external_id))
        if same is None:
            raise
        return Ingested(same, False)
    audit(session, user=actor, action="call.webhook", entity="call", entity_id=call.id, after={"url": url})
    session.commit()
    return Ingested(call, True)


def import_folder(
    session: Session, store: RecordingStore, *, folder: Path, meta: CallMetadata, actor: User | None = None
) -> list[tuple[Path, Ingested | ServiceError]]:
    """Every audio file under a folder; a bad file is reported and the rest go on."""
    results: list[tuple[Path, Ingested | ServiceError]] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS or path.is_symlink():
            continue
        try:
            with path.open("rb") as f:
                results.append((path, ingest_stream(session, store, stream=f, filename=path.name, content_type=None,
                                                    meta=meta, source="import", actor=actor)))
        except ServiceError as e:
            session.rollback()
            results.append((path, e))
    return results


# -- reading -----------------------------------------------------------------------------------


@dataclass
class CallFilters:
    manager_id: int | None = None
    team_id: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    status: CallStatus | None = None
    score_min: float | None = None
    score_max: float | None = None
    stage_missed: str | None = None
    objection_unhandled: str | None = None
    uncertain: bool | None = None
    external_id: str | None = None


def _filtered(query: Select[Any], f: CallFilters, scope: Scope) -> Select[Any]:
    query = scope.calls(query)
    if f.manager_id is not None:
        query = query.where(Call.manager_id == f.manager_id)
    if f.team_id is not None:
        query = query.where(Call.manager_id.in_(select(Manager.id).where(Manager.team_id == f.team_id)))
    if f.date_from is not None:
        query = query.where(Call.started_at >= f.date_from)
    if f.date_to is not None:
        query = query.where(Call.started_at < f.date_to)
    if f.status is not None:
        query = query.where(Call.status == f.status)
    if f.score_min is not None:
        query = query.where(Call.score >= f.score_min)
    if f.score_max is not None:
        query = query.where(Call.score <= f.score_max)
    # A set of call ids from the verdict index (stage or type, status, call), checked while the calls
    # index is scanned: not a correlated EXISTS, which probes the verdict rows of every call. ``+ 0``
    # keeps SQLite from fetching each id's row from the table instead (its rows hold the transcript
    # and report inline): several times slower when the stage is missed in many calls.
    if f.stage_missed:
        query = query.where(
            (Call.id + 0).in_(select(CallStage.call_id).where(CallStage.stage_id == f.stage_missed, CallStage.status == "missed"))
        )
    if f.objection_unhandled:
        query = query.where(
            (Call.id + 0).in_(
                select(CallObjection.call_id).where(CallObjection.type == f.objection_unhandled, CallObjection.status == "missed")
            )
        )
    if f.uncertain is True:
        query = query.where(Call.uncertain > 0)
    elif f.uncertain is False:
        query = query.where(Call.uncertain == 0)
    if f.external_id is not None:
        query = query.where(Call.external_id == f.external_id)
    return query


_SORTS: dict[str, tuple[Any, ...]] = {
    "-started_at": (Call.started_at.desc(), Call.id.desc()),
    "started_at": (Call.started_at.asc(), Call.id.asc()),
    "-score": (Call.score.desc(), Call.id.desc()),
    "score": (Call.score.asc(), Call.id.asc()),
    "-created_at": (Call.id.desc(),),
    "created_at": (Call.id.asc(),),
}


def _total_and_page_ids(
    session: Session, filters: CallFilters, scope: Scope, limit: int, offset: int, order: str
) -> tuple[int, Select[Any] | list[int], tuple[Any, ...]]:
    """How many calls match, and the page's ids in order (a query from the indexes alone, or the ids):
    from the process's :class:`~api.calls.list_index.CallListIndex` when the app keeps one."""
    sort = _SORTS[order]
    index = list_index(session)
    found = index.page(session, filters, scope.manager_ids, limit=limit, offset=offset, order=order) \
        if index is not None else None
    if found is not None:
        return found[0], found[1], sort
    base = _filtered(select(Call.id), filters, scope)
    if filters.stage_missed and session.get_bind().dialect.name == "sqlite":
        # SQLite scans every matching call for the count and again for the page (it sorts them all),
        # building the set of calls with the missed stage each time: a count over the page query's
        # rows (the same rows, before LIMIT) does it once, a third less time. Not on PostgreSQL,
        # where the window makes the page query read every row instead of stopping early.
        rows = session.execute(base.add_columns(func.count().over()).order_by(*sort).limit(limit).offset(offset)).all()
        if rows:
            return rows[0][1], [r[0] for r in rows], sort
        # past the end of the list (or no call at all): the count alone says which
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    return total, base.order_by(*sort).limit(limit).offset(offset), sort


def list_calls(
    session: Session, *, filters: CallFilters, scope: Scope, limit: int, offset: int, order: str
) -> tuple[list[Call], int]:
    total, ids, sort = _total_and_page_ids(session, filters, scope, limit, offset, order)
    # The page's ids first, from the indexes alone; then only those rows, without the transcript and
    # report (tens of KB of JSON a call, which SQLite keeps inline before the score columns).
    page = select(Call).options(joinedload(Call.manager), defer(Call.transcript), defer(Call.report))
    rows = session.scalars(page.where(Call.id.in_(ids)).order_by(*sort)).all()
    return list(rows), total


# what summary() reads of a call, as plain columns (the manager's through an outer join)
_SUMMARY_COLUMNS = (
    Call.id, Call.status, Call.error_code, Call.error_message, Manager.id.label("manager_ref"), Manager.name.label("manager_name"),
    Call.client_phone, Call.direction, Call.started_at, Call.duration, Call.language, Call.external_id, Call.crm_lead_id,
    Call.crm_deal_id, Call.source, Call.score, Call.machine_score, Call.uncertain, Call.script_id, Call.script_version,
    Call.attempts, Call.created_at, Call.processed_at,
)


# made once, with one parameter for a page's ids
_SUMMARY_ROWS = (select(*_SUMMARY_COLUMNS).outerjoin(Manager, Manager.id == Call.manager_id)
                 .with_hint(Call, "INDEXED BY ix_calls_summary", "sqlite"))  # migration 0007
_PAGE_ROWS = {order: _SUMMARY_ROWS.where(Call.id.in_(bindparam("page_ids", expanding=True))).order_by(*sort)
              for order, sort in _SORTS.items()}


def list_call_page(
    session: Session, *, filters: CallFilters, scope: Scope, limit: int, offset: int, order: str
) -> bytes:
    """A page of :func:`list_calls` as the API sends it: ``{"items": [summary, ...], "total", "limit",
    "offset"}`` in JSON, the bytes FastAPI's serialisation of ``CallPage`` gives. The rows are read
    as plain columns (no ORM object a row); with the process's list index, rows it sent before and
    that have not changed since are sent again as they were, and only the others are read."""
    total, ids, sort = _total_and_page_ids(session, filters, scope, limit, offset, order)
    parts: list[bytes | None] = []
    if offset < total:  # past the end the page is empty: no need to ask
        index = list_index(session)
        if isinstance(ids, list) and index is not None:
            parts = index.kept_rows(session, ids)
            missing = [i for i, part in zip(ids, parts, strict=True) if part is None]
            if missing:
                fresh = {row["id"]: to_json(row) for row in _summary_rows(session, _PAGE_ROWS[order], {"page_ids": missing})}
                index.keep_rows(list(fresh.items()))
                parts = [part if part is not None else fresh.get(i) for i, part in zip(ids, parts, strict=True)]
        else:
            query, params = (_PAGE_ROWS[order], {"page_ids": ids}) if isinstance(ids, list) \
                else (_SUMMARY_ROWS.where(Call.id.in_(ids)).order_by(*sort), {})
            parts = [to_json(row) for row in _summary_rows(session, query, params)]
    items = b",".join(p for p in parts if p is not None)  # a call gone between the two reads is left out
    return b'{"items":[' + items + b'],"total":' + str(total).encode() + b',"limit":' + str(limit).encode() + \
        b',"offset":' + str(offset).encode() + b"}"


def _summary_rows(session: Session, query: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    # Core, not ORM, execution: the ORM's row handling was a fifth of a list request
    return [_summary_of_row(*r) for r in session.connection().execute(query, params)]  # type: ignore[call-arg]


def _summary_of_row(
    id: int, status: CallStatus, error_code: str | None, error_message: str | None, manager_ref: int | None,  # noqa: A002
    manager_name: str | None, client_phone: str | None, direction: Any, started_at: datetime | None, duration: float | None,
    language: str | None, external_id: str | None, crm_lead_id: str | None, crm_deal_id: str | None, source: str,
    score: float | None, machine_score: float | None, uncertain: int, script_id: str | None, script_version: str | None,
    attempts: int, created_at: datetime, processed_at: datetime | None,
) -> dict[str, Any]:
    """A call's summary (the list's row) from its columns in the order of ``_SUMMARY_COLUMNS``."""
    return {
        "id": id,
        "status": status,
        "error": {"code": error_code, "message": error_message or ""}
        if error_code and status in (CallStatus.failed, CallStatus.queued) else None,
        "manager": {"id": manager_ref, "name": manager_name} if manager_ref is not None else None,
        "client_phone": client_phone,
        "direction": direction,
        "started_at": started_at,
        "duration": duration,
        "language": language,
        "external_id": external_id,
        "crm_lead_id": crm_lead_id,
        "crm_deal_id": crm_deal_id,
        "source": source,
        "score": score,
        "machine_score": machine_score,
        "uncertain": uncertain,
        "script": {"id": script_id, "version": script_version} if script_id else None,
        "attempts": attempts,
        "created_at": created_at,
        "processed_at": processed_at,
    }


def get_call(session: Session, call_id: int, *, scope: Scope) -> Call:
    """A call the scope may read; NotFound for a missing one and for one outside the scope alike."""
    # the stored transcript (word timings: the largest column) is read only if something asks for it
    call = session.get(Call, call_id, options=[joinedload(Call.manager), defer(Call.transcript)])
    if call is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    scope.call(call_id, call.manager_id)
    return call


def summary(call: Call) -> dict[str, Any]:
    manager = call.manager
    return _summary_of_row(
        call.id, call.status, call.error_code, call.error_message, manager.id if manager else None,
        manager.name if manager else None, call.client_phone, call.direction, call.started_at, call.duration, call.language,
        call.external_id, call.crm_lead_id, call.crm_deal_id, call.source, call.score, call.machine_score, call.uncertain,
        call.script_id, call.script_version, call.attempts, call.created_at, call.processed_at,
    )


def detail(call: Call) -> dict[str, Any]:
    session = object_session(call)
    return _detail(summary(call), call.report, lambda: call.transcript, call.recording_sha256,
                   {s.stage_id: (s.status, s.reviewed) for s in call.stages},
                   {o.position: (o.status, o.reviewed) for o in call.objections},
                   lambda: _added(session, call.id, call.report or {}, call.script_id, call.script_version))


# made once (building them was a fifth of a call detail's time): the columns of a call's summary,
# its report and recording, and the call's stage and objection verdicts in one query
_DETAIL_ROW = (select(*_SUMMARY_COLUMNS, Call.report, Call.recording_sha256)
               .outerjoin(Manager, Manager.id == Call.manager_id).where(Call.id == bindparam("call_id")))
_TRANSCRIPT = select(Call.transcript).where(Call.id == bindparam("call_id"))
_VERDICTS: CompoundSelect[Any] = union_all(
    select(literal_column("'s'"), CallStage.stage_id, literal_column("0"), CallStage.status, CallStage.reviewed)
    .where(CallStage.call_id == bindparam("call_id")),
    select(literal_column("'o'"), literal_column("''"), CallObjection.position, CallObjection.status, CallObjection.reviewed)
    .where(CallObjection.call_id == bindparam("call_id")),
)


def call_detail(session: Session, call_id: int, *, scope: Scope) -> dict[str, Any]:
    """:func:`detail` of :func:`get_call`, read as plain columns (no ORM object: its loading was
    half of a detail's time) and the stage and objection verdicts in one query."""
    connection = session.connection()
    row = connection.execute(_DETAIL_ROW, {"call_id": call_id}).first()
    if row is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    *columns, report, recording_sha256 = row
    scope.call(call_id, columns[4])  # the manager's id
    stage_rows: dict[str, tuple[str, bool]] = {}
    objection_rows: dict[int, tuple[str, bool]] = {}
    for kind, stage_id, position, status, reviewed in connection.execute(_VERDICTS, {"call_id": call_id}):
        if kind == "s":
            stage_rows[stage_id] = (status, reviewed)
        else:
            objection_rows[position] = (status, reviewed)
    return _detail(_summary_of_row(*columns), report, lambda: connection.execute(_TRANSCRIPT, {"call_id": call_id}).scalar(),
                   recording_sha256, stage_rows, objection_rows,
                   lambda: _added(session, call_id, report or {}, columns[18], columns[19]))  # the script's id and version


def _added(session: Session | None, call_id: int, report: dict[str, Any], script_id: str | None,
           script_version: str | None) -> list[dict[str, Any]]:
    """The objections reviewers added to a call (:func:`api.calls.results.added_objections`)."""
    if session is None:
        return []
    try:
        script = script_of(get_version(session, script_id=script_id, version=script_version)) if script_id and script_version else None
    except NotFound:
        script = None
    return added_objections(report, latest_reviews(session, call_id), script)


def _detail(summary_: dict[str, Any], report: dict[str, Any] | None, transcript_of_call: Callable[[], dict[str, Any] | None],
            recording_sha256: str | None, rows: dict[str, tuple[str, bool]], orows: dict[int, tuple[str, bool]],
            added_of_call: Callable[[], list[dict[str, Any]]] = list) -> dict[str, Any]:
    """The detail of a call from its summary and report, whose stage rows (by stage id) and objection
    rows (by position) are ``(status, reviewed)``; the stored transcript is read only when the report
    has none, the objections reviewers added only when there are rows beyond the report's."""
    report = report or {}
    stages = []
    for s in report.get("stages", []):
        row = rows.get(s["id"])
        stages.append({**s, "machine_status": s["status"], "status": row[0] if row else s["status"],
                       "reviewed": bool(row and row[1])})
    objections = []
    keys = objection_keys(report.get("objections", []))
    for i, o in enumerate(report.get("objections", [])):
        orow = orows.get(i)
        status = orow[0] if orow else o["status"]
        handled = o.get("handled") if not (orow and orow[1]) else (status == "passed" if status != "not_objection" else None)
        objections.append({**o, "position": i, "key": keys[i], "machine_status": o["status"], "status": status, "handled": handled,
                           "reviewed": bool(orow and orow[1])})
    if any(p >= len(objections) for p in orows):
        for k, o in enumerate(added_of_call()):
            objections.append({**o, "position": len(keys) + k, "machine_status": "not_found", "reviewed": True})
    transcript = report.get("transcript")
    if transcript is None:
        stored = transcript_of_call()
        if stored:
            transcript = [{k: v for k, v in u.items() if k != "words"} for u in stored.get("utterances", [])]
    return {
        **summary_,
        "stages": stages,
        "objections": objections,
        "fillers": report.get("fillers", []),
        "metrics": report.get("metrics"),
        "score_breakdown": report.get("score_breakdown", []),
        "transcript": transcript or [],
        "roles_inferred": bool(report.get("roles_inferred")),
        "warnings": report.get("warnings", []),
        "recording_url": f"/api/v1/calls/{summary_['id']}/recording" if recording_sha256 else None,
    }


def retry_call(session: Session, *, call_id: int, actor: User) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    scope_of(session, actor).call(call_id, call.manager_id)
    if call.status != CallStatus.failed:
        raise Conflict(f"call {call_id} is {call.status.value}; only a failed call can be retried", code="not_failed")
    before = {"status": call.status.value, "error": call.error_code}
    session.execute(
        update(Call).where(Call.id == call_id, Call.status == CallStatus.failed)
        .values(status=CallStatus.queued, attempts=0, next_attempt_at=utcnow(), error_code=None, error_message=None,
                enqueued_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    audit(session, user=actor, action="call.retry", entity="call", entity_id=call_id, before=before, after={"status": "queued"})
    session.commit()
    session.refresh(call)
    return call


# -- re-scoring --------------------------------------------------------------------------------


def rescore(
    session: Session, *, actor: User | None, script_id: str | None, call_ids: list[int] | None, dry_run: bool, batch: int = 500,
    version: str | None = None,
) -> RescoreResult:
    """Score stored transcripts again against the active script versions, without transcribing.

    Only the calls ``actor`` may see (None: the system, every call). Reviews are kept (a reviewer's
    verdict still wins). Returns what changed: per call, the score and
    the stages and objections whose verdict moved, and per stage how many calls flipped which way.
    With ``script_id`` only the calls in that script's language are scored with it (an English call
    is never scored against a Russian script); with ``version`` too, that version rather than the
    active one, and only as a dry run (what activating it would change).
    """
    if version is not None and (script_id is None or not dry_run):
        raise BadRequest("a version other than the active one is tried as a dry run of its script: give script_id and "
                         "dry_run", code="version_needs_dry_run")
    # only calls the user may see: another team's call ids are as unknown as missing ones
    query = scope_of(session, actor).calls(
        select(Call.id).where(Call.status == CallStatus.done, Call.transcript.is_not(None)).order_by(Call.id))
    if call_ids is not None:
        query = query.where(Call.id.in_(call_ids))
    versions: dict[str, ScriptVersion] = {}
    chosen_ref: ScriptRef | None = None
    chosen_language: str | None = None
    if script_id is not None:
        v = get_version(session, script_id=script_id, version=version) if version else active_version(session, script_id=script_id)
        chosen_ref = ScriptRef(id=v.script_id, version=v.version)
        chosen_language = v.language
        # the language column is set once a call is scored; the transcript's decides below otherwise
        query = query.where(or_(Call.language == v.language, Call.language.is_(None)))
    ids = list(session.scalars(query))
    changes: list[RescoreChange] = []
    flips: dict[str, dict[str, int]] = {}
    changed = skipped = 0
    for start in range(0, len(ids), batch):
        calls = session.scalars(select(Call).where(Call.id.in_(ids[start : start + batch])).order_by(Call.id)).all()
        for call in calls:
            assert call.transcript is not None
            transcript = Transcript.from_dict(call.transcript, source=f"call {call.id}")
            if chosen_language is not None and transcript.language != chosen_language:
                skipped += 1
                continue
            key = script_id or call.script_id or f"lang:{transcript.language}"
            if key not in versions and script_id is not None:
                versions[key] = v
            if key not in versions:
                versions[key] = (active_version(session, script_id=script_id or call.script_id)
                                 if (script_id or call.script_id) else active_version(session, language=transcript.language))
            used = versions[key]
            script = script_of(used)
            report = score_transcript(transcript, script).to_dict()
            report["source"] = f"call {call.id}"
            before_stages = {s["id"]: s["status"] for s in (call.report or {}).get("stages", [])}
            before_obj = [f"{o['type']}:{o['status']}" for o in (call.report or {}).get("objections", [])]
            before_score = call.score
            values = result_values(session, call.id, report, script)
            after_stages = {s["id"]: s["status"] for s in report.get("stages", [])}
            after_obj = [f"{o['type']}:{o['status']}" for o in report.get("objections", [])]
            moved = {k: [before_stages.get(k, "-"), after_stages.get(k, "-")]
                     for k in sorted(set(before_stages) | set(after_stages)) if before_stages.get(k) != after_stages.get(k)}
            for k, (a, b) in moved.items():
                flips.setdefault(k, {}).setdefault(f"{a}->{b}", 0)
                flips[k][f"{a}->{b}"] += 1
            if moved or before_obj != after_obj or before_score != values["score"] or call.script_version != used.version:
                changed += 1
                if len(changes) < 500:
                    changes.append(RescoreChange(call_id=call.id, score_before=before_score, score_after=values["score"],
                                                 stages_changed=moved, objections_before=before_obj, objections_after=after_obj))
            if not dry_run:
                values.pop("duration", None)
                for k, v in values.items():
                    setattr(call, k, v)
                call.report = report
        if dry_run:
            session.rollback()
        else:
            session.commit()
    rescored = len(ids) - skipped
    if not dry_run and rescored:
        audit(session, user=actor, action="calls.rescore", entity="script", entity_id=script_id or "*",
              after={"rescored": rescored, "changed": changed})
        session.commit()
    return RescoreResult(rescored=rescored, changed=changed, dry_run=dry_run, script=chosen_ref, stage_flips=flips, changes=changes)


def import_root_allowed(folder: str | Path, roots: list[Path]) -> Path:
    """A folder to import must lie inside one of the configured import roots once every symlink and
    ``..`` is resolved; a relative folder is taken inside the roots."""
    text = str(folder)
    if "\0" in text:
        raise BadRequest("the folder name contains a NUL character", code="bad_folder")
    candidates = [Path(text)] if Path(text).is_absolute() else [root / text for root in roots]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        for root in roots:
            r = Path(os.path.realpath(root))
            if real == r or r in real.parents:
                try:
                    is_dir = real.is_dir()
                except OSError:  # a name too long, a permission problem: nothing to import there
                    is_dir = False
                if not is_dir:
                    raise NotFound(f"no folder {text}", code="folder_not_found")
                return real
    raise Forbidden(f"{text} is outside the import folders (CALLQA_IMPORT_DIRS)", code="folder_not_allowed")
