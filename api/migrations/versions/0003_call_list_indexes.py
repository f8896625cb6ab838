"""call list indexes: the filters and sorts of GET /calls answered from an index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 18:40:00

Measured with benchmarks/api_latency.py at 100,000 calls. On SQLite a call's row holds its
transcript and report inline (tens of KB in overflow pages) before the score and uncertain
columns, so every filter or sort that needs those from the table walks the overflow chain; on
PostgreSQL the counts scanned the heap. These indexes carry every column the list filters and
sorts by:

- ix_calls_list: manager (every head of sales' and manager's list is limited to their managers),
  started_at (date range, default sort), status, score (range, sort), uncertain.
- ix_calls_status_list: the same led by status; SQLite picks an index with an equality on its
  first column, and would otherwise take ix_calls_queue and read every done call.
- ix_call_objections_type_status: calls with an objection of a type left unhandled (status
  'missed'; ``handled`` is not the same thing when the verdict is uncertain).
"""
from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index('ix_calls_list', ['manager_id', 'started_at', 'status', 'score', 'uncertain'], unique=False)
        batch_op.create_index('ix_calls_status_list', ['status', 'manager_id', 'started_at', 'score'], unique=False)
    with op.batch_alter_table('call_objections', schema=None) as batch_op:
        batch_op.create_index('ix_call_objections_type_status', ['type', 'status', 'call_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call_objections', schema=None) as batch_op:
        batch_op.drop_index('ix_call_objections_type_status')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_status_list')
        batch_op.drop_index('ix_calls_list')
