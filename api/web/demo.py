"""Demo data for the web UI (``callqa serve --demo``): the same sample department ``make demo``
loads (the sample CRM exports, the sample recordings with their call metadata) and one login per
role: a quality controller, a head of sales and a manager who has calls.

The demo logins get fresh passwords at every ``--demo`` start (printed then), so a person who lost
them starts again. Importing twice changes nothing (the CRM import and the recordings store are
idempotent). Nothing here runs without ``--demo``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.auth.service import create_user
from api.calls.schemas import CallMetadataCreate
from api.core.config import ServiceSettings
from api.core.db import Database
from api.core.errors import ServiceError
from api.core.security import hash_password
from api.core.storage import RecordingStore
from api.models import Manager, Role, Team, User

log = logging.getLogger("callqa.demo")
SAMPLES = Path(__file__).resolve().parents[2] / "sample_calls"
CRM_FILES = ("managers.csv", "amocrm_deals.csv", "bitrix24_leads.csv", "bitrix24_deals.xlsx", "stage_history.csv", "plans.csv")
MANAGER_LOGIN_EXTERNAL_ID = "102"  # Наталья Орлова: a call with objections left unhandled, colleagues who handled them
USERS = [("okk", Role.quality_controller, "Ольга Контролёва"), ("rop", Role.head_of_sales, "Роман Руководов"),
         ("orlova", Role.manager, "Наталья Орлова")]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    password: str


def _login(session: Session, username: str, role: Role, full_name: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        return create_user(session, actor=None, username=username, password=password, role=role, full_name=full_name)
    user.password_hash = hash_password(password)
    user.active = True
    session.commit()
    return user


def _import_crm(session: Session, folder: Path) -> None:
    from analyzer.errors import AnalyzerError
    from api.crm.service import import_bytes

    for name in CRM_FILES:
        path = folder / name
        if path.is_file():
            try:
                import_bytes(session, data=path.read_bytes(), filename=name, actor=None)
            except (AnalyzerError, ServiceError) as e:
                session.rollback()
                log.warning("demo: %s not imported: %s", name, getattr(e, "message", e))


def _import_calls(session: Session, store: RecordingStore, audio: Path, metadata: Path) -> None:
    from api.crm.calls import import_folder_with_metadata, read_call_metadata

    if not audio.is_dir():
        return
    table = read_call_metadata(metadata)
    for path, result in import_folder_with_metadata(session, store, folder=audio, meta=CallMetadataCreate(), table=table):
        if isinstance(result, ServiceError):
            log.warning("demo: %s not imported: %s", path.name, result.message)


def setup_demo(settings: ServiceSettings, *, samples: Path = SAMPLES) -> list[DemoAccount]:
    """Load the sample department and (re)set the demo logins; returns them with their passwords."""
    db = Database(settings)
    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    accounts = []
    try:
        with db.sessions() as session:
            _import_crm(session, samples / "crm")
            _import_calls(session, store, samples / "audio", samples / "crm" / "calls.csv")
            for username, role, full_name in USERS:
                password = secrets.token_urlsafe(9)
                user = _login(session, username, role, full_name, password)
                accounts.append(DemoAccount(username, role, password))
                if role == Role.head_of_sales:  # the department's head: heads every team no one heads
                    session.execute(update(Team).where(Team.head_user_id.is_(None)).values(head_user_id=user.id))
                    session.commit()
                if role == Role.manager:
                    manager = session.scalar(select(Manager).where(Manager.external_id == MANAGER_LOGIN_EXTERNAL_ID))
                    linked = session.scalar(select(Manager.id).where(Manager.user_id == user.id))
                    if manager is not None and manager.user_id is None and linked is None:
                        manager.user_id = user.id
                        session.commit()
    finally:
        db.dispose()
    return accounts
