"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL: a column,
index or constraint that only one of them has is a database that behaves unlike the code (0001
left PostgreSQL without the team head's foreign key, so deleting a user left teams pointing at
nobody)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, delete, select

from api.auth.service import create_user
from api.models import Role, Team, User
from api.tables import metadata


def test_migrated_schema_is_the_models(db_url):
    engine = create_engine(db_url)

    def on_this_database(obj, _name, type_, reflected, _compare_to) -> bool:
        # an index the models create on one database only (``Index(...).ddl_if(dialect=...)``)
        only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return reflected or type_ != "index" or only in (None, engine.dialect.name)

    try:
        with engine.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c, opts={"include_object": on_this_database}), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_deleting_a_team_head_leaves_the_team_without_a_head(db):
    with db.sessions() as s:
        head = create_user(s, actor=None, username="head", password="marble-fjord-thimble", role=Role.head_of_sales)
        s.add(Team(name="North", head_user_id=head.id))
        s.commit()
        s.execute(delete(User).where(User.id == head.id))
        s.commit()
        assert s.scalar(select(Team.head_user_id).where(Team.name == "North")) is None
