"""Calls: ingestion (upload, folder import, PBX webhook), listing with filters, detail, retry, re-scoring."""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Select, func, literal_column, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, object_session

from analyzer.audio import probe_audio
from analyzer.errors import AnalyzerError
from analyzer.results import Transcript
from analyzer.scoring import score_transcript
from api.audit import audit
from api.auth.scope import Scope, scope_of
from api.auth.service import manager_by_external_id
from api.calls.results import added_objections, latest_reviews, objection_keys, result_values
from api.calls.schemas import CallMetadataCreate, RescoreChangePublic, RescoreResultPublic, ScriptRefPublic
from api.core.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceError, UnprocessableRecording
from api.core.storage import RecordingStore, Stored
from api.models import (
    Call,
    CallContent,
    CallObjection,
    CallStage,
    CallStatus,
    Manager,
    Recording,
    ScriptVersion,
    User,
    utcnow,
)
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


def _apply_metadata(session: Session, call: Call, meta: CallMetadataCreate, scope: Scope) -> None:
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
    meta: CallMetadataCreate, source: str = "upload", actor: User | None = None,
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
    meta: CallMetadataCreate, source: str, actor: User | None,
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


def ingest_webhook(session: Session, *, url: str, meta: CallMetadataCreate, actor: User | None) -> Ingested:
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
    session: Session, store: RecordingStore, *, folder: Path, meta: CallMetadataCreate, actor: User | None = None
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
    if f.stage_missed:
        query = query.where(Call.id.in_(
            select(CallStage.call_id).where(CallStage.stage_id == f.stage_missed, CallStage.status == "missed")))
    if f.objection_unhandled:
        query = query.where(Call.id.in_(
            select(CallObjection.call_id).where(CallObjection.type == f.objection_unhandled, CallObjection.status == "missed")))
    if f.uncertain is True:
        query = query.where(Call.uncertain > 0)
    elif f.uncertain is False:
        query = query.where(Call.uncertain == 0)
    if f.external_id is not None:
        query = query.where(Call.external_id == f.external_id)
    return query


ORDERS = ("-started_at", "started_at", "-score", "score", "-created_at", "created_at")
COUNT_CAP = 10_000
"""A list counts its calls up to this many; beyond, it says "10 000+" (an exact count reads every match)."""


@dataclass(frozen=True)
class _Sort:
    column: Any  # the sort key; the call's id breaks ties
    descending: bool


_SORT_OF = {
    "-started_at": _Sort(Call.started_at, True), "started_at": _Sort(Call.started_at, False),
    "-score": _Sort(Call.score, True), "score": _Sort(Call.score, False),
    "-created_at": _Sort(Call.id, True), "created_at": _Sort(Call.id, False),  # ids follow ingestion
}


