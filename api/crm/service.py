"""CRM import: an export (file bytes or JSON records) parsed by :mod:`analyzer.sales.imports`, upserted on each
row's stable key, with the bad rows reported.

Importing the same export twice changes nothing: a row whose key exists and whose fields are equal
is ``unchanged``; a changed row is ``updated``; a new key is ``inserted``. Bad rows are reported
with their line and reason and the good rows land. Besides the four CRM entities (leads, deals,
plans, stage_history) a ``managers`` table (``external_id``, ``name``, ``team``, ``department``;
``sample_calls/crm/managers.csv``) creates or renames managers, teams and departments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analyzer.sales.errors import CrmFormatError, CrmLimitError
from analyzer.sales.headers import CrmSource, detect_entity, detect_source
from analyzer.sales.imports import leads_from_deals, parse_deals, parse_leads, parse_plans, parse_stage_history
from analyzer.sales.linking import attach_manager_ids
from analyzer.sales.periods import DEFAULT_TZ
from analyzer.sales.tables import RawTable, ReadLimits, RowError, table_from_bytes
from api.audit import audit
from api.auth.scope import Scope, scope_of
from api.core.config import ServiceSettings
from api.core.db import utcnow
from api.core.errors import BadRequest, Forbidden, PayloadTooLarge
from api.crm.models import Deal, DealStageEntry, Lead, SalesPlan
from api.models import Department, Manager, Role, Team, User

ENTITIES: tuple[str, ...] = ("leads", "deals", "plans", "stage_history", "managers")
SOURCES: tuple[str, ...] = ("amocrm", "bitrix24", "generic")
_CHUNK = 500


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


@dataclass
class ImportResult:
    """What one import did: counts of the main entity, of entities written alongside (an amoCRM deal
    is also its lead), the rows reported, and CRM manager names no manager of the service matches."""

    file: str
    source: str
    entity: str
    rows: int
    counts: Counts
    errors: list[RowError]
    also: dict[str, Counts] = field(default_factory=dict)
    unmatched_managers: list[str] = field(default_factory=list)
    outside_scope: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "source": self.source, "entity": self.entity, "rows": self.rows,
            "inserted": self.counts.inserted, "updated": self.counts.updated, "unchanged": self.counts.unchanged,
            "also": {k: vars(v) for k, v in self.also.items()},
            "errors": [{"line": e.line, "reason": e.reason, "column": e.column, "value": e.value, "skipped": e.skipped}
                       for e in self.errors],
            "unmatched_managers": self.unmatched_managers,
            "outside_scope": self.outside_scope,
        }


# --- entry points ----------------------------------------------------------------------------

_LIMIT_SETTINGS = {"max_rows": "CALLQA_CRM_MAX_ROWS", "max_columns": "CALLQA_CRM_MAX_COLUMNS",
                   "max_cell_chars": "CALLQA_CRM_MAX_CELL_CHARS", "max_unpacked_bytes": "CALLQA_CRM_MAX_UNPACKED_MB",
                   "max_compression_ratio": "CALLQA_CRM_MAX_COMPRESSION_RATIO"}


def read_limits(settings: ServiceSettings) -> ReadLimits:
    """The analyzer's limits on an export, from the service settings."""
    return ReadLimits(max_rows=settings.crm_max_rows, max_columns=settings.crm_max_columns,
                          max_cell_chars=settings.crm_max_cell_chars,
                          max_unpacked_bytes=int(settings.crm_max_unpacked_mb * 1024 * 1024),
                          max_compression_ratio=settings.crm_max_compression_ratio)


def import_bytes(session: Session, *, data: bytes, filename: str, actor: User | None, source: str | None = None,
                 entity: str | None = None, tz: str = DEFAULT_TZ, limits: ReadLimits = ReadLimits()) -> ImportResult:
    """A CSV or XLSX export; the CRM and the entity are detected from the headers unless given. A file
    past ``limits`` is PayloadTooLarge (413 crm_file_too_large) naming the setting."""
    if not data:
        raise BadRequest(f"{filename or 'the file'} is empty", code="empty_file")
    try:
        table = table_from_bytes(data, name=filename, limits=limits)
    except CrmLimitError as e:
        raise PayloadTooLarge(f"{e} ({_LIMIT_SETTINGS[e.limit]}); split the export into smaller files, or have the "
                              "administrator raise the limit", code="crm_file_too_large") from None
    return import_table(session, table=table, actor=actor, source=source, entity=entity, tz=tz)


