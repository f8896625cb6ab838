"""CRM tables: leads, deals, deal stage history, sales plans; departments (teams.department_id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 18:24:04.787734
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import api.core.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_deal_stages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deal_key', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=200), nullable=False),
    sa.Column('entered_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('deal_key', 'stage', 'entered_at')
    )
    with op.batch_alter_table('crm_deal_stages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_deal_stages_deal_key'), ['deal_key'], unique=False)

    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('crm_deals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('crm_id', sa.String(length=100), nullable=False),
    sa.Column('lead_key', sa.String(length=200), nullable=True),
    sa.Column('crm_lead_id', sa.String(length=100), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('client', sa.String(length=300), nullable=True),
    sa.Column('client_phone', sa.String(length=32), nullable=True),
    sa.Column('client_key', sa.String(length=310), nullable=True),
    sa.Column('manager_name', sa.String(length=200), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('created_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', api.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stage', sa.String(length=200), nullable=True),
    sa.Column('pipeline', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('currency', sa.String(length=10), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('imported_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['managers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('crm_deals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_deals_client_key'), ['client_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_deals_client_phone'), ['client_phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_deals_crm_id'), ['crm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_deals_lead_key'), ['lead_key'], unique=False)
        batch_op.create_index('ix_crm_deals_manager_closed', ['manager_id', 'closed_at'], unique=False)
        batch_op.create_index('ix_crm_deals_manager_created', ['manager_id', 'created_at'], unique=False)

    op.create_table('crm_leads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('crm', sa.String(length=20), nullable=False),
    sa.Column('crm_id', sa.String(length=100), nullable=False),
    sa.Column('created_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_response_at', api.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('manager_name', sa.String(length=200), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('client', sa.String(length=300), nullable=True),
    sa.Column('client_phone', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('imported_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['managers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('crm_leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crm_leads_client_phone'), ['client_phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_crm_leads_crm_id'), ['crm_id'], unique=False)
        batch_op.create_index('ix_crm_leads_manager_created', ['manager_id', 'created_at'], unique=False)

    op.create_table('sales_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('manager_name', sa.String(length=200), nullable=False),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('period_start', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('period_end', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('activity_kind', sa.String(length=10), nullable=False),
    sa.Column('revenue_plan', sa.Float(), nullable=True),
    sa.Column('activity_plan', sa.Float(), nullable=True),
    sa.Column('imported_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['managers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('sales_plans', schema=None) as batch_op:
        batch_op.create_index('ix_sales_plans_manager_period', ['manager_id', 'period_start'], unique=False)

    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_teams_department_id'), ['department_id'], unique=False)
        batch_op.create_foreign_key('fk_teams_department_id', 'departments', ['department_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_constraint('fk_teams_department_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_teams_department_id'))
        batch_op.drop_column('department_id')

    with op.batch_alter_table('sales_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_sales_plans_manager_period')

    op.drop_table('sales_plans')
    with op.batch_alter_table('crm_leads', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_leads_manager_created')
        batch_op.drop_index(batch_op.f('ix_crm_leads_crm_id'))
        batch_op.drop_index(batch_op.f('ix_crm_leads_client_phone'))

    op.drop_table('crm_leads')
    with op.batch_alter_table('crm_deals', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_deals_manager_created')
        batch_op.drop_index('ix_crm_deals_manager_closed')
        batch_op.drop_index(batch_op.f('ix_crm_deals_lead_key'))
        batch_op.drop_index(batch_op.f('ix_crm_deals_crm_id'))
        batch_op.drop_index(batch_op.f('ix_crm_deals_client_phone'))
        batch_op.drop_index(batch_op.f('ix_crm_deals_client_key'))

    op.drop_table('crm_deals')
    op.drop_table('departments')
    with op.batch_alter_table('crm_deal_stages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crm_deal_stages_deal_key'))

    op.drop_table('crm_deal_stages')
