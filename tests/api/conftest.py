"""Service tests run against every database in ``DATABASES``: a SQLite file and the PostgreSQL on
loopback (``CALLQA_TEST_POSTGRES_URL``; ``make test`` starts the server when it is not running).
The PostgreSQL runs are marked ``postgres``: ``-m "not postgres"`` runs the SQLite half alone.

Each test gets an empty database with the bundled scripts: the schema is built once per session by
the real Alembic migrations, then SQLite tests copy that file and PostgreSQL tests truncate every
table after use. The SQLite template holds the scripts, and a second one the ``people`` too, so that
their parsing and password hashing (most of a short test's time) happen once a session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.auth.service import create_user, sign_in
from api.core.config import ServiceSettings, get_service_settings
from api.core.db import Base, Database, upgrade
from api.models import Manager, Role, Team
from api.scripts.service import seed_builtin_scripts
from tests.helpers import PASSWORD, PG_URL, NoExecutor, ensure_pg_database

DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrated SQLite database with the bundled scripts, which each SQLite test copies."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    database = Database(get_service_settings(database_url=url, data_dir=path.parent / "data"))
    try:
        with database.sessions() as s:
            seed_builtin_scripts(s)
    finally:
        database.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_people_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, People]:
    """The template with the ``people`` in it, for the SQLite tests that ask for them."""
    path = tmp_path_factory.mktemp("db") / "people.db"
    shutil.copy(sqlite_template, path)
    database = Database(get_service_settings(database_url=f"sqlite:///{path}", data_dir=path.parent / "data"))
    try:
        return path, _people(database)
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    ensure_pg_database(PG_URL)
    engine = create_engine(PG_URL)
    with engine.begin() as c:  # start from nothing, then migrate: the migrations themselves are tested
        c.execute(text("drop schema public cascade"))
        c.execute(text("create schema public"))
    engine.dispose()
    upgrade(PG_URL)
    return PG_URL


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "callqa.db"
        if "people" in request.fixturenames:
            template = request.getfixturevalue("sqlite_people_template")[0]
        else:
            template = request.getfixturevalue("sqlite_template")
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_migrated")
    yield url
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as c:
        c.execute(text(f"truncate {tables} restart identity cascade"))
    engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> ServiceSettings:
    return get_service_settings(
        data_dir=tmp_path / "data", database_url=db_url, lease_seconds=30, retry_backoff_seconds=0, max_upload_mb=5,
        max_request_mb=20, import_dirs=[tmp_path / "imports"], webhook_secret="pbx-secret",
    )


@pytest.fixture
def db(settings: ServiceSettings) -> Iterator[Database]:
    database = Database(settings)
    if not settings.db_url.startswith("sqlite"):  # a SQLite test's copy of the template has them
        with database.sessions() as s:
            seed_builtin_scripts(s)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: ServiceSettings, db: Database):
    return create_app(settings, db=db, executor=NoExecutor())


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@dataclass
class People:
    """One signed-in user per role, and two managers (one with the manager login, one without)."""

    tokens: dict[str, str]
    manager_id: int
    other_manager_id: int
    team_id: int

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def people(db: Database, db_url: str, request: pytest.FixtureRequest) -> People:
    if db_url.startswith("sqlite"):  # its database is a copy of the template with them in it
        made: People = request.getfixturevalue("sqlite_people_template")[1]
        return replace(made, tokens=dict(made.tokens))
    return _people(db)


def _people(db: Database) -> People:
    tokens = {}
    with db.sessions() as s:
        users = {}
        for role in Role:
            users[role.value] = create_user(s, actor=None, username=role.value, password=PASSWORD, role=role)
        team = Team(name="Moscow", head_user_id=users["head_of_sales"].id)
        s.add(team)
        s.flush()
        own = Manager(name="Anna", external_id="101", team_id=team.id, user_id=users["manager"].id)
        other = Manager(name="Boris", external_id="102", team_id=team.id)
        s.add_all([own, other])
        s.commit()
        for role in Role:
            tokens[role.value] = sign_in(s, username=role.value, password=PASSWORD, hours=24)[0]  # a session's worth
        return People(tokens, own.id, other.id, team.id)


@pytest.fixture
def pauses() -> list[float]:
    """The pauses the ``processor`` took between the tries of a download, in seconds: recorded, not waited."""
    return []


@pytest.fixture
def processor(settings: ServiceSettings, db: Database, analyzer, pauses: list[float]):
    """The worker's call processor with the real analyzer (the model loaded once, tests/conftest.py)."""
    from api.processing.pipeline import CallProcessor

    return CallProcessor(settings, db=db, analyzer=analyzer, sleep=pauses.append)