def import_records(session: Session, *, records: Sequence[Mapping[str, Any]], actor: User | None, entity: str | None = None,
                   source: str | None = None, tz: str = DEFAULT_TZ, name: str = "records") -> ImportResult:
    """Rows pushed as JSON objects with the export's headers as keys; error lines count from 1."""
    if not records:
        raise BadRequest("no records to import", code="no_records")
    table = RawTable.from_records(records, first_line=1, name=name)
    return import_table(session, table=table, actor=actor, source=source, entity=entity, tz=tz)


def detect(table: RawTable) -> tuple[str, str]:
    """(entity, source) a table looks like: the analyzer's guess, or ``managers`` for a managers list."""
    normed = {h.strip().casefold() for h in table.headers}
    if {"external_id", "name"} <= normed and not normed & {"deal_id", "lead_id", "amount", "revenue_plan", "stage"}:
        return "managers", "generic"
    return detect_entity(table.headers), detect_source(table.headers)


def import_table(session: Session, *, table: RawTable, actor: User | None, source: str | None = None,
                 entity: str | None = None, tz: str = DEFAULT_TZ) -> ImportResult:
    """Parse and upsert one table. Another import inserting the same keys at the same moment makes
    this one start over once (it then finds those rows)."""
    try:
        return _import_table(session, table=table, actor=actor, source=source, entity=entity, tz=tz)
    except IntegrityError:
        session.rollback()
        return _import_table(session, table=table, actor=actor, source=source, entity=entity, tz=tz)


def _import_table(session: Session, *, table: RawTable, actor: User | None, source: str | None,
                  entity: str | None, tz: str) -> ImportResult:
    if entity is not None and entity not in ENTITIES:
        raise BadRequest(f"entity {entity!r} is not one of {', '.join(ENTITIES)}", code="bad_entity")
    if source is not None and source not in SOURCES:
        raise BadRequest(f"source {source!r} is not one of {', '.join(SOURCES)}", code="bad_source")
    found_entity, found_source = detect(table)
    ent = entity or found_entity
    src = cast(CrmSource, source or (found_source if ent != "managers" else "generic"))
    also: dict[str, Counts] = {}
    if ent == "managers" and actor is not None and actor.role != Role.admin:
        raise Forbidden("a managers list creates teams and departments: only an administrator may import one",
                        code="admin_only")
    scope = scope_of(session, actor)
    outside: dict[str, int] = {}
    if ent == "managers":
        frame, errors = _parse_managers(table)
        counts = _upsert_managers(session, frame)
    elif ent == "deals":
        frame, errors = parse_deals(table, source=src, tz=tz)
        frame, outside = _within_scope(session, scope, Deal, frame)
        counts = _upsert(session, Deal, _deal_rows(frame))
        if src == "amocrm":  # the amoCRM deal is its own lead
            also["leads"] = _upsert(session, Lead, _lead_rows(leads_from_deals(frame)))
    elif ent == "leads":
        frame, errors = parse_leads(table, source=src, tz=tz)
        frame, outside = _within_scope(session, scope, Lead, frame)
        counts = _upsert(session, Lead, _lead_rows(frame))
    elif ent == "plans":
        frame, errors = parse_plans(table, tz=tz)
        frame, outside = _within_scope(session, scope, None, frame)
        counts = _upsert(session, SalesPlan, _plan_rows(frame))
    else:
        frame, errors = parse_stage_history(table, source=src, tz=tz)
        frame, outside = _history_within_scope(session, scope, frame)
        counts = _insert_history(session, frame)
    unmatched = resolve_managers(session)
    audit(session, user=actor, action="crm.import", entity=ent, entity_id=table.name or "records",
          after={"source": src, "rows": len(frame), **vars(counts), "errors": len(errors)})
    session.commit()
    names = set(frame["manager"].dropna().astype(str)) if "manager" in frame.columns else set()
    return ImportResult(file=table.name, source=src, entity=ent, rows=len(frame), counts=counts, errors=errors, also=also,
                        unmatched_managers=sorted(n for n in unmatched if n in names), outside_scope=outside)


