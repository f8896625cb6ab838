"""The script library over HTTP: versions are immutable; one version per script is active.

Every signed-in role may read (managers get feedback against the script); admins, heads of sales
and quality controllers may store a new version; admins and heads of sales decide which version
is active (it scores new calls and re-scoring).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.auth.scope import scope_of
from api.core.errors import BadRequest, NotFound, ServiceError
from api.core.exports import CSV_TYPE, csv_bytes, download
from api.core.openapi import errors
from api.deps import ANY_ROLE, STAFF, SessionDep, ensure_role, require
from api.models import Role, ScriptVersion, User
from api.scripts import learning, service
from api.scripts.schemas import (
    LearnedExample,
    LearnResult,
    ScriptPublic,
    ScriptSummary,
    ScriptVersionCreate,
    ScriptVersionPublic,
    ScriptVersionSummary,
)

router = APIRouter(prefix="/api/v1", tags=["scripts"])

_Reader = Annotated[User, Depends(require(*ANY_ROLE))]
_Author = Annotated[User, Depends(require(*STAFF))]
ACTIVATORS = (Role.admin, Role.head_of_sales)
_Activator = Annotated[User, Depends(require(*ACTIVATORS))]

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


async def _script_text(request: Request) -> str:
    """The YAML of a new version: the raw body (YAML or plain text) or JSON ``{"body": "..."}``."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and ctype not in _YAML_TYPES:
        raise UnsupportedMediaType(
            "send the script as YAML (Content-Type: application/yaml or text/plain) or as JSON "
            f"{{\"body\": \"...\"}}; got {ctype or 'no Content-Type'}"
        )
    raw = await request.body()
    if ctype == "application/json":
        try:
            return ScriptVersionCreate.model_validate_json(raw).body
        except ValidationError as e:
            raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the script is not UTF-8 text", code="bad_encoding") from None
    if not text.strip():
        raise BadRequest("the body is empty: send the script's YAML", code="script_invalid")
    return text


_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}, "example": "id: ru_b2b_outbound\nversion: \"1.1\"\n..."},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": ScriptVersionCreate.model_json_schema()},
        },
    }
}


def _summary(versions: list[ScriptVersion]) -> dict[str, Any]:
    active = next((v for v in versions if v.active), None)
    shown = active or versions[-1]
    return {"id": shown.script_id, "title": shown.title, "language": shown.language,
            "active_version": active.version if active else None, "versions": [v.version for v in versions]}


def _public(versions: list[ScriptVersion]) -> ScriptPublic:
    return ScriptPublic(**_summary(versions), version_details=[ScriptVersionSummary.model_validate(v) for v in versions])


def _version_public(row: ScriptVersion) -> ScriptVersionPublic:
    return ScriptVersionPublic(
        **ScriptVersionSummary.model_validate(row).model_dump(), script_id=row.script_id, body=row.body,
        # the examples a version learned are pieces of calls: not for everyone who reads the script
        script=service.script_of(row).model_dump(mode="json", exclude={"examples", "responses"}),
    )


def _script(session: Session, script_id: str) -> list[ScriptVersion]:
    versions = service.versions_by_script(session, script_id=script_id).get(script_id)
    if not versions:
        known = ", ".join(service.versions_by_script(session)) or "none"
        raise NotFound(f"no script {script_id!r}; scripts: {known}", code="script_not_found")
    return versions


@router.get("/scripts", response_model=list[ScriptSummary], summary="The script library: every script with its versions")
def list_scripts(session: SessionDep, user: _Reader) -> list[ScriptSummary]:
    return [ScriptSummary(**_summary(v)) for v in service.versions_by_script(session).values()]


@router.get("/scripts/{script_id}", response_model=ScriptPublic, summary="One script and its versions",
            responses={404: {"description": "no such script"}})
def get_script(session: SessionDep, user: _Reader, script_id: str) -> ScriptPublic:
    return _public(_script(session, script_id))


@router.get("/scripts/{script_id}/versions/{version}", response_model=ScriptVersionPublic,
            summary="One version: its YAML as written and the parsed script as JSON",
            responses={404: {"description": "no such script or version (the known versions are named)"}})
