"""an index of calls.updated_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00

Each API process keeps the call list's filter and sort columns in memory
(``api/calls/list_index.py``) and asks before every list for the newest ``updated_at``, then for
the calls changed since: both are answered from this index.
"""
from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_calls_updated', 'calls', ['updated_at'])


def downgrade() -> None:
    op.drop_index('ix_calls_updated', table_name='calls')
