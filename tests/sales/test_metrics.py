"""KPIs against values computed by hand on a small department (``department.py``; the arithmetic is
in the comments)."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzer.sales.errors import KpiInputError
from analyzer.sales.linking import link_calls
from analyzer.sales.metrics import (
    activity_plan_fact,
    call_activity,
    funnel_conversion,
    lead_conversion,
    lead_response,
    objection_handling,
    plan_completion,
    repeat_sales,
    sales_cycle,
    sales_volume,
    stage_compliance,
    stage_order,
)
from analyzer.sales.periods import Period
from analyzer.sales.report import to_records

from .department import APRIL, FUNNEL, T, row


@pytest.mark.parametrize("manager, expected", [
    # m1: c1 (out, talk 100 s, score 80, 2 fillers) + c2 (in, talk 10 s, no score, 0 fillers); c5 is in March (UTC)
    ("m1", {"calls": 2, "calls_inbound": 1, "calls_outbound": 1, "effective_calls": 1, "talk_time": 110.0,
            "talk_time_mean": 55.0, "scored_calls": 1, "score_mean": 80.0, "fillers_per_call": 1.0}),
    # m2: c3 only (c4 is in May)
    ("m2", {"calls": 1, "calls_inbound": 0, "calls_outbound": 1, "effective_calls": 1, "talk_time": 250.0,
            "talk_time_mean": 250.0, "scored_calls": 1, "score_mean": 60.0, "fillers_per_call": 5.0}),
    # m3: no calls: counts 0, means undefined
    ("m3", {"calls": 0, "calls_inbound": 0, "effective_calls": 0, "talk_time": 0.0, "talk_time_mean": None,
            "scored_calls": 0, "score_mean": None, "fillers_per_call": None}),
], ids=["two-calls", "one-call", "no-calls"])
def test_call_activity_per_manager(calls, managers, manager, expected):
    r = row(call_activity(calls, period=APRIL, managers=managers), manager_id=manager)
    assert {k: r[k] for k in expected} == expected


def test_call_activity_per_team_and_department(calls, managers):
    team = call_activity(calls, period=APRIL, by="team", managers=managers)
    # team A = c1 + c2 + c3: talk 100 + 10 + 250 = 360 over 3 calls = 120; score (80 + 60) / 2 = 70; fillers 7 / 3
    a = row(team, team_id="A")
    assert (a["calls"], a["talk_time_mean"], a["score_mean"]) == (3, 120.0, 70.0)
    assert a["fillers_per_call"] == pytest.approx(7 / 3)
    assert row(team, team_id="B")["calls"] == 0
    # department S = all three managers = team A + team B
    dept = call_activity(calls, period=APRIL, by="department", managers=managers)
    assert to_records(dept) == [{"department_id": "S", **{k: v for k, v in a.items() if k != "team_id"}}]


def test_period_is_counted_in_its_time_zone(calls, managers):
    # c5 started 2024-03-31 23:00 UTC = 1 April 02:00 in Moscow: in April there, not in UTC
    msk = Period.month(2024, 4, tz="Europe/Moscow")
    assert row(call_activity(calls, period=msk, managers=managers), manager_id="m1")["calls"] == 3
    assert row(call_activity(calls, period=APRIL, managers=managers), manager_id="m1")["calls"] == 2
    # talk_time missing on c5: its duration (40 s) counts: 100 + 10 + 40
    assert row(call_activity(calls, period=msk, managers=managers), manager_id="m1")["talk_time"] == 150.0


def test_stage_compliance(calls, call_stages, managers):
    st = stage_compliance(calls, call_stages, period=APRIL, managers=managers)
    # m1 greeting: passed on c1 and c2 -> 2/2
    assert row(st, manager_id="m1", stage_id="greeting") | {} == {
        "manager_id": "m1", "stage_id": "greeting", "passed": 2, "missed": 0, "uncertain": 0, "decided": 2,
        "compliance": 1.0}
    # m1 needs discovery: passed on c1, uncertain on c2 -> decided 1, 1/1 (uncertain waits for a person)
    r = row(st, manager_id="m1", stage_id="needs_discovery")
    assert (r["passed"], r["uncertain"], r["decided"], r["compliance"]) == (1, 1, 1, 1.0)
    # m1 next step: missed twice -> 0/2 = 0.0
    assert row(st, manager_id="m1", stage_id="next_step")["compliance"] == 0.0
    # m2 greeting: missed on c3 (c4 in May does not count) -> 0/1
    assert row(st, manager_id="m2", stage_id="greeting")["compliance"] == 0.0
    # m3: no calls -> decided 0, compliance undefined
    r = row(st, manager_id="m3", stage_id="greeting")
    assert (r["decided"], r["compliance"]) == (0, None)


def test_objection_handling(calls, call_objections, managers):
    ob = objection_handling(calls, call_objections, period=APRIL, managers=managers)
    assert row(ob, manager_id="m1", type="price") == {"manager_id": "m1", "type": "price", "met": 1, "handled": 1,
                                                       "missed": 0, "uncertain": 0, "handled_rate": 1.0}
    assert row(ob, manager_id="m1", type="think_it_over")["handled_rate"] == 0.0
    # only uncertain -> handled / (handled + missed) = 0 / 0: undefined
    r = row(ob, manager_id="m1", type="no_time")
    assert (r["met"], r["uncertain"], r["handled_rate"]) == (1, 1, None)
    assert row(ob, manager_id="m2", type="price")["handled_rate"] == 1.0


@pytest.mark.parametrize("manager, leads_n, converted, conversion", [
    ("m1", 2, 1, 0.5),    # L1 (D1 won), L2 (D2 lost); L5 was created in March
    ("m2", 2, 0, 0.0),    # L3 (D3 open), L4 (no deal)
    ("m3", 0, 0, None),   # no leads: 0 / 0
])
def test_lead_conversion(leads, deals, managers, manager, leads_n, converted, conversion):
    r = row(lead_conversion(leads, deals, period=APRIL, managers=managers), manager_id=manager)
    assert (r["leads"], r["converted_leads"], r["conversion"]) == (leads_n, converted, conversion)


@pytest.mark.parametrize("manager, expected", [
    # D1 100 000 + D5 30 000 won, D2 lost: revenue 130 000, check 65 000, win rate 2/3
    ("m1", {"won_deals": 2, "lost_deals": 1, "revenue": 130000.0, "average_check": 65000.0, "win_rate": 2 / 3}),
    # D6 20 000 won (D7 closed in March)
    ("m2", {"won_deals": 1, "lost_deals": 0, "revenue": 20000.0, "average_check": 20000.0, "win_rate": 1.0}),
    # a manager with no deals
    ("m3", {"won_deals": 0, "lost_deals": 0, "revenue": 0.0, "average_check": None, "win_rate": None}),
])
def test_sales_volume(deals, managers, manager, expected):
    r = row(sales_volume(deals, period=APRIL, managers=managers), manager_id=manager)
    for k, v in expected.items():
        assert r[k] == (pytest.approx(v) if isinstance(v, float) else v), k


def test_plan_completion(deals, plans, managers):
    pc = plan_completion(deals, plans, period=APRIL, managers=managers)
    # m1: 130 000 / 200 000 = 0.65
    assert row(pc, manager_id="m1") == {"manager_id": "m1", "revenue_plan": 200000.0, "plan_completion": 0.65}
    # m2: a plan of 0 -> division by zero -> undefined; m3: no plan at all
    assert row(pc, manager_id="m2")["plan_completion"] is None
    assert row(pc, manager_id="m3") == {"manager_id": "m3", "revenue_plan": None, "plan_completion": None}
    # team A: plans 200 000 + 0, revenue 130 000 + 20 000 = 150 000 -> 0.75
    assert row(plan_completion(deals, plans, period=APRIL, by="team", managers=managers), team_id="A")[
        "plan_completion"] == 0.75


def test_plan_is_prorated_by_week(deals, plans, managers):
    pc = plan_completion(deals, plans, period=APRIL, managers=managers, freq="W")
    # week of Monday 8 April: 7 of April's 30 days -> plan 200 000 * 7/30; revenue: D5 (10 April) 30 000
    r = row(pc, manager_id="m1", week=pd.Timestamp("2024-04-08"))
    assert r["revenue_plan"] == pytest.approx(200000 * 7 / 30)
    assert r["plan_completion"] == pytest.approx(30000 / (200000 * 7 / 30))
    # week of Monday 29 April: clipped to 29-30 April -> 2 days; no revenue -> 0.0
    r = row(pc, manager_id="m1", week=pd.Timestamp("2024-04-29"))
    assert (r["revenue_plan"], r["plan_completion"]) == (pytest.approx(200000 * 2 / 30), 0.0)
    # the weeks' plans add up to the month's
    assert pc.loc[pc["manager_id"] == "m1", "revenue_plan"].sum() == pytest.approx(200000)


def test_sales_cycle(deals, leads, managers):
    sc = sales_cycle(deals, leads, period=APRIL, managers=managers)
    # m1: D1 from L1 (1 Apr 09:55 -> 15 Apr 09:55) = 14 days; D5 from L5 (20 Mar -> 10 Apr) = 21 days
    assert row(sc, manager_id="m1") == {"manager_id": "m1", "cycle_deals": 2, "cycle_days_median": 17.5,
                                        "cycle_days_mean": 17.5}
    # m2: D6 has no lead: from the deal's creation, 1 Feb -> 25 Apr 2024 = 29 + 31 + 24 = 84 days
    assert row(sc, manager_id="m2")["cycle_days_median"] == 84.0
    assert row(sc, manager_id="m3") == {"manager_id": "m3", "cycle_deals": 0, "cycle_days_median": None,
                                        "cycle_days_mean": None}


def test_lead_response(leads, calls, deals, managers):
    links = link_calls(calls, leads, deals)
    lr = lead_response(leads, calls, links, period=APRIL, managers=managers)
    # m1: L1 answered by c1 (linked via D1) 5 min after; L2 by c2 (same phone) 10 min after -> both within 10 min
    assert row(lr, manager_id="m1") == {"manager_id": "m1", "responded_leads": 2, "response_minutes_median": 7.5,
                                        "response_minutes_mean": 7.5, "leads_within_sla": 2, "sla_share": 1.0}
    # m2: L3 answered per the CRM after 30 min (not the call of 8 April); L4 never -> SLA 0 of 2
    assert row(lr, manager_id="m2") == {"manager_id": "m2", "responded_leads": 1, "response_minutes_median": 30.0,
                                        "response_minutes_mean": 30.0, "leads_within_sla": 0, "sla_share": 0.0}
    assert row(lr, manager_id="m3")["sla_share"] is None
    # a 5-minute SLA: only L1 of m1's two leads
    assert row(lead_response(leads, calls, links, period=APRIL, managers=managers, sla_minutes=5),
               manager_id="m1")["sla_share"] == 0.5


def test_activity_plan_fact(calls, plans, managers):
    meetings = pd.DataFrame({"manager_id": ["m2", "m2", "m2"],
                             "held_at": [T("2024-04-03"), T("2024-04-10"), T("2024-05-03")]})
    ap = activity_plan_fact(calls, plans, meetings, period=APRIL, managers=managers)
    # m1: plan 30 calls, fact 1 effective call (c1: 100 s; c2: 10 s is a dial) -> 1/30
    r = row(ap, manager_id="m1")
    assert (r["calls_plan"], r["calls_fact"], r["calls_plan_completion"]) == (30.0, 1, pytest.approx(1 / 30))
    assert (r["meetings_plan"], r["meetings_fact"], r["meetings_plan_completion"]) == (None, 0, None)
    # m2: plan 4 meetings, 2 held in April -> 0.5
    r = row(ap, manager_id="m2")
    assert (r["meetings_plan"], r["meetings_fact"], r["meetings_plan_completion"]) == (4.0, 2, 0.5)
    # without a meetings frame the fact is unknown, not 0
    assert row(activity_plan_fact(calls, plans, period=APRIL, managers=managers), manager_id="m2")["meetings_fact"] is None


def test_repeat_sales(deals, managers):
    rs = repeat_sales(deals, period=APRIL, managers=managers)
    # m1: D1 is a repeat (the same phone won D5 on 10 April, before 15 April); D5 is the first sale
    r = row(rs, manager_id="m1")
    assert (r["repeat_deals"], r["repeat_deals_share"], r["repeat_revenue"]) == (1, 0.5, 100000.0)
    assert r["repeat_revenue_share"] == pytest.approx(100000 / 130000)
    # m2: D6 has no phone; by name "Альфа" = "альфа " it follows D7 (March) -> 1/1
    assert row(rs, manager_id="m2")["repeat_deals_share"] == 1.0
    assert row(rs, manager_id="m3")["repeat_deals_share"] is None


def test_funnel_stage_to_stage(history, deals, managers):
    assert stage_order(history, deals) == FUNNEL  # the lost stage is not a step, the won stage is last
    fc = funnel_conversion(history, deals, period=APRIL, managers=managers)
    # deals created in April: D1 (won), D2 (lost after first contact) of m1; D3 (in negotiation) of m2
    # m1: step 1: entered D1, D2 -> advanced D1: 1/2; step 2: entered D1 -> won 1/1
    assert row(fc, manager_id="m1", step=1) == {"manager_id": "m1", "step": 1, "from_stage": FUNNEL[0],
                                                "to_stage": FUNNEL[1], "entered": 2, "advanced": 1, "conversion": 0.5}
    assert row(fc, manager_id="m1", step=2)["conversion"] == 1.0
    # m2: D3 reached negotiation (1/1) but not won (0/1)
    assert (row(fc, manager_id="m2", step=1)["conversion"], row(fc, manager_id="m2", step=2)["conversion"]) == (1.0, 0.0)
    assert row(fc, manager_id="m3", step=1)["conversion"] is None


def test_funnel_without_history_uses_the_current_stage(deals, managers):
    # no history: a deal has reached its current stage and all before it (D3: negotiation)
    fc = funnel_conversion(None, deals, period=APRIL, managers=managers, stages=FUNNEL)
    # m1: D1 reached won (step 1 and 2), D2 is lost (its stage is no step: not counted)
    assert row(fc, manager_id="m1", step=1)["entered"] == 1
    assert row(fc, manager_id="m2", step=1)["advanced"] == 1


def test_grouping_by_team_needs_teams(calls):
    with pytest.raises(KpiInputError, match="team_id"):
        call_activity(calls, period=APRIL, by="team")