def get_script_version(session: SessionDep, user: _Reader, script_id: str, version: str) -> ScriptVersionPublic:
    return _version_public(service.get_version(session, script_id=script_id, version=version))


@router.post(
    "/scripts", response_model=ScriptVersionPublic, status_code=201,
    summary="Store a new script version (a new script, or a new version of one)",
    description="The body is the script's YAML, sent raw (`Content-Type: application/yaml` or `text/plain`) or as "
    "JSON `{\"body\": \"...\"}`. The id and version are read from the YAML; versions are immutable. The script is "
    "validated by the analyzer's schema: an invalid one is refused with code `script_invalid` and `details` naming "
    "each dotted field. `activate=true` (admins and heads of sales) makes it the active version at once.",
    responses={400: {"description": "the script is invalid (`script_invalid`, details name the fields)"},
               409: {"description": "this script already has this version"},
               415: {"description": "neither YAML, plain text nor JSON"}},
    openapi_extra=_CREATE_BODY,
)
def create_script_version(
    session: SessionDep, actor: _Author, body: Annotated[str, Depends(_script_text)],
    activate: Annotated[bool, Query(description="also make it the active version (admins and heads of sales)")] = False,
) -> ScriptVersionPublic:
    if activate and actor.role not in ACTIVATORS:
        ensure_role(actor, ACTIVATORS)
    return _version_public(service.create_version(session, actor=actor, body=body, activate=activate))


@router.post(
    "/scripts/{script_id}/versions/{version}/activate", response_model=ScriptPublic,
    summary="Make a version the active one: it scores new calls and POST /calls/rescore",
    responses={404: {"description": "no such script or version"}},
)
def activate_script_version(session: SessionDep, actor: _Activator, script_id: str, version: str) -> ScriptPublic:
    service.get_version(session, script_id=script_id, version=version)
    service.activate_version(session, actor=actor, script_id=script_id, version=version)
    return _public(_script(session, script_id))


@router.get("/scripts/{script_id}/examples", response_model=list[LearnedExample],
            summary="What reviewers decided about this script's objections, as examples to learn from",
            description="From the latest review of each objection of the calls scored with the script that you may see: "
            "the client utterance and its type (or none), the manager's answer and whether it handled it. `format=csv` "
            "downloads them (semicolons, UTF-8 with a BOM, for Excel).",
            responses={200: {"content": {"text/csv": {}}}, **errors(404)})
def list_examples(
    session: SessionDep, user: _Author, script_id: str,
    format: Annotated[Literal["json", "csv"], Query(description="json, or a CSV download")] = "json",  # noqa: A002
) -> Any:
    _script(session, script_id)
    rows = learning.reviewed_examples(session, script_id=script_id, scope=scope_of(session, user))
    if format == "json":
        return rows
    table = [["kind", "label", "handled", "text", "context", "call_id", "review_id"],
             *([r["kind"], r["label"], r.get("handled", ""), r["text"], r["context"], r["call_id"], r["review_id"]]
               for r in rows)]
    return download(csv_bytes(table, sep=";"), media_type=CSV_TYPE, filename=f"{script_id}-examples.csv")


@router.post("/scripts/{script_id}/learn", response_model=LearnResult, status_code=201, responses=errors(404, 409),
             summary="Learn a new version from the reviews: stored, not active, with what it would change",
             description="Every reviewed objection of the calls scored with this script becomes an example (its utterance "
             "and type, or none; its answer and whether it handled it); a new version (`<version>+learned.N`) is stored "
             "with them and trained, and a dry-run re-score shows what activating it would change on the calls you may "
             "see. Activate it with POST /scripts/{id}/versions/{version}/activate. 409 `nothing_to_learn` when there is "
             "no review, or none since the last learned version.")
def learn(session: SessionDep, actor: _Author, script_id: str) -> LearnResult:
    _script(session, script_id)
    learned = learning.learn(session, actor=actor, script_id=script_id)
    return LearnResult(script_id=script_id, version=learned.version.version, examples=learned.examples, calls=learned.calls,
                       labels=learned.labels, changes=learned.changes.model_dump(mode="json"))