# --- a head of sales' import -----------------------------------------------------------------

NO_MANAGER = "(no manager)"


def _within_scope(session: Session, scope: Scope, model: type[Lead] | type[Deal] | None,
                  frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows a head of sales may write: their manager is one of the head's (by the CRM's name or
    external id), and the row they would replace (same key) is one of the head's too. Rows of other
    teams, of no manager or of a manager not known yet are left out and counted by name: they feed
    another team's KPIs, which only an administrator's import may."""
    if scope.manages_all or frame.empty:
        return frame, {}
    managers = pd.DataFrame(session.execute(select(Manager.id, Manager.name, Manager.external_id)).all(),
                            columns=["manager_id", "name", "external_id"])
    matched, _ = attach_manager_ids(frame, managers)
    mine = matched["manager_id"].map(lambda m: m is not None and not pd.isna(m) and scope.sees_manager(int(m)))
    if model is not None and "key" in frame.columns:
        keys = [str(k) for k in frame["key"]]
        theirs = {k for start in range(0, len(keys), _CHUNK) for k, m in session.execute(
            select(model.key, model.manager_id).where(model.key.in_(keys[start:start + _CHUNK]))) if not scope.sees_manager(m)}
        mine &= ~frame["key"].isin(theirs)
    names = frame["manager"].where(frame["manager"].notna(), NO_MANAGER).astype(str)
    refused = names[~mine].value_counts()
    return frame[mine.to_numpy(dtype=bool)].reset_index(drop=True), {str(k): int(v) for k, v in refused.items()}


def _history_within_scope(session: Session, scope: Scope, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """A head of sales' stage history: only of deals already here and of the head's managers."""
    if scope.manages_all or frame.empty:
        return frame, {}
    keys = sorted({str(k) for k in frame["key"]})
    ours = {k for start in range(0, len(keys), _CHUNK) for k, m in session.execute(
        select(Deal.key, Deal.manager_id).where(Deal.key.in_(keys[start:start + _CHUNK]))) if m is not None and scope.sees_manager(m)}
    mine = frame["key"].isin(ours)
    refused = frame.loc[~mine, "deal_id"].astype(str).value_counts()
    return frame[mine.to_numpy(dtype=bool)].reset_index(drop=True), {f"deal {k}": int(v) for k, v in refused.items()}


# --- rows ------------------------------------------------------------------------------------

def _py(v: Any) -> Any:
    """A frame cell as a plain Python value for the database: None for NA, datetime for timestamps."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _records(frame: pd.DataFrame, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Frame columns (``{db column: frame column}``) as a list of row dicts."""
    cols = list(columns.items())
    arrays = [frame[src].to_numpy(dtype=object) if src in frame.columns else np.full(len(frame), None, dtype=object)
              for _, src in cols]
    return [{name: _py(a[i]) for (name, _), a in zip(cols, arrays, strict=True)} for i in range(len(frame))]


def client_key(phone: Any, client: Any) -> str | None:
    """Who the client is, for repeat sales: the phone, else ``name:`` + the casefolded name (as :func:`analyzer.sales.metrics.repeat_sales`)."""
    if phone:
        return str(phone)
    if client is None or (isinstance(client, float) and math.isnan(client)) or not str(client).strip():
        return None
    return ("name:" + str(client).strip().casefold())[:310]


def _deal_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = _records(frame, {"key": "key", "crm": "crm", "crm_id": "deal_id", "crm_lead_id": "lead_id", "title": "title",
                            "client": "client", "client_phone": "client_phone", "manager_name": "manager",
                            "created_at": "created_at", "closed_at": "closed_at", "stage": "stage", "pipeline": "pipeline",
                            "status": "status", "amount": "amount", "currency": "currency", "source": "source"})
    for r in rows:
        r["lead_key"] = f"{r['crm']}:lead:{r['crm_lead_id']}" if r["crm_lead_id"] else None
        r["client_key"] = client_key(r["client_phone"], r["client"])
    return rows


