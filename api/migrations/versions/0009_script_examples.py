"""What reviewers decided, learned into a script version

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00

A version made by learning from reviews (POST /api/v1/scripts/{id}/learn) keeps the examples it was
trained on beside its YAML: the client utterances reviewers confirmed as objections or not, and the
answers they judged. Not in the YAML itself, which every user may read, since each example is a
piece of a call and names it.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('script_versions') as batch:
        batch.add_column(sa.Column('examples', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('script_versions') as batch:
        batch.drop_column('examples')
