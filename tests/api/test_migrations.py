"""Migrations on a database with data in it: revision 0004 turns the stored objection positions of
reviews and disputes into objection keys, and back on downgrade; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from api.core.config import get_service_settings
from api.core.db import Database, alembic_config, upgrade
from api.models import Call, CallStatus, Dispute, Review, Role, User
from tests.helpers import PG_URL, ensure_pg_database

BEFORE_KEYS = "0003"


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
            call = Call(status=CallStatus.done, report=REPORT, script_id="ru_b2b_outbound", script_version="1.0")
            bare = Call(status=CallStatus.done, report=None)
            s.add_all([user, call, bare])
            s.flush()
            for kind, item, call_id in [("objection", "1", call.id), ("objection", "0", call.id), ("stage", "greeting", call.id),
                                        ("objection", "7", call.id), ("score", "score", call.id), ("objection", "0", bare.id)]:
                s.add(Review(call_id=call_id, kind=kind, item=item, human_value="missed", user_id=user.id))
            s.add(Dispute(call_id=call.id, kind="objection", item="1", reason="я ответил"))
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
