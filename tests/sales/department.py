"""The small department the KPI tests count by hand (the fixtures are in ``conftest.py``), and helpers to read their frames.

April 2024 (periods in UTC unless a test says otherwise):

- managers m1, m2 (team A) and m3 (team B: no calls, no leads, no deals), all department S;
- calls c1, c2 (m1), c3 (m2) in April, c4 (m2) in May, c5 (m1) on 31 March 23:00 UTC = 1 April 02:00 Moscow;
- leads L1, L2 (m1), L3, L4 (m2) in April, L5 (m1) in March;
- deals D1 won 100 000 (L1), D2 lost (L2), D5 won 30 000 (L5, the same client as D1, closed earlier:
  D1 is a repeat sale) of m1; D3 open (L3), D6 won 20 000 (no lead; the client had D7, won in March) of m2.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analyzer.sales.periods import Period
from analyzer.sales.report import to_records


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


APRIL = Period.month(2024, 4, tz="UTC")
EMPTY = Period.month(2023, 1, tz="UTC")
FUNNEL = ["Первичный контакт", "Переговоры", "Успешно реализовано"]


def row(frame: pd.DataFrame, **keys) -> dict:
    """The one row of ``frame`` with these key values, as JSON-safe values."""
    mask = np.ones(len(frame), dtype=bool)
    for k, v in keys.items():
        mask &= (frame[k] == v).to_numpy(dtype=bool, na_value=False)
    found = to_records(frame[mask])
    assert len(found) == 1, (keys, found)
    return found[0]


def no_nan(records: list[dict]) -> bool:
    return all(not (isinstance(v, float) and not math.isfinite(v)) for r in records for v in r.values())
