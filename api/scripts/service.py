"""Script versions in the database: the library's YAML files are seeded as the first versions;
new versions are validated by the analyzer's own schema; one version per script id is active."""

from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analyzer.errors import ScriptValidationError
from analyzer.scripts import BUNDLED_DIR, DEFAULT_SCRIPTS, Example, ResponseExample, Script, parse_script_text
from api.audit import audit
from api.core.errors import BadRequest, Conflict, NotFound
from api.models import ScriptVersion, User


@lru_cache(maxsize=256)
def _parse(body: str, examples: str | None = None) -> Script:
    script = parse_script_text(body)
    if examples:
        rows = json.loads(examples)
        script = script.model_copy(update={
            "examples": [Example(text=e["text"], label=e["label"], context=e.get("context", ""))
                         for e in rows if e["kind"] == "utterance"],
            "responses": [ResponseExample(objection_type=e["label"], objection=e.get("context", ""), response=e["text"],
                                          handled=bool(e["handled"])) for e in rows if e["kind"] == "response"],
        })
    return script


def script_of(version: ScriptVersion) -> Script:
    """The analyzer's Script for a stored version, with the examples it learned from reviews (parsed
    once per body and examples)."""
    return _parse(version.body, json.dumps(version.examples, ensure_ascii=False, sort_keys=True) if version.examples else None)


def seed_builtin_scripts(session: Session) -> int:
    """Store the bundled scripts as versions (once); activate those with no active version."""
    added = 0
    for path in sorted(BUNDLED_DIR.glob("*.y*ml")):
        body = path.read_text(encoding="utf-8")
        script = parse_script_text(body, source=str(path))
        exists = session.scalar(
            select(ScriptVersion.id).where(ScriptVersion.script_id == script.id, ScriptVersion.version == script.version)
        )
        if exists is not None:
            continue
        has_active = session.scalar(
            select(ScriptVersion.id).where(ScriptVersion.script_id == script.id, ScriptVersion.active.is_(True))
        )
        session.add(
            ScriptVersion(
                script_id=script.id, version=script.version, language=script.language, title=script.title, body=body,
                active=has_active is None,
            )
        )
        added += 1
    session.commit()
    return added


def active_languages(session: Session) -> set[str]:
    """The languages with an active script: what a call's detected language may be."""
    return set(session.scalars(select(ScriptVersion.language).where(ScriptVersion.active.is_(True)).distinct()))


def active_version(session: Session, *, script_id: str | None = None, language: str | None = None) -> ScriptVersion:
    """The active version of a script id, or of the language's default script."""
    query = select(ScriptVersion).where(ScriptVersion.active.is_(True))
    if script_id is not None:
        row = session.scalar(query.where(ScriptVersion.script_id == script_id))
        if row is None:
            raise NotFound(f"no active version of script {script_id!r}", code="script_not_found")
        return row
    rows = list(session.scalars(query.where(ScriptVersion.language == (language or "ru")).order_by(ScriptVersion.script_id)))
    if not rows:
        raise NotFound(f"no active script for language {language!r}; create and activate one", code="script_not_found")
    preferred = DEFAULT_SCRIPTS.get(language or "ru")
    return next((r for r in rows if r.script_id == preferred), rows[0])


def create_version(session: Session, *, actor: User | None, body: str, activate: bool = False) -> ScriptVersion:
    try:
        script = parse_script_text(body, source="script")
    except ScriptValidationError as e:
        raise BadRequest(str(e), code="script_invalid", details=e.errors) from None
    exists = session.scalar(
        select(ScriptVersion.id).where(ScriptVersion.script_id == script.id, ScriptVersion.version == script.version)
    )
    if exists is not None:
        raise Conflict(
            f"script {script.id!r} already has a version {script.version!r}; versions are immutable, give a new 'version'",
            code="script_version_exists",
        )
    row = ScriptVersion(script_id=script.id, version=script.version, language=script.language, title=script.title, body=body,
                        created_by=actor.id if actor else None)
    session.add(row)
    session.flush()
    audit(session, user=actor, action="script.create", entity="script", entity_id=f"{script.id}@{script.version}")
    if activate:
        _activate(session, row, actor)
    session.commit()
    return row


def get_version(session: Session, *, script_id: str, version: str) -> ScriptVersion:
    """One stored version; NotFound names the versions the script has."""
    row = session.scalar(select(ScriptVersion).where(ScriptVersion.script_id == script_id, ScriptVersion.version == version))
    if row is None:
        known = list(session.scalars(select(ScriptVersion.version).where(ScriptVersion.script_id == script_id)
                                     .order_by(ScriptVersion.id)))
        if not known:
            raise NotFound(f"no script {script_id!r}", code="script_not_found")
        raise NotFound(f"script {script_id!r} has no version {version!r}; versions: {', '.join(known)}",
                       code="script_version_not_found", details={"versions": known})
    return row


def script_versions(session: Session, *, script_id: str) -> list[ScriptVersion]:
    """The stored versions of one script, oldest first; NotFound names the scripts there are."""
    versions = versions_by_script(session, script_id=script_id).get(script_id)
    if not versions:
        known = ", ".join(versions_by_script(session)) or "none"
        raise NotFound(f"no script {script_id!r}; scripts: {known}", code="script_not_found")
    return versions


def versions_by_script(session: Session, *, script_id: str | None = None) -> dict[str, list[ScriptVersion]]:
    """Every stored version grouped by script id, oldest first (one script when ``script_id`` is given)."""
    query = select(ScriptVersion).order_by(ScriptVersion.script_id, ScriptVersion.id)
    if script_id is not None:
        query = query.where(ScriptVersion.script_id == script_id)
    grouped: dict[str, list[ScriptVersion]] = {}
    for row in session.scalars(query):
        grouped.setdefault(row.script_id, []).append(row)
    return grouped


def activate_version(session: Session, *, actor: User | None, script_id: str, version: str) -> ScriptVersion:
    row = session.scalar(select(ScriptVersion).where(ScriptVersion.script_id == script_id, ScriptVersion.version == version))
    if row is None:
        raise NotFound(f"script {script_id!r} has no version {version!r}", code="script_not_found")
    _activate(session, row, actor)
    session.commit()
    return row


def _activate(session: Session, row: ScriptVersion, actor: User | None) -> None:
    previous = session.scalar(
        select(ScriptVersion.version).where(ScriptVersion.script_id == row.script_id, ScriptVersion.active.is_(True))
    )
    session.execute(update(ScriptVersion).where(ScriptVersion.script_id == row.script_id).values(active=False))
    row.active = True
    audit(session, user=actor, action="script.activate", entity="script", entity_id=row.script_id,
          before={"version": previous}, after={"version": row.version})
