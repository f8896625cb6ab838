"""The KPIs' input frames: a missing column is named, naive times are UTC, directions are normalised."""

from __future__ import annotations

import pytest

from analyzer.sales.errors import KpiInputError
from analyzer.sales.metrics import call_activity

from .department import APRIL, row


def test_missing_column_is_a_clear_error(calls):
    with pytest.raises(KpiInputError, match="calls frame lacks column.*started_at"):
        call_activity(calls.drop(columns="started_at"), period=APRIL)


def test_naive_times_are_utc_and_directions_are_normalised(calls):
    calls = calls.assign(started_at=calls["started_at"].dt.tz_localize(None), direction=["out", "IN", "out", "out", "out"])
    r = row(call_activity(calls, period=APRIL), manager_id="m1")
    assert (r["calls"], r["calls_inbound"], r["calls_outbound"]) == (2, 1, 1)
