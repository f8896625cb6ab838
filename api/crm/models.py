"""CRM tables: leads, deals, their stage history and sales plans (departments are with the teams, in
:mod:`api.models`).

Every imported row carries the stable key :mod:`analyzer.sales.imports` gives it (``amocrm:deal:10452``), so
importing the same export again finds the same rows: nothing changes unless the CRM's data did.
The responsible manager is kept as the CRM spells it (``manager_name``) and resolved to a
:class:`api.models.Manager` (``manager_id``) by name or external id; rows whose manager is not
known yet are resolved again after every import (e.g. once ``managers.csv`` is loaded).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base, UTCDateTime, utcnow
from api.models import Department, Manager  # noqa: F401  (Department: api.kpi.service imports it from here, for now)


class Lead(Base):
    __tablename__ = "crm_leads"
    __table_args__ = (Index("ix_crm_leads_manager_created", "manager_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, doc="<crm>:lead:<id>")
    crm: Mapped[str] = mapped_column(String(20))
    crm_id: Mapped[str] = mapped_column(String(100), index=True, doc="the lead's id in its CRM")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    manager_name: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey(Manager.id, ondelete="SET NULL"))
    source: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(300))
    client_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(300))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deal(Base):
    __tablename__ = "crm_deals"
    __table_args__ = (
        Index("ix_crm_deals_manager_closed", "manager_id", "closed_at"),
        Index("ix_crm_deals_manager_created", "manager_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, doc="<crm>:deal:<id>")
    crm: Mapped[str] = mapped_column(String(20))
    crm_id: Mapped[str] = mapped_column(String(100), index=True, doc="the deal's id in its CRM")
    lead_key: Mapped[str | None] = mapped_column(String(200), index=True, doc="<crm>:lead:<lead id>")
    crm_lead_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(300))
    client: Mapped[str | None] = mapped_column(String(300))
    client_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    client_key: Mapped[str | None] = mapped_column(String(310), index=True, doc="phone, else 'name:' + the casefolded name")
    manager_name: Mapped[str | None] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey(Manager.id, ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage: Mapped[str | None] = mapped_column(String(200))
    pipeline: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), doc="won, lost or open")
    amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str | None] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DealStageEntry(Base):
    """A deal entered a stage at a time: one row of the stage history (the funnel)."""

    __tablename__ = "crm_deal_stages"
    __table_args__ = (UniqueConstraint("deal_key", "stage", "entered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_key: Mapped[str] = mapped_column(String(200), index=True)
    stage: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SalesPlan(Base):
    """A manager's plan for a period ``[period_start, period_end)``: revenue and/or activity."""

    __tablename__ = "sales_plans"
    __table_args__ = (Index("ix_sales_plans_manager_period", "manager_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True, doc="plan:<manager>:<start>:<end>:<kind>")
    manager_name: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey(Manager.id, ondelete="SET NULL"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    activity_kind: Mapped[str] = mapped_column(String(10), default="calls", doc="calls or meetings")
    revenue_plan: Mapped[float | None] = mapped_column(Float)
    activity_plan: Mapped[float | None] = mapped_column(Float)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
