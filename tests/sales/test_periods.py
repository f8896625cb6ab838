"""Periods: months and quarters as people write them, day ranges and weeks in a time zone."""

from __future__ import annotations

from datetime import date

import pytest

from analyzer.sales.periods import Period, parse_period

from .department import APRIL, T


@pytest.mark.parametrize("text, first, after", [
    ("2024-05", date(2024, 5, 1), date(2024, 6, 1)),
    ("05.2024", date(2024, 5, 1), date(2024, 6, 1)),
    ("2024-12", date(2024, 12, 1), date(2025, 1, 1)),
    ("май 2024", date(2024, 5, 1), date(2024, 6, 1)),
    ("2024-Q2", date(2024, 4, 1), date(2024, 7, 1)),
    ("Q4 2024", date(2024, 10, 1), date(2025, 1, 1)),
])
def test_parse_period(text, first, after):
    assert parse_period(text) == (first, after)


def test_period_constructors():
    assert Period.days("2024-04-01", "2024-04-30", tz="UTC") == APRIL
    q = Period.quarter(2024, 2, tz="Europe/Moscow")
    assert (q.start, q.end) == (T("2024-03-31 21:00"), T("2024-06-30 21:00"))
    assert (q.first_day, q.last_day) == (date(2024, 4, 1), date(2024, 6, 30))  # local days, the last included
    assert len(q.week_starts()) == 13  # Mondays 1 April .. 24 June (30 June is a Sunday)
