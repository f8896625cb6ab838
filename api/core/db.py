"""Database engine and sessions: SQLite by default, PostgreSQL in production, the same code. The
declarative ``Base`` of every table and the column type they share (``UTCDateTime``) are here.

The schema is created and upgraded by Alembic (``api/migrations``), never by ``create_all``, so
what the tests run is what production runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from api.core.config import ServiceSettings
from api.core.errors import ServiceError


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class NulInText(ServiceError):
    status = 400
    code = "invalid_value"


@event.listens_for(Base, "before_insert", propagate=True)
@event.listens_for(Base, "before_update", propagate=True)
def _refuse_nul(mapper: Any, _connection: Any, target: Any) -> None:
    """No text with a NUL character is written, on any database: PostgreSQL refuses one (a 500 before
    it was mapped) while SQLite stores it, so the same request answered differently. Checked here,
    where every row the service writes passes, rather than on each of the inputs that reach a row."""
    for prop in mapper.column_attrs:
        value = getattr(target, prop.key, None)
        if isinstance(value, str) and "\x00" in value:
            raise NulInText(f"{prop.key}: the text contains a NUL character (\\0), which cannot be stored; remove it "
                            "and send again", details=[{"field": prop.key, "message": "contains a NUL character"}])


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size,
                               max_overflow=pool_size)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    """The Alembic configuration of this project's migrations for a database URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to the newest migration (or to ``revision``)."""
    from alembic import command

    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the folder
    command.upgrade(alembic_config(url), revision)


class Database:
    """Engine + session factory for one database URL."""

    def __init__(self, settings: ServiceSettings):
        self.url = settings.db_url
        self.engine = make_engine(self.url)
        self.sessions = make_sessionmaker(self.engine)
        # sessions for requests that only read: no BEGIN and ROLLBACK around their queries (two round
        # trips on PostgreSQL, a quarter of a call detail's CPU there); the same pool
        self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.read_sessions = make_sessionmaker(self.read_engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
