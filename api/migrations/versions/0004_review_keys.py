"""review keys: reviews and disputes of objections name the objection by type and client utterance

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:00:00

Until now an objection's review or dispute stored its position in the call's report ("0", "1",
...); a re-score that found one more or one fewer objection moved the positions, and a verdict
landed on another objection. The item is now the objection's key, ``<type>@<client utterance
index>`` (``price@3``), or ``<type>#<n>`` (the n-th of its type) for a report without utterance
indexes; see api.calls.results.objection_keys. This revision rewrites the stored positions into
keys from each call's report; no table changes. The key rule is copied here so that this
migration keeps doing what it did when the rule changes later.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_calls = sa.table("calls", sa.column("id", sa.Integer), sa.column("report", sa.JSON))
_items = [sa.table(name, sa.column("id", sa.Integer), sa.column("call_id", sa.Integer), sa.column("kind", sa.String),
                   sa.column("item", sa.String)) for name in ("reviews", "disputes")]


def _keys(objections: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    seen: dict[str, int] = {}
    for o in objections:
        seen[o["type"]] = seen.get(o["type"], 0) + 1
        turn = (o.get("client") or {}).get("turn")
        keys.append(f"{o['type']}@{turn}" if isinstance(turn, int) else f"{o['type']}#{seen[o['type']]}")
    return keys


def _rewrite(convert: Any) -> None:
    bind = op.get_bind()
    reports: dict[int, list[str]] = {}
    for table in _items:
        rows = bind.execute(sa.select(table.c.id, table.c.call_id, table.c.item).where(table.c.kind == "objection")).all()
        for row_id, call_id, item in rows:
            if call_id not in reports:
                report = bind.execute(sa.select(_calls.c.report).where(_calls.c.id == call_id)).scalar()
                reports[call_id] = _keys((report or {}).get("objections", []))
            new = convert(item, reports[call_id])
            if new is not None and new != item:
                bind.execute(sa.update(table).where(table.c.id == row_id).values(item=new))


def _to_key(item: str, keys: list[str]) -> str | None:
    if item.isdigit() and int(item) < len(keys):
        return keys[int(item)]
    return None  # already a key, or a position the report does not have: it addressed nothing before either


def _to_position(item: str, keys: list[str]) -> str | None:
    return str(keys.index(item)) if item in keys else None


def upgrade() -> None:
    _rewrite(_to_key)


def downgrade() -> None:
    _rewrite(_to_position)
