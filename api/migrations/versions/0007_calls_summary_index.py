"""SQLite: an index of calls by id holding every column a call list row shows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00

SQLite keeps a call's transcript and report inline in its row, before the score columns, so reading
a list row walks the overflow pages of both (22 KB a call). Read from this index instead, the 50
rows of a page cost half (1.0 -> 0.5 ms at 100,000 calls). PostgreSQL keeps large values out of
line (TOAST) and needs nothing.
"""
from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SUMMARY_COLUMNS = ['id', 'status', 'error_code', 'error_message', 'manager_id', 'client_phone', 'direction', 'started_at',
                   'duration', 'language', 'external_id', 'crm_lead_id', 'crm_deal_id', 'source', 'score', 'machine_score',
                   'uncertain', 'script_id', 'script_version', 'attempts', 'created_at', 'processed_at']


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.create_index('ix_calls_summary', 'calls', SUMMARY_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('ix_calls_summary', table_name='calls')
