"""The script library over HTTP: versions are immutable; one version per script is active.

Every signed-in role may read (managers get feedback against the script); admins, heads of sales
and quality controllers may store a new version; admins and heads of sales decide which version
is active (it scores new calls and re-scoring).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.core.errors import BadRequest, ServiceError
from api.deps import ANY_ROLE, STAFF, SessionDep, ensure_role, require
from api.models import Role, ScriptVersion, User
from api.scripts import service
from api.scripts.schemas import (
    ScriptPublic,
    ScriptSummaryPublic,
    ScriptVersionCreate,
    ScriptVersionPublic,
    ScriptVersionSummaryPublic,
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
    return ScriptPublic(**_summary(versions), version_details=[ScriptVersionSummaryPublic.model_validate(v) for v in versions])


def _version_public(row: ScriptVersion) -> ScriptVersionPublic:
    return ScriptVersionPublic(
        **ScriptVersionSummaryPublic.model_validate(row).model_dump(), script_id=row.script_id, body=row.body,
        # the examples a version learned are pieces of calls: not for everyone who reads the script
        script=service.script_of(row).model_dump(mode="json", exclude={"examples", "responses"}),
    )


@router.get("/scripts", response_model=list[ScriptSummaryPublic], summary="The script library: every script with its versions")
def list_scripts(session: SessionDep, user: _Reader) -> list[ScriptSummaryPublic]:
    return [ScriptSummaryPublic(**_summary(v)) for v in service.versions_by_script(session).values()]


@router.get("/scripts/{script_id}", response_model=ScriptPublic, summary="One script and its versions",
            responses={404: {"description": "no such script"}})
def get_script(session: SessionDep, user: _Reader, script_id: str) -> ScriptPublic:
    return _public(service.script_versions(session, script_id=script_id))


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
    return _public(service.script_versions(session, script_id=script_id))
