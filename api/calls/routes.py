from __future__ import annotations

import json
import mimetypes
import os
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette import responses as starlette_responses

from api.auth.scope import scope_of
from api.calls import service
from api.calls.schemas import (
    CallDetailPublic,
    CallMetadataCreate,
    CallPagePublic,
    CallSummaryPublic,
    ErrorInfoPublic,
    RescoreCreate,
    RescoreResultPublic,
    UploadItemPublic,
    UploadResultPublic,
    WebhookCallCreate,
)
from api.core import netguard
from api.core.errors import BadRequest, NotFound, RangeNotSatisfiable, ServiceError, Unauthorized
from api.core.ids import MAX_ID, PathId, QueryId
from api.core.limits import NestingError, NotTextError, loads_json
from api.core.moments import FormMoment, iso_only
from api.core.openapi import errors
from api.deps import (
    REVIEWERS,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    UserDep,
    ViewerDep,
    current_user,
    ensure_role,
    require,
)
from api.models import CallStatus, Role, User

router = APIRouter(prefix="/api/v1", tags=["calls"])
_Uploader = Annotated[User, Depends(require(Role.admin, Role.head_of_sales, Role.quality_controller))]


def _metadata(raw: str | None, fields: dict[str, Any]) -> list[dict] | dict:
    common = {k: v for k, v in fields.items() if v not in (None, "")}
    if raw is None or not raw.strip():
        return common
    try:
        parsed = loads_json(raw)
    except (NestingError, NotTextError) as e:
        raise BadRequest(f"'metadata' is {e}: send a JSON object (for every file) or a list of objects (one per file)",
                         code="bad_metadata") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"'metadata' is not valid JSON: {e}", code="bad_metadata") from None
    if isinstance(parsed, dict):
        return {**common, **parsed}
    if isinstance(parsed, list) and all(isinstance(x, dict) for x in parsed):
        return [{**common, **x} for x in parsed]
    raise BadRequest("'metadata' must be a JSON object (for every file) or a list of objects (one per file)", code="bad_metadata")


@router.post(
    "/calls",
    response_model=UploadResultPublic,
    status_code=201,
    summary="Upload one or many recordings with metadata",
    description="Multipart: one or more `files`; metadata as form fields (applied to every file) and/or "
    "`metadata`, a JSON object or a list with one object per file in order. The same recording "
    "uploaded again is the same call (outcome `duplicate`). A file that is not usable audio is "
    "rejected with its reason and the others go on; when every file is rejected the answer is an error.",
    responses={200: {"model": UploadResultPublic, "description": "nothing new: every file was a recording already stored"},
               **errors(400, 409), 413: {"description": "a file is over the size limit"},
               422: {"description": "no file is usable audio"}},
)
def upload_calls(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    actor: _Uploader,
    files: Annotated[list[UploadFile], File(description="recordings")],
    metadata: Annotated[str | None, Form(max_length=1_000_000)] = None,
    manager_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    manager_external_id: Annotated[str | None, Form(max_length=200)] = None,
    client_phone: Annotated[str | None, Form(max_length=40)] = None,
    direction: Annotated[Literal["inbound", "outbound"] | None, Form()] = None,
    started_at: FormMoment = None,
    duration: Annotated[float | None, Form(ge=0, le=86400)] = None,
    crm_lead_id: Annotated[str | None, Form(max_length=100)] = None,
    crm_deal_id: Annotated[str | None, Form(max_length=100)] = None,
    external_id: Annotated[str | None, Form(max_length=200)] = None,
    language: Annotated[str | None, Form(pattern=r"^[a-z]{2,3}$")] = None,
    manager_channel: Annotated[Literal["left", "right"] | None, Form()] = None,
) -> JSONResponse:
    fields: dict[str, Any] = dict(manager_id=manager_id, manager_external_id=manager_external_id, client_phone=client_phone, direction=direction,
                  started_at=started_at, duration=duration, crm_lead_id=crm_lead_id, crm_deal_id=crm_deal_id,
                  external_id=external_id, language=language, manager_channel=manager_channel)
    meta = _metadata(metadata, fields)
    if isinstance(meta, list) and len(meta) != len(files):
        raise BadRequest(f"'metadata' has {len(meta)} entries for {len(files)} files", code="bad_metadata")
    if len(files) > 1 and isinstance(meta, dict) and meta.get("external_id"):
        raise BadRequest("one external_id cannot name several files; give per-file metadata", code="bad_metadata")
    items: list[UploadItemPublic] = []
    first_error: ServiceError | None = None
    for i, f in enumerate(files):
        name = service.display_name(f.filename)
        try:
            try:
                m = CallMetadataCreate.model_validate(meta[i] if isinstance(meta, list) else meta)
            except ValidationError as e:
                raise BadRequest(f"{name}: bad metadata: {e.errors(include_url=False)[0]['msg']}", code="bad_metadata",
                                 details=json.loads(e.json(include_url=False))) from None
            ingested = service.ingest_stream(session, store, stream=f.file, filename=f.filename, content_type=f.content_type,
                                             meta=m, actor=actor)
            items.append(UploadItemPublic(filename=name, outcome="created" if ingested.created else "duplicate", call_id=ingested.call.id))
            if ingested.created:
                request.app.state.executor.submit(ingested.call.id)
        except ServiceError as e:
            session.rollback()
            first_error = first_error or e
            items.append(UploadItemPublic(filename=name, outcome="rejected", error=ErrorInfoPublic(code=e.code, message=e.message)))
    if first_error is not None and all(i.outcome == "rejected" for i in items):
        first_error.details = [i.model_dump() for i in items]
        raise first_error
    result = UploadResultPublic.of(items)
    return JSONResponse(result.model_dump(mode="json"), status_code=201 if result.created else 200)


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field(min_length=1, max_length=4096, description="a folder inside one of CALLQA_IMPORT_DIRS")
    metadata: CallMetadataCreate = Field(default_factory=CallMetadataCreate)


