"""Demo data for the web UI (``callqa serve --demo``): a sales team, three managers and one login per
role, and the sample calls spread over them and the last weeks.

The demo logins get fresh passwords at every ``--demo`` start (printed then), so a person who
lost them starts again. Nothing here runs without ``--demo``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth.service import create_user
from api.calls.schemas import CallMetadata
from api.calls.service import AUDIO_EXTENSIONS, ingest_stream
from api.core.config import ServiceSettings
from api.core.db import Database
from api.core.security import hash_password
from api.core.storage import RecordingStore
from api.models import Call, Direction, Manager, Role, Team, User

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_calls" / "audio"
TEAM = "Отдел продаж"
MANAGERS = [("Анна Смирнова", "201"), ("Борис Петров", "202"), ("Виктория Соколова", "203")]
USERS = [("okk", Role.quality_controller, "Ольга Контролёва"), ("rop", Role.head_of_sales, "Роман Руководов"),
         ("anna", Role.manager, "Анна Смирнова")]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    password: str


def _user(session: Session, username: str, role: Role, full_name: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        return create_user(session, actor=None, username=username, password=password, role=role, full_name=full_name)
    user.password_hash = hash_password(password)
    user.active = True
    session.commit()
    return user


def setup_demo(settings: ServiceSettings, *, folder: Path = SAMPLE_DIR) -> list[DemoAccount]:
    """Create (or refresh) the demo team, managers and logins; queue the sample calls. Returns the logins."""
    db = Database(settings)
    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    accounts = []
    try:
        with db.sessions() as session:
            users = {}
            for username, role, full_name in USERS:
                password = secrets.token_urlsafe(9)
                users[username] = _user(session, username, role, full_name, password)
                accounts.append(DemoAccount(username, role, password))
            team = session.scalar(select(Team).where(Team.name == TEAM))
            if team is None:
                team = Team(name=TEAM, head_user_id=users["rop"].id)
                session.add(team)
                session.flush()
            managers = []
            for name, ext in MANAGERS:
                m = session.scalar(select(Manager).where(Manager.external_id == ext))
                if m is None:
                    m = Manager(name=name, external_id=ext, team_id=team.id)
                    session.add(m)
                    session.flush()
                managers.append(m)
            if managers[0].user_id is None and session.scalar(select(Manager.id).where(Manager.user_id == users["anna"].id)) is None:
                managers[0].user_id = users["anna"].id
            session.commit()
            files = sorted(p for p in folder.glob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if folder.is_dir() else []
            now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            for i, path in enumerate(files):
                manager = managers[i % len(managers)]
                started = now - timedelta(days=3 * (len(files) - i), hours=i)
                meta = CallMetadata.model_validate({"manager_id": manager.id, "direction": "outbound",
                                                    "client_phone": f"+7900555{i:04d}", "started_at": started.isoformat()})
                with path.open("rb") as f:
                    result = ingest_stream(session, store, stream=f, filename=path.name, content_type=None, meta=meta,
                                           source="import")
                call = result.call
                if not result.created and call.manager_id is None:  # imported before without metadata (make demo)
                    call = session.get(Call, call.id) or call
                    call.manager_id, call.started_at, call.direction = manager.id, started, Direction.outbound
                    call.client_phone = call.client_phone or f"+7900555{i:04d}"
                    session.commit()
    finally:
        db.dispose()
    return accounts
