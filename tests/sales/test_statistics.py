"""Quality vs outcome: which script parts go with won deals, and the score intervals behind the verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzer.sales.report import to_records
from analyzer.sales.statistics import newcombe_interval, quality_vs_outcome, wilson_interval

from .department import APRIL, T, no_nan, row


@pytest.mark.parametrize("x1, n1, x2, n2, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
], ids=["56/70-48/80", "9/10-3/10", "5/56-0/29", "0/10-0/20", "10/10-0/20"])
def test_newcombe_interval_matches_the_paper(x1, n1, x2, n2, low, high):
    lo, hi = newcombe_interval(np.array([x1]), np.array([n1]), np.array([x2]), np.array([n2]))
    assert (round(float(lo[0]), 4), round(float(hi[0]), 4)) == (low, high)


def test_wilson_interval():
    # 81 of 263 (Newcombe 1998b, single proportion example): 0.2553 to 0.3662
    lo, hi = wilson_interval(np.array([81]), np.array([263]))
    assert (round(float(lo[0]), 4), round(float(hi[0]), 4)) == (0.2553, 0.3662)


def test_quality_vs_outcome_rules(data):
    d = data.prepared()
    qo = quality_vs_outcome(d.calls, d.call_stages, d.call_objections, d.deals, d.links, period=APRIL)
    # closed in April with calls: D1 (won; c1) and D2 (lost; c2). D5, D6 have no calls, D3 is open.
    # greeting passed in both -> done 2 (1 won), missed 0: no comparison possible
    assert row(qo, factor="stage", name="greeting") | {} == {
        "scope": "all", "factor": "stage", "name": "greeting", "deals_done": 2, "won_done": 1, "win_rate_done": 0.5,
        "deals_missed": 0, "won_missed": 0, "win_rate_missed": None, "difference": None, "ci_low": None,
        "ci_high": None, "verdict": "not_enough_data"}
    # needs discovery: passed on c1 (D1), only uncertain on c2 -> D2 is left out
    r = row(qo, factor="stage", name="needs_discovery")
    assert (r["deals_done"], r["deals_missed"]) == (1, 0)
    # next step missed in both
    r = row(qo, factor="stage", name="next_step")
    assert (r["deals_missed"], r["won_missed"], r["win_rate_missed"]) == (2, 1, 0.5)
    # objections: price handled in D1, "think it over" dropped in D1, "no time" only uncertain (left out)
    assert row(qo, factor="objection", name="price")["deals_done"] == 1
    assert row(qo, factor="objection", name="think_it_over")["deals_missed"] == 1
    assert "no_time" not in set(qo["name"])
    assert no_nan(to_records(qo))


def _outcome_frames(done_won: int, done_n: int, missed_won: int, missed_n: int):
    """One call per deal; the stage passed in the first done_n deals, missed in the rest."""
    n = done_n + missed_n
    ids = [f"d{i}" for i in range(n)]
    won = [True] * done_won + [False] * (done_n - done_won) + [True] * missed_won + [False] * (missed_n - missed_won)
    deals = pd.DataFrame({"deal_id": ids, "manager_id": "m", "created_at": T("2024-04-01"),
                          "closed_at": T("2024-04-20"), "status": ["won" if w else "lost" for w in won]})
    calls = pd.DataFrame({"call_id": range(n), "manager_id": "m", "started_at": T("2024-04-02")})
    stages = pd.DataFrame({"call_id": range(n), "stage_id": "next_step",
                           "status": ["passed"] * done_n + ["missed"] * missed_n})
    links = pd.DataFrame({"call_id": range(n), "lead_id": None, "deal_id": ids})
    return calls, stages, deals, links


@pytest.mark.parametrize("counts, verdict", [
    ((18, 20, 5, 20), "helps"),              # 90% vs 25%: the interval is far above 0
    ((5, 20, 18, 20), "hurts"),
    ((11, 20, 10, 20), "no_clear_effect"),   # 55% vs 50%
    ((9, 10, 1, 10), "not_enough_data"),     # a big difference, but 10 < min_n = 20 deals a side
])
def test_quality_vs_outcome_verdicts(counts, verdict):
    calls, stages, deals, links = _outcome_frames(*counts)
    qo = quality_vs_outcome(calls, stages, None, deals, links, period=APRIL)
    r = to_records(qo)[0]
    x1, n1, x2, n2 = counts
    lo, hi = newcombe_interval(np.array([x1]), np.array([n1]), np.array([x2]), np.array([n2]))
    assert r["verdict"] == verdict
    assert (r["difference"], r["ci_low"], r["ci_high"]) == pytest.approx((x1 / n1 - x2 / n2, lo[0], hi[0]))


def test_calls_after_the_close_do_not_count():
    calls, stages, deals, links = _outcome_frames(1, 1, 0, 0)
    calls["started_at"] = T("2024-04-25")  # after the close on 20 April: an after-sale call
    assert quality_vs_outcome(calls, stages, None, deals, links, period=APRIL).empty