@router.post("/calls/import", response_model=UploadResultPublic, summary="Import every recording in a server folder",
             responses=errors(400, 404))
def import_calls(request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep, body: ImportRequest,
                 actor: Annotated[User, Depends(require(Role.admin))]) -> UploadResultPublic:
    folder = service.import_root_allowed(body.folder, settings.import_dirs)
    items = []
    for path, r in service.import_folder(session, store, folder=folder, meta=body.metadata, actor=actor):
        rel = str(path.relative_to(folder))
        if isinstance(r, ServiceError):
            items.append(UploadItemPublic(filename=rel, outcome="rejected", error=ErrorInfoPublic(code=r.code, message=r.message)))
        else:
            items.append(UploadItemPublic(filename=rel, outcome="created" if r.created else "duplicate", call_id=r.call.id))
            if r.created:
                request.app.state.executor.submit(r.call.id)
    return UploadResultPublic.of(items)


def _webhook_caller(
    request: Request, session: SessionDep, settings: SettingsDep,
    x_callqa_secret: Annotated[str | None, Header(description="the shared secret CALLQA_WEBHOOK_SECRET")] = None,
) -> User | None:
    import hmac

    if x_callqa_secret is not None:
        if settings.webhook_secret and hmac.compare_digest(x_callqa_secret, settings.webhook_secret):
            return None
        raise Unauthorized("the webhook secret is wrong", code="bad_webhook_secret")
    from fastapi.security.utils import get_authorization_scheme_param

    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    from fastapi.security import HTTPAuthorizationCredentials

    user = current_user(session, HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None)
    return ensure_role(user, (Role.admin,))


@router.post("/webhooks/pbx", response_model=CallSummaryPublic, status_code=202,
             responses={200: {"model": CallSummaryPublic, "description": "a repeated external_id: the call already queued"},
                        **errors(400, 403), 422: {"description": "the URL leads inside the network "
                                                                 "(`recording_url_not_allowed`), or the body is invalid"}},
             summary="A PBX reports a finished call with the URL of its recording",
             description="Authenticate with an admin token or the header X-Callqa-Secret. The worker downloads the "
             "recording (with retries and the size limit). A repeated `external_id` returns the same call. A URL "
             "whose host is or resolves to a loopback, private or link-local address is refused "
             "(`recording_url_not_allowed`) unless CALLQA_WEBHOOK_ALLOWED_NETWORKS includes it.")
def pbx_webhook(request: Request, session: SessionDep, settings: SettingsDep, body: WebhookCallCreate,
                actor: Annotated[User | None, Depends(_webhook_caller)]) -> JSONResponse:
    netguard.check_url(str(body.recording_url), allowed=settings.webhook_allowed_networks)  # early; the worker checks again
    meta = CallMetadataCreate.model_validate(body.model_dump(exclude={"recording_url"}, exclude_unset=True))
    result = service.ingest_webhook(session, url=str(body.recording_url), meta=meta, actor=actor)
    if result.created:
        request.app.state.executor.submit(result.call.id)
    session.refresh(result.call)
    return JSONResponse(CallSummaryPublic.model_validate(service.summary(result.call)).model_dump(mode="json"),
                        status_code=202 if result.created else 200)


@router.get("/calls", response_model=CallPagePublic, summary="Calls, filtered and paged (a manager sees own calls only)",
            description="Pages by cursor: the first page without one, then `cursor=<next_cursor>` (or `<prev_cursor>`) "
            "of the page before, with the same filters and order. Calls stored meanwhile never shift a page.",
            responses=errors(400))
