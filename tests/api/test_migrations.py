"""Migrations on a database with data in it, SQLite and PostgreSQL: revision 0004 turns the stored
objection positions of reviews and disputes into objection keys, and back on downgrade; 0010 moves
the calls' transcripts and reports into a table of their own, and back; 0011 fills the metrics
columns from the reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from api.core.config import get_service_settings
from api.core.db import Database, alembic_config, upgrade
from api.models import Call, CallStatus, Dispute, Review, Role, User
from tests.helpers import PG_URL, ensure_pg_database

BEFORE_KEYS = "0003"
BEFORE_CONTENTS = "0009"


def calls_with_contents() -> sa.Table:
    """The calls table as it was before 0010, with the transcript and report in it."""
    columns = [sa.Column(c.name, c.type, primary_key=c.primary_key, default=c.default._copy() if c.default is not None else None)
               for c in Call.__table__.columns]
    return sa.Table("calls", sa.MetaData(), *columns, sa.Column("transcript", sa.JSON), sa.Column("report", sa.JSON))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = make_url(PG_URL)
    url = url.set(database=f"{url.database}_migrations").render_as_string(hide_password=False)
    ensure_pg_database(url)
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("drop schema public cascade"))
        c.execute(text("create schema public"))
    engine.dispose()
    yield url


REPORT = {"objections": [{"type": "price", "status": "passed", "client": {"turn": 3, "text": "дорого"}},
                         {"type": "have_supplier", "status": "passed", "client": {"turn": 5, "text": "есть поставщик"}}]}


def items(db: Database) -> tuple[list[tuple[str, str]], list[str]]:
    with db.sessions() as s:
        reviews = [(r.kind, r.item) for r in s.scalars(select(Review).order_by(Review.id))]
        disputes = [d.item for d in s.scalars(select(Dispute).order_by(Dispute.id))]
    return reviews, disputes


def test_objection_positions_become_keys(empty_url, tmp_path):
    upgrade(empty_url, BEFORE_KEYS)
    db = Database(get_service_settings(database_url=empty_url, data_dir=tmp_path))
    try:
        with db.sessions() as s:  # a database of the previous release, with reviews by position
            user = User(username="qc", password_hash="x", role=Role.quality_controller)
            s.add(user)
            old = calls_with_contents()
            call_id = s.execute(sa.insert(old).values(status=CallStatus.done, report=REPORT, script_id="ru_b2b_outbound",
                                                      script_version="1.0").returning(old.c.id)).scalar_one()
            bare_id = s.execute(sa.insert(old).values(status=CallStatus.done).returning(old.c.id)).scalar_one()
            s.flush()
            for kind, item, target in [("objection", "1", call_id), ("objection", "0", call_id), ("stage", "greeting", call_id),
                                       ("objection", "7", call_id), ("score", "score", call_id), ("objection", "0", bare_id)]:
                s.add(Review(call_id=target, kind=kind, item=item, human_value="missed", user_id=user.id))
            s.add(Dispute(call_id=call_id, kind="objection", item="1", reason="я ответил"))
            s.commit()

        upgrade(empty_url)
        reviews, disputes = items(db)
        assert reviews == [("objection", "have_supplier@5"), ("objection", "price@3"), ("stage", "greeting"),
                           ("objection", "7"), ("score", "score"), ("objection", "0")]  # what named nothing still does
        assert disputes == ["have_supplier@5"]

        command.downgrade(alembic_config(empty_url), BEFORE_KEYS)
        reviews, disputes = items(db)
        assert [i for _, i in reviews] == ["1", "0", "greeting", "7", "score", "0"] and disputes == ["1"]
        upgrade(empty_url)
        assert items(db)[1] == ["have_supplier@5"]
    finally:
        db.dispose()


def test_transcripts_and_reports_move_to_a_table_of_their_own_and_back(empty_url, tmp_path):
    """0010 keeps every call's transcript and report (and a call without either has no row); the
    call's page and re-scoring read them from the new table; a downgrade puts them back."""
    upgrade(empty_url, BEFORE_CONTENTS)
    old = calls_with_contents()
    transcript = {"language": "ru", "turns": [{"speaker": "manager", "text": "Добрый день!"}]}
    report = {**REPORT, "metrics": {"manager_talk_time": 61.5, "client_talk_time": 40.0, "manager_fillers": 3}}
    engine = create_engine(empty_url)
    try:
        with engine.begin() as c:
            scored = c.execute(sa.insert(old).values(status=CallStatus.done, transcript=transcript, report=report)
                               .returning(old.c.id)).scalar_one()
            queued = c.execute(sa.insert(old).values(status=CallStatus.queued).returning(old.c.id)).scalar_one()
        upgrade(empty_url)
        with engine.connect() as c:
            rows = c.execute(text("select call_id from call_contents")).scalars().all()
            columns = {col["name"] for col in sa.inspect(c).get_columns("calls")}
        assert rows == [scored] and not {"transcript", "report"} & columns
        db = Database(get_service_settings(database_url=empty_url, data_dir=tmp_path))
        try:
            with db.sessions() as s:
                call = s.get(Call, scored)
                assert (call.transcript, call.report) == (transcript, report)
                assert (call.talk_time, call.manager_fillers) == (101.5, 3.0)  # 0011: what the KPIs read, as columns
                assert s.get(Call, queued).report is None and s.get(Call, queued).talk_time is None
        finally:
            db.dispose()
        command.downgrade(alembic_config(empty_url), BEFORE_CONTENTS)
        with engine.connect() as c:
            back = c.execute(select(old.c.id, old.c.transcript, old.c.report).order_by(old.c.id)).all()
        assert [tuple(r) for r in back] == [(scored, transcript, report), (queued, None, None)]
    finally:
        engine.dispose()
