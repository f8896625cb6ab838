"""Failed sign-ins per username and per address, for throttling

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 12:00:00

Sign-in had no throttling: 41 guesses a second from 8 connections, each a scrypt that slowed every
other request. One row per username and per address counts failures; a key past its limit is
locked for a while, doubled with every further failure (api/auth/throttle.py).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.core.db import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sign_in_failures',
        sa.Column('key', sa.String(length=300), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_at', UTCDateTime(), nullable=False),
        sa.Column('locked_until', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('sign_in_failures')
