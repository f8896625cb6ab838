"""call list indexes carry the call id on PostgreSQL; the team head's foreign key

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:15:00

The list's counts for a missed stage or an unhandled objection join call ids from the verdict
tables with the calls of the visible managers; without the id in the list indexes PostgreSQL
read the calls table for every candidate (17.9 ms of its CPU a list request at 100,000 calls).
With ``INCLUDE (id)`` it answers from the index alone. SQLite keeps the row id in every index
already, so nothing changes there.

0001 declared ``teams.head_user_id -> users.id`` with ``use_alter``, which ``create_table`` does
not emit, so PostgreSQL databases never got that constraint (deleting a user left teams pointing
at nobody instead of setting the head to NULL). It is created here.
"""
from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_LIST = ['manager_id', 'started_at', 'status', 'score', 'uncertain']
_STATUS_LIST = ['status', 'manager_id', 'started_at', 'score']


_HEAD_FK = 'fk_teams_head_user_id_users'


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('update teams set head_user_id = null where head_user_id not in (select id from users)')
    op.create_foreign_key(_HEAD_FK, 'teams', 'users', ['head_user_id'], ['id'], ondelete='SET NULL')
    op.drop_index('ix_calls_list', table_name='calls')
    op.create_index('ix_calls_list', 'calls', _LIST, postgresql_include=['id'])
    op.drop_index('ix_calls_status_list', table_name='calls')
    op.create_index('ix_calls_status_list', 'calls', _STATUS_LIST, postgresql_include=['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_constraint(_HEAD_FK, 'teams', type_='foreignkey')
    op.drop_index('ix_calls_status_list', table_name='calls')
    op.create_index('ix_calls_status_list', 'calls', _STATUS_LIST)
    op.drop_index('ix_calls_list', table_name='calls')
    op.create_index('ix_calls_list', 'calls', _LIST)