def list_calls(
    session: ReadSessionDep,
    user: ViewerDep,
    manager_id: QueryId = None,
    team_id: QueryId = None,
    date_from: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="started at or after")] = None,
    date_to: Annotated[datetime | None, BeforeValidator(iso_only), Query(description="started before")] = None,
    status: CallStatus | None = None,
    score_min: Annotated[float | None, Query(ge=0, le=100)] = None,
    score_max: Annotated[float | None, Query(ge=0, le=100)] = None,
    stage_missed: Annotated[str | None, Query(max_length=100, description="calls where this stage was missed")] = None,
    objection_unhandled: Annotated[str | None, Query(max_length=100, description="calls with this objection type not handled")] = None,
    uncertain: Annotated[bool | None, Query(description="calls with (true) or without (false) uncertain verdicts")] = None,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    order: Literal["-started_at", "started_at", "-score", "score", "-created_at", "created_at"] = "-started_at",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor or prev_cursor of a page")] = None,
) -> CallPagePublic:
    filters = service.CallFilters(manager_id=manager_id, team_id=team_id, date_from=date_from, date_to=date_to, status=status,
                                  score_min=score_min, score_max=score_max, stage_missed=stage_missed,
                                  objection_unhandled=objection_unhandled, uncertain=uncertain, external_id=external_id)
    page = service.list_calls(session, filters=filters, scope=scope_of(session, user), limit=limit, order=order, cursor=cursor)
    return CallPagePublic(items=[CallSummaryPublic.model_validate(service.summary(c)) for c in page.calls], total=page.total,
                    total_exact=page.total_exact, limit=limit, next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)


@router.get("/calls/{call_id:int}", response_model=CallDetailPublic, summary="A call: transcript, stages with evidence, objections, metrics")
def get_call(session: ReadSessionDep, user: ViewerDep, call_id: PathId) -> dict[str, Any]:
    return service.call_detail(session, call_id, scope=scope_of(session, user))


@router.get("/calls/{call_id:int}/recording", summary="The recording (HTTP Range supported)",
            response_class=FileResponse,
            responses={200: {"content": {"audio/*": {}}}, 206: {"description": "a byte range"}, **errors(400),
                       416: {"description": "the range is outside the recording (`range_not_satisfiable`)"}})
def get_recording(request: Request, session: SessionDep, store: StoreDep, user: UserDep, call_id: PathId) -> FileResponse:
    call = service.get_call(session, call_id, scope=scope_of(session, user))
    if not call.recording_sha256 or not store.exists(call.recording_sha256):
        raise NotFound(f"call {call_id} has no stored recording (yet)", code="recording_not_found")
    rec = call.recording
    name = rec.original_name if rec else f"call-{call_id}"
    media = (rec.content_type if rec and rec.content_type != "application/octet-stream" else None) or \
        mimetypes.guess_type(name)[0] or "application/octet-stream"
    path = store.path(call.recording_sha256)
    response = FileResponse(path, media_type=media, filename=name, content_disposition_type="inline", stat_result=os.stat(path))
    _check_range(request, response)
    return response


def _check_range(request: Request, response: FileResponse) -> None:
    """A Range the file cannot serve is refused here, in the JSON error format (Starlette would answer
    416 or 400 with a plain-text or empty body). Starlette's own range rules decide, through its
    private helpers, so what is refused here is exactly what it would refuse (test_ingest checks)."""
    http_range = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if http_range is None or (if_range is not None and not response._should_use_range(if_range)):
        return  # the whole file is sent
    assert response.stat_result is not None
    size = response.stat_result.st_size
    try:
        FileResponse._parse_range_header(http_range, size)
    except starlette_responses.RangeNotSatisfiable:
        raise RangeNotSatisfiable(f"the range {http_range!r} is outside the recording of {size} bytes",
                                  headers={"Content-Range": f"bytes */{size}"}) from None
    except starlette_responses.MalformedRangeHeader as e:
        raise BadRequest(f"the Range header {http_range!r} is malformed: {e.content}; e.g. 'bytes=0-1023'",
                         code="bad_range") from None


@router.post("/calls/{call_id:int}/retry", response_model=CallSummaryPublic, summary="Queue a failed call again",
             responses=errors(409))
def retry(request: Request, session: SessionDep, call_id: PathId, actor: Annotated[User, Depends(require(*REVIEWERS))]) -> CallSummaryPublic:
    call = service.retry_call(session, call_id=call_id, actor=actor)
    request.app.state.executor.submit(call.id)
    return CallSummaryPublic.model_validate(service.summary(service.get_call(session, call_id, scope=scope_of(session, actor))))


@router.post("/calls/rescore", response_model=RescoreResultPublic,
             summary="Re-score stored transcripts against the active script versions, without transcribing",
             description="`dry_run` shows what would change. Reviewers' verdicts are kept.", responses=errors(400, 404))
def rescore(session: SessionDep, body: RescoreCreate, actor: Annotated[User, Depends(require(Role.admin, Role.quality_controller, Role.head_of_sales))]) -> RescoreResultPublic:
    return service.rescore(session, actor=actor, script_id=body.script_id, call_ids=body.call_ids, dry_run=body.dry_run,
                           version=body.version)