@dataclass(frozen=True)
class Cursor:
    """A position in a list: the sort key and id of a call, and whether the page is the one after it
    (next) or before it (previous). Sent to clients as an opaque string."""

    order: str
    key: datetime | float | None
    id: int
    backward: bool = False

    def encode(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, datetime) else self.key
        raw = json.dumps({"o": self.order, "k": key, "i": self.id, "b": self.backward}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, order: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(data, dict) or data.get("o") not in ORDERS or type(data.get("i")) is not int:
                raise ValueError
            key = data.get("k")
            if data["o"] in ("-started_at", "started_at") and key is not None:
                key = datetime.fromisoformat(key)
            elif key is not None and (isinstance(key, bool) or not isinstance(key, int | float)):
                raise ValueError
            cursor = cls(order=data["o"], key=key, id=data["i"], backward=bool(data.get("b")))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest("the cursor is damaged: take it from next_cursor or prev_cursor of a page",
                             code="bad_cursor") from None
        if cursor.order != order:
            raise BadRequest(f"the cursor belongs to a list sorted by {cursor.order!r}, not {order!r}: start from the first page",
                             code="bad_cursor")
        return cursor


@dataclass(frozen=True)
class CallsPage:
    calls: list[Call]
    total: int
    total_exact: bool
    next_cursor: str | None
    prev_cursor: str | None


def _keyset(session: Session, base: Select[Any], sort: _Sort, after: Cursor | None, limit: int, *,
            backward: bool) -> list[tuple[Any, int]]:
    """The sort keys and ids of up to ``limit`` calls that follow ``after`` (or start the list), in
    the list's order; backwards: those that precede it, nearest first.

    Calls without the sort key (unscored, no start time) come last in either direction on both
    databases. They are read by a query of their own rather than by an ``OR key IS NULL`` beside the
    row comparison, so each query is a seek on the (key, id) index."""
    descending = sort.descending != backward
    phases = ["value", "null"] if not backward else ["null", "value"]  # nulls last going forward, so first going back
    start = 0 if after is None else phases.index("null" if after.key is None else "value")
    found: list[tuple[Any, int]] = []
    for i, phase in enumerate(phases[start:]):
        from_cursor = after if i == 0 else None
        query = base.add_columns(sort.column, Call.id)
        if phase == "value":
            query = query.where(sort.column.is_not(None))
            if from_cursor is not None:
                pair = tuple_(sort.column, Call.id)
                query = query.where(pair < (from_cursor.key, from_cursor.id) if descending else pair > (from_cursor.key, from_cursor.id))
            order: tuple[Any, ...] = (sort.column.desc(), Call.id.desc()) if descending else (sort.column.asc(), Call.id.asc())
        else:
            query = query.where(sort.column.is_(None))
            if from_cursor is not None:
                query = query.where(Call.id < from_cursor.id if descending else Call.id > from_cursor.id)
            order = (Call.id.desc(),) if descending else (Call.id.asc(),)
        found += _rows(session, query.order_by(*order).limit(limit - len(found)))
        if len(found) >= limit:
            break
    return found


def _rows(session: Session, query: Select[Any]) -> list[tuple[Any, int]]:
    return [(key, id_) for _, key, id_ in session.execute(query)]


def list_calls(
    session: Session, *, filters: CallFilters, scope: Scope, limit: int, order: str = "-started_at",
    cursor: str | None = None,
) -> CallsPage:
    """A page of the calls ``scope`` may see that match ``filters``: ``limit`` calls from the start,
    or after (before) the position of a cursor from a previous page; the count of all matches, up to
    :data:`COUNT_CAP`. Keyset pages: a page deep in the list costs what the first one does, and a
    call stored meanwhile never shifts a page."""
    sort = _SORT_OF[order]
    after = Cursor.decode(cursor, order=order) if cursor else None
    backward = bool(after and after.backward)
    base = _filtered(select(literal_column("1")).select_from(Call), filters, scope)
    found = _keyset(session, base, sort, after, limit + 1, backward=backward)
    more = len(found) > limit
    found = found[:limit]
    if backward:
        found.reverse()
    by_id = {c.id: c for c in session.scalars(
        select(Call).options(joinedload(Call.manager)).where(Call.id.in_([id_ for _, id_ in found])))}
    calls = [by_id[id_] for _, id_ in found if id_ in by_id]  # a call deleted between the two reads is left out
    first, last = (found[0], found[-1]) if found else (None, None)
    next_cursor = Cursor(order, last[0], last[1]).encode() if last and (more if not backward else True) else None
    prev_cursor = Cursor(order, first[0], first[1], backward=True).encode() \
        if first and (after is not None and (more if backward else True)) else None
    counted = session.scalar(select(func.count()).select_from(base.limit(COUNT_CAP + 1).subquery())) or 0
    return CallsPage(calls, min(counted, COUNT_CAP), counted <= COUNT_CAP, next_cursor, prev_cursor)


def get_call(session: Session, call_id: int, *, scope: Scope) -> Call:
    """A call the scope may read; NotFound for a missing one and for one outside the scope alike."""
    # the stored transcript (word timings: the largest column) is read only if something asks for it
    call = session.get(Call, call_id, options=[joinedload(Call.manager), joinedload(Call.content).defer(CallContent.transcript)])
    if call is None:
        raise NotFound(f"no call {call_id}", code="call_not_found")
    scope.call(call_id, call.manager_id)
    return call


def summary(call: Call) -> dict[str, Any]:
    """A call as the list shows it (:class:`~api.calls.schemas.CallSummaryPublic`)."""
    manager = call.manager
    return {
        "id": call.id,
        "status": call.status,
        "error": {"code": call.error_code, "message": call.error_message or ""}
        if call.error_code and call.status in (CallStatus.failed, CallStatus.queued) else None,
        "manager": {"id": manager.id, "name": manager.name} if manager is not None else None,
        "client_phone": call.client_phone,
        "direction": call.direction,
        "started_at": call.started_at,
        "duration": call.duration,
        "language": call.language,
        "external_id": call.external_id,
        "crm_lead_id": call.crm_lead_id,
        "crm_deal_id": call.crm_deal_id,
        "source": call.source,
        "score": call.score,
        "machine_score": call.machine_score,
        "uncertain": call.uncertain,
        "script": {"id": call.script_id, "version": call.script_version} if call.script_id else None,
        "attempts": call.attempts,
        "created_at": call.created_at,
        "processed_at": call.processed_at,
    }


def call_detail(session: Session, call_id: int, *, scope: Scope) -> dict[str, Any]:
    """:func:`detail` of :func:`get_call`."""
    return detail(get_call(session, call_id, scope=scope))


def detail(call: Call) -> dict[str, Any]:
    """A call's page (:class:`~api.calls.schemas.CallDetailPublic`): its summary, and the report's verdicts
    with the reviewers' decisions over them; the stored transcript is read only when the report has
    none, the objections reviewers added only when there are rows beyond the report's."""
    session = object_session(call)
    report = call.report or {}
    rows = {s.stage_id: (s.status, s.reviewed) for s in call.stages}
    orows = {o.position: (o.status, o.reviewed) for o in call.objections}
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
        for k, o in enumerate(_added(session, call.id, report, call.script_id, call.script_version)):
            objections.append({**o, "position": len(keys) + k, "machine_status": "not_found", "reviewed": True})
    transcript = report.get("transcript")
    if transcript is None:
        stored = call.transcript
        if stored:
            transcript = [{k: v for k, v in u.items() if k != "words"} for u in stored.get("utterances", [])]
    return {
        **summary(call),
        "stages": stages,
        "objections": objections,
        "fillers": report.get("fillers", []),
        "metrics": report.get("metrics"),
        "score_breakdown": report.get("score_breakdown", []),
        "transcript": transcript or [],
        "roles_inferred": bool(report.get("roles_inferred")),
        "warnings": report.get("warnings", []),
        "recording_url": f"/api/v1/calls/{call.id}/recording" if call.recording_sha256 else None,
    }


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
) -> RescoreResultPublic:
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
        select(Call.id).join(CallContent, CallContent.call_id == Call.id)
        .where(Call.status == CallStatus.done, CallContent.transcript.is_not(None)).order_by(Call.id))
    if call_ids is not None:
        query = query.where(Call.id.in_(call_ids))
    versions: dict[str, ScriptVersion] = {}
    chosen_ref: ScriptRefPublic | None = None
    chosen_language: str | None = None
    if script_id is not None:
        v = get_version(session, script_id=script_id, version=version) if version else active_version(session, script_id=script_id)
        chosen_ref = ScriptRefPublic(id=v.script_id, version=v.version)
        chosen_language = v.language
        # the language column is set once a call is scored; the transcript's decides below otherwise
        query = query.where(or_(Call.language == v.language, Call.language.is_(None)))
    ids = list(session.scalars(query))
    changes: list[RescoreChangePublic] = []
    flips: dict[str, dict[str, int]] = {}
    changed = skipped = 0
    for start in range(0, len(ids), batch):
        calls = session.scalars(select(Call).options(joinedload(Call.content)).where(Call.id.in_(ids[start : start + batch]))
                               .order_by(Call.id)).all()
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
                    changes.append(RescoreChangePublic(call_id=call.id, score_before=before_score, score_after=values["score"],
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
    return RescoreResultPublic(rescored=rescored, changed=changed, dry_run=dry_run, script=chosen_ref, stage_flips=flips, changes=changes)


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
