"""A narrow calls table: the transcript and report in a table of their own, keyset indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 00:00:00

A call's transcript (with word timings) and report are tens of KB; in the calls table SQLite kept
them inline, so every list, count and filter walked them (0007 worked around it with a covering
index and an ``INDEXED BY`` hint). They move to ``call_contents``, one row a call, and the calls
table keeps what lists, filters and KPIs read. The call list pages by keyset (cursor) on
(started_at, id) and (score, id): those are its indexes now. The list's in-process copy that
polled ``updated_at`` is gone, and its index with it.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

SUMMARY_COLUMNS = ['id', 'status', 'error_code', 'error_message', 'manager_id', 'client_phone', 'direction', 'started_at',
                   'duration', 'language', 'external_id', 'crm_lead_id', 'crm_deal_id', 'source', 'score', 'machine_score',
                   'uncertain', 'script_id', 'script_version', 'attempts', 'created_at', 'processed_at']


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.create_table(
        'call_contents',
        sa.Column('call_id', sa.Integer(), nullable=False),
        sa.Column('transcript', sa.JSON(), nullable=True),
        sa.Column('report', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('call_id'),
    )
    op.execute('INSERT INTO call_contents (call_id, transcript, report) SELECT id, transcript, report FROM calls '
               'WHERE transcript IS NOT NULL OR report IS NOT NULL')
    if sqlite:
        op.drop_index('ix_calls_summary', table_name='calls')
    op.drop_index('ix_calls_updated', table_name='calls')
    op.drop_index('ix_calls_started', table_name='calls')
    op.drop_index('ix_calls_score', table_name='calls')
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('transcript')
        batch.drop_column('report')
    op.create_index('ix_calls_started', 'calls', ['started_at', 'id'])
    op.create_index('ix_calls_score', 'calls', ['score', 'id'])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.drop_index('ix_calls_score', table_name='calls')
    op.drop_index('ix_calls_started', table_name='calls')
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('transcript', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('report', sa.JSON(), nullable=True))
    op.execute('UPDATE calls SET transcript = (SELECT transcript FROM call_contents WHERE call_id = calls.id), '
               'report = (SELECT report FROM call_contents WHERE call_id = calls.id)')
    op.drop_table('call_contents')
    op.create_index('ix_calls_score', 'calls', ['score'])
    op.create_index('ix_calls_started', 'calls', ['started_at'])
    op.create_index('ix_calls_updated', 'calls', ['updated_at'])
    if sqlite:
        op.create_index('ix_calls_summary', 'calls', SUMMARY_COLUMNS)