def _lead_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return _records(frame, {"key": "key", "crm": "crm", "crm_id": "lead_id", "created_at": "created_at",
                            "first_response_at": "first_response_at", "manager_name": "manager", "source": "source",
                            "client": "client", "client_phone": "client_phone", "status": "status", "title": "title"})


def _name_key(name: Any) -> str:
    return " ".join(sorted(re.sub(r"[^\w\s]", " ", str(name).casefold().replace("ё", "е")).split()))


def _plan_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per manager, period and activity kind: rows of the same key add up (FORMAT.md)."""
    rows = _records(frame, {"manager_name": "manager", "period_start": "period_start", "period_end": "period_end",
                            "activity_kind": "activity_kind", "revenue_plan": "revenue_plan", "activity_plan": "activity_plan"})
    merged: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"plan:{_name_key(r['manager_name'])}:{r['period_start'].isoformat()}:{r['period_end'].isoformat()}:{r['activity_kind']}"
        if key in merged:
            m = merged[key]
            for c in ("revenue_plan", "activity_plan"):
                if r[c] is not None:
                    m[c] = (m[c] or 0.0) + r[c]
        else:
            merged[key] = {"key": key[:400], **r}
    return list(merged.values())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b
    return bool(a == b)


def _upsert(session: Session, model: type[Lead] | type[Deal] | type[SalesPlan], rows: list[dict[str, Any]]) -> Counts:
    """Insert new keys, update changed rows, leave equal ones alone; returns the counts."""
    counts = Counts()
    if not rows:
        return counts
    fields = [c for c in rows[0] if c != "key"]
    columns = [getattr(model, c) for c in fields]
    now = utcnow()
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        existing = {r[1]: r for r in session.execute(
            select(model.id, model.key, *columns).where(model.key.in_([r["key"] for r in chunk])))}
        new, changed = [], []
        for r in chunk:
            old = existing.get(r["key"])
            if old is None:
                new.append({**r, "imported_at": now, "updated_at": now})
            elif all(_same(old[i + 2], r[f]) for i, f in enumerate(fields)):
                counts.unchanged += 1
            else:
                row = {**{f: r[f] for f in fields}, "id": old[0], "updated_at": now}
                if "manager_name" in fields and old[fields.index("manager_name") + 2] != r["manager_name"]:
                    row["manager_id"] = None  # reassigned in the CRM: resolved again below
                changed.append(row)
        if new:
            session.execute(insert(model), new)
        if changed:
            session.execute(update(model), changed)
        counts.inserted += len(new)
        counts.updated += len(changed)
    return counts


def _insert_history(session: Session, frame: pd.DataFrame) -> Counts:
    """Stage history rows are facts (deal, stage, time): a new one is inserted, a known one is unchanged."""
    counts = Counts()
    rows = _records(frame, {"deal_key": "key", "stage": "stage", "entered_at": "entered_at"})
    seen: set[tuple[str, str, datetime]] = set()
    unique = []
    for r in rows:
        k = (r["deal_key"], r["stage"], r["entered_at"])
        if k in seen:
            counts.unchanged += 1
            continue
        seen.add(k)
        unique.append(r)
    now = utcnow()
    keys = sorted({r["deal_key"] for r in unique})
    existing: set[tuple[str, str, datetime]] = set()
    for start in range(0, len(keys), _CHUNK):
        existing.update((a, b, c) for a, b, c in session.execute(
            select(DealStageEntry.deal_key, DealStageEntry.stage, DealStageEntry.entered_at)
            .where(DealStageEntry.deal_key.in_(keys[start:start + _CHUNK]))))
    new = [{**r, "imported_at": now} for r in unique if (r["deal_key"], r["stage"], r["entered_at"]) not in existing]
    for start in range(0, len(new), _CHUNK):
        session.execute(insert(DealStageEntry), new[start:start + _CHUNK])
    counts.inserted = len(new)
    counts.unchanged += len(unique) - len(new)
    return counts


# --- managers --------------------------------------------------------------------------------

_MANAGER_HEADERS = {"external_id": ("external_id", "extension", "внутренний номер"), "name": ("name", "имя", "менеджер"),
                    "team": ("team", "team_id", "команда", "группа"), "department": ("department", "department_id", "отдел")}


def _parse_managers(table: RawTable) -> tuple[pd.DataFrame, list[RowError]]:
    normed = [h.strip().casefold() for h in table.headers]
    idx = {f: next((normed.index(a) for a in aliases if a in normed), None) for f, aliases in _MANAGER_HEADERS.items()}
    if idx["name"] is None:
        raise CrmFormatError(f"{table.name or 'file'}: a managers list needs a 'name' column (headers: {', '.join(table.headers)})")
    errors = list(table.errors)
    rows = []
    seen: dict[str, int] = {}
    for cells, line in zip(table.rows, table.lines, strict=True):
        rec = {f: (cells[i].strip() or None) if i is not None else None for f, i in idx.items()}
        if not rec["name"]:
            errors.append(RowError(line, "name is empty", "name", ""))
            continue
        ident = rec["external_id"] or _name_key(rec["name"])
        if ident in seen:
            errors.append(RowError(line, f"duplicate manager {ident!r} (first on line {seen[ident]})", "external_id", ident))
            continue
        seen[ident] = line
        rows.append(rec)
    return pd.DataFrame(rows, columns=list(_MANAGER_HEADERS)), sorted(errors, key=lambda e: e.line)


def _named(session: Session, model: type[Team] | type[Department], names: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(names))
    ids = {n: i for i, n in session.execute(select(model.id, model.name).where(model.name.in_(wanted))).all()} if wanted else {}
    for n in wanted:
        if n not in ids:
            row = model(name=n)
            session.add(row)
            session.flush()
            ids[n] = row.id
    return ids


def _upsert_managers(session: Session, frame: pd.DataFrame) -> Counts:
    counts = Counts()
    rows = frame.to_dict("records")
    departments = _named(session, Department, [r["department"] for r in rows if r["department"]])
    teams = _named(session, Team, [r["team"] for r in rows if r["team"]])
    for r in rows:
        if r["team"] and r["department"]:
            team = session.get(Team, teams[r["team"]])
            if team is not None and team.department_id != departments[r["department"]]:
                team.department_id = departments[r["department"]]
    by_name = {_name_key(m.name): m for m in session.scalars(select(Manager))}
    for r in rows:
        m = session.scalar(select(Manager).where(Manager.external_id == r["external_id"])) if r["external_id"] \
            else by_name.get(_name_key(r["name"]))
        team_id = teams[r["team"]] if r["team"] else None
        if m is None:
            session.add(Manager(name=r["name"], external_id=r["external_id"], team_id=team_id))
            counts.inserted += 1
        elif m.name != r["name"] or (team_id is not None and m.team_id != team_id):
            m.name = r["name"]
            m.team_id = team_id if team_id is not None else m.team_id
            counts.updated += 1
        else:
            counts.unchanged += 1
    session.flush()
    return counts


def resolve_managers(session: Session) -> list[str]:
    """Give CRM rows without a manager the manager their CRM name (or external id) names; returns the
    names still unmatched."""
    managers = pd.DataFrame(session.execute(select(Manager.id, Manager.name, Manager.external_id)).all(),
                            columns=["manager_id", "name", "external_id"])
    unmatched: set[str] = set()
    for model in (Lead, Deal, SalesPlan):
        pending = pd.DataFrame(session.execute(
            select(model.id, model.manager_name).where(model.manager_id.is_(None), model.manager_name.is_not(None))).all(),
            columns=["id", "manager"])
        if pending.empty:
            continue
        matched, missing = attach_manager_ids(pending, managers)
        unmatched.update(missing)
        hits = matched[matched["manager_id"].notna()]
        if len(hits):
            session.execute(update(model), [{"id": int(i), "manager_id": int(m)}
                                            for i, m in zip(hits["id"], hits["manager_id"], strict=True)])
    return sorted(unmatched)
