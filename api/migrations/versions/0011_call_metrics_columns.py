"""The metrics the KPIs read as columns of the call: talk time and the manager's fillers

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:00:00

A KPI table over a month read every call's report (8 KB of JSON) for two numbers; at 100,000 calls
that was most of its time. They are columns now, set when a call is scored, and filled here from
the stored reports.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('talk_time', sa.Float(), nullable=True))
        batch.add_column(sa.Column('manager_fillers', sa.Float(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        metric = "json_extract(report, '$.metrics.{}')"
    else:
        metric = "CAST(report -> 'metrics' ->> '{}' AS DOUBLE PRECISION)"
    op.execute(
        f"UPDATE calls SET talk_time = (SELECT {metric.format('manager_talk_time')} + {metric.format('client_talk_time')} "
        f"FROM call_contents WHERE call_contents.call_id = calls.id), "
        f"manager_fillers = (SELECT {metric.format('manager_fillers')} FROM call_contents WHERE call_contents.call_id = calls.id) "
        "WHERE id IN (SELECT call_id FROM call_contents WHERE report IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('manager_fillers')
        batch.drop_column('talk_time')
