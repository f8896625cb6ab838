"""Per-recording call metadata from a CSV, so imported calls carry what ties them to CRM rows.

``sample_calls/crm/calls.csv`` is one::

    call_id,audio,manager_external_id,client_phone,direction,started_at,crm_lead_id,crm_deal_id

A row belongs to the recording named in ``audio`` (a file name), or whose name without extension
is ``call_id``. The other columns are :class:`api.calls.schemas.CallMetadataCreate` fields; empty cells
are unknown. A recording that was already stored keeps what it knows and gets only the fields it
lacks (a repeated import never overwrites).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from analyzer.sales.tables import decode_text
from api.auth.service import manager_by_external_id
from api.calls.schemas import CallMetadataCreate
from api.calls.service import AUDIO_EXTENSIONS, Ingested, ingest_stream
from api.core.errors import ServiceError
from api.core.storage import RecordingStore

_NAME_COLUMNS = ("audio", "file", "call_id")


@dataclass(frozen=True)
class MetadataTable:
    """Metadata by recording file name and by call id; ``errors``: (line, reason) of rows not used."""

    by_name: dict[str, dict[str, Any]]
    errors: list[tuple[int, str]]

    def for_file(self, path: Path) -> dict[str, Any] | None:
        return self.by_name.get(path.name) or self.by_name.get(path.stem)


def read_call_metadata(path: Path) -> MetadataTable:
    """Read a metadata CSV (``,`` or ``;``; UTF-8 or cp1251); a bad row is reported, the rest are used."""
    text = decode_text(path.read_bytes())
    sep = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sep)
    fields = set(CallMetadataCreate.model_fields)
    by_name: dict[str, dict[str, Any]] = {}
    errors: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        meta = {k: v for k, v in values.items() if k in fields and v}
        try:
            CallMetadataCreate.model_validate(meta)
        except ValidationError as e:
            first = e.errors()[0]
            errors.append((line, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"))
            continue
        names = [values[c] for c in _NAME_COLUMNS if values.get(c)]
        if not names:
            errors.append((line, "no audio file name or call_id"))
            continue
        for n in names:
            by_name[n] = meta
    return MetadataTable(by_name, errors)


def _fill_missing(session: Session, ingested: Ingested, meta: CallMetadataCreate) -> None:
    call = ingested.call
    data = meta.model_dump(exclude_none=True)
    ext = data.pop("manager_external_id", None)
    if call.manager_id is None and data.get("manager_id") is None and ext:
        manager = manager_by_external_id(session, ext)
        call.manager_id = manager.id if manager else None
    for key, value in data.items():
        if hasattr(call, key) and getattr(call, key) is None:
            setattr(call, key, value)
    session.commit()


def import_folder_with_metadata(session: Session, store: RecordingStore, *, folder: Path, meta: CallMetadataCreate,
                                table: MetadataTable) -> list[tuple[Path, Ingested | ServiceError]]:
    """Like :func:`api.calls.service.import_folder`, each recording with its own row of ``table`` over ``meta``."""
    results: list[tuple[Path, Ingested | ServiceError]] = []
    common = meta.model_dump(exclude_none=True)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS or path.is_symlink():
            continue
        own = CallMetadataCreate.model_validate({**common, **(table.for_file(path) or {})})
        try:
            with path.open("rb") as f:
                ingested = ingest_stream(session, store, stream=f, filename=path.name, content_type=None, meta=own,
                                         source="import")
            if not ingested.created:
                _fill_missing(session, ingested, own)
            results.append((path, ingested))
        except ServiceError as e:
            session.rollback()
            results.append((path, e))
    return results
