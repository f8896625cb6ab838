"""CRM import over HTTP: upload an export file, or push records as JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from api.core.errors import PayloadTooLarge
from api.core.openapi import errors
from api.crm import service
from api.crm.schemas import CrmRecordsCreate, EntityName, ImportResultPublic, SourceName
from api.deps import SessionDep, SettingsDep, require
from api.models import Role, User

router = APIRouter(prefix="/api/v1/crm", tags=["crm"], responses=errors(400))
_Importer = Annotated[User, Depends(require(Role.admin, Role.head_of_sales))]


@router.post(
    "/import",
    response_model=ImportResultPublic,
    summary="Import a CRM export (CSV or XLSX): amoCRM, Bitrix24 or the generic format",
    description="Multipart `file`; the CRM (`source`) and the kind of rows (`entity`: leads, deals, plans, "
    "stage_history, managers) are detected from the header row unless given. Rows are upserted on their stable "
    "key: importing the same file again changes nothing. Bad rows come back in `errors` with line and reason; "
    "the good rows land. A file that cannot be read as a whole is a 422 `crm_format_error`; one past a limit "
    "(rows, cells, unpacked size: the CALLQA_CRM_MAX_* settings) a 413 `crm_file_too_large`.",
)
def import_file(
    session: SessionDep,
    settings: SettingsDep,
    actor: _Importer,
    file: Annotated[UploadFile, File(description="the export, .csv or .xlsx")],
    source: Annotated[SourceName | None, Form()] = None,
    entity: Annotated[EntityName | None, Form()] = None,
) -> dict[str, Any]:
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"the file is over the limit of {settings.max_upload_mb:g} MB")
    result = service.import_bytes(session, data=data, filename=file.filename or "upload", actor=actor, source=source,
                                  entity=entity, limits=service.read_limits(settings))
    return result.to_dict()


@router.post(
    "/records",
    response_model=ImportResultPublic,
    summary="Push CRM rows as JSON (the same columns as an export)",
    description="`records`: objects keyed by the export's headers (generic: `deal_id`, `created_at`, `status`, ...). "
    "Error lines are the records' positions counted from 1.",
)
def import_records(session: SessionDep, actor: _Importer, body: CrmRecordsCreate) -> dict[str, Any]:
    result = service.import_records(session, records=body.records, actor=actor, entity=body.entity, source=body.source)
    return result.to_dict()
