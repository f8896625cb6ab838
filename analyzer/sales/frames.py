"""The input frames of the KPIs: canonical columns, checks and coercion, and :class:`SalesData` holding them all.

Canonical columns (extra columns are ignored; times are tz-aware UTC, naive = UTC):

=================== ==========================================================================
calls               call_id, manager_id, started_at, direction (inbound|outbound), duration (s),
                    talk_time (s of conversation; duration when missing), score (0-100, NaN when
                    unscored), fillers (the manager's filler words in the call), crm_lead_id,
                    crm_deal_id, client_phone; optional team_id, department_id
call_stages         call_id, stage_id, status (passed|missed|uncertain)
call_objections     call_id, type, status (passed = handled|missed|uncertain)
leads               lead_id, created_at, manager_id, source, client_phone, first_response_at
                    (optional: the CRM's own first-response time)
deals               deal_id, lead_id, client, client_phone, manager_id, created_at, closed_at,
                    status (won|lost|open), amount, stage
deal_stage_history  deal_id, stage, entered_at
plans               manager_id, period_start, period_end (half-open), revenue_plan,
                    activity_plan, activity_kind (calls|meetings)
managers            manager_id, name, team_id, department_id
meetings            manager_id, held_at (optional; the fact for meeting plans)
links               call_id, lead_id, deal_id (:func:`analyzer.sales.linking.link_calls`)
=================== ==========================================================================

:mod:`analyzer.sales.imports` produces leads, deals, plans and stage history from CRM exports (with
``manager`` names; :func:`analyzer.sales.linking.attach_manager_ids` adds ``manager_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from analyzer.sales.errors import KpiInputError
from analyzer.sales.linking import link_calls

_REQUIRED: dict[str, tuple[str, ...]] = {
    "calls": ("call_id", "manager_id", "started_at"),
    "call_stages": ("call_id", "stage_id", "status"),
    "call_objections": ("call_id", "type", "status"),
    "leads": ("lead_id", "created_at", "manager_id"),
    "deals": ("deal_id", "manager_id", "created_at", "closed_at", "status"),
    "deal_stage_history": ("deal_id", "stage", "entered_at"),
    "plans": ("manager_id", "period_start", "period_end"),
    "managers": ("manager_id",),
    "meetings": ("manager_id", "held_at"),
    "links": ("call_id", "lead_id", "deal_id"),
}
_OPTIONAL: dict[str, dict[str, Any]] = {
    "calls": {"direction": None, "duration": np.nan, "talk_time": np.nan, "score": np.nan, "fillers": np.nan,
              "crm_lead_id": None, "crm_deal_id": None, "client_phone": None},
    "leads": {"source": None, "client_phone": None, "first_response_at": pd.NaT},
    "deals": {"lead_id": None, "client": None, "client_phone": None, "amount": np.nan, "stage": None},
    "plans": {"revenue_plan": np.nan, "activity_plan": np.nan, "activity_kind": "calls"},
}
_TIMES = {"calls": ("started_at",), "leads": ("created_at", "first_response_at"), "deals": ("created_at", "closed_at"),
          "deal_stage_history": ("entered_at",), "plans": ("period_start", "period_end"), "meetings": ("held_at",)}
_DIRECTIONS = {"in": "inbound", "incoming": "inbound", "входящий": "inbound", "out": "outbound",
               "outgoing": "outbound", "исходящий": "outbound"}


def empty_frame(name: str) -> pd.DataFrame:
    """An empty input frame with the canonical columns of ``name`` (``calls``, ``deals``, ...)."""
    cols = list(_REQUIRED[name]) + [c for c in _OPTIONAL.get(name, {}) if c not in _REQUIRED[name]]
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    for c in _TIMES.get(name, ()):
        df[c] = pd.Series(dtype="datetime64[ns, UTC]")
    return df


def prepare(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Check and coerce one input frame: required columns present, optional ones added, times UTC."""
    if frame is None:
        return empty_frame(name)
    missing = [c for c in _REQUIRED[name] if c not in frame.columns]
    if missing:
        raise KpiInputError(f"{name} frame lacks column(s) {', '.join(missing)}; it needs {', '.join(_REQUIRED[name])}")
    out = frame
    extra = {c: v for c, v in _OPTIONAL.get(name, {}).items() if c not in frame.columns}
    if extra:
        out = out.assign(**extra)
    for c in _TIMES.get(name, ()):
        if c in out.columns and str(out[c].dtype) != "datetime64[ns, UTC]":
            out = out.assign(**{c: _utc(out[c]).astype("datetime64[ns, UTC]")})
    if name == "calls" and len(out):
        d = out["direction"]
        if not (d.isin(["inbound", "outbound"]) | d.isna()).all():
            low = d.astype("string").str.strip().str.casefold()
            out = out.assign(direction=low.replace(_DIRECTIONS).astype(object))
    return out


def _utc(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize("UTC")
    return pd.to_datetime(s, utc=True, errors="coerce")


@dataclass(frozen=True)
class SalesData:
    """All the input frames of a report. Missing ones are empty; :meth:`prepared` checks and coerces them."""

    calls: pd.DataFrame | None = None
    call_stages: pd.DataFrame | None = None
    call_objections: pd.DataFrame | None = None
    leads: pd.DataFrame | None = None
    deals: pd.DataFrame | None = None
    deal_stage_history: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None
    managers: pd.DataFrame | None = None
    meetings: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    """Call-to-lead/deal links; computed with :func:`analyzer.sales.linking.link_calls` when missing."""

    def prepared(self) -> SalesData:
        kw = {n: prepare(n, getattr(self, n)) for n in _REQUIRED if n not in ("managers", "meetings", "links")}
        kw["managers"] = prepare("managers", self.managers) if self.managers is not None else None
        kw["meetings"] = prepare("meetings", self.meetings) if self.meetings is not None else None
        data = replace(self, **kw)
        if self.links is None:
            assert data.calls is not None and data.leads is not None and data.deals is not None
            links = link_calls(data.calls, data.leads, data.deals)
        else:
            links = prepare("links", self.links)
        return replace(data, links=links)
