"""KPIs against values computed by hand on a small department (the arithmetic is in the comments).

The department, April 2024 (periods in UTC unless a test says otherwise):

- managers m1, m2 (team A) and m3 (team B: no calls, no leads, no deals), all department S;
- calls c1, c2 (m1), c3 (m2) in April, c4 (m2) in May, c5 (m1) on 31 March 23:00 UTC = 1 April 02:00 Moscow;
- leads L1, L2 (m1), L3, L4 (m2) in April, L5 (m1) in March;
- deals D1 won 100 000 (L1), D2 lost (L2), D5 won 30 000 (L5, the same client as D1, closed earlier:
  D1 is a repeat sale) of m1; D3 open (L3), D6 won 20 000 (no lead; the client had D7, won in March) of m2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analyzer.sales.errors import KpiInputError
from analyzer.sales.frames import SalesData
from analyzer.sales.grouping import GROUP_KEYS
from analyzer.sales.linking import link_calls
from analyzer.sales.metrics import (
    KPIS,
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
from analyzer.sales.report import kpi_table, sales_report, to_records, weekly_trend
from analyzer.sales.statistics import newcombe_interval, quality_vs_outcome, wilson_interval


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


APRIL = Period.month(2024, 4, tz="UTC")
EMPTY = Period.month(2023, 1, tz="UTC")
FUNNEL = ["Первичный контакт", "Переговоры", "Успешно реализовано"]


@pytest.fixture()
def managers() -> pd.DataFrame:
    return pd.DataFrame({"manager_id": ["m1", "m2", "m3"], "name": ["Игорь Ляхов", "Анна Смирнова", "Олег Новиков"],
                         "team_id": ["A", "A", "B"], "department_id": ["S", "S", "S"]})


@pytest.fixture()
def calls() -> pd.DataFrame:
    return pd.DataFrame({
        "call_id": [1, 2, 3, 4, 5],
        "manager_id": ["m1", "m1", "m2", "m2", "m1"],
        "started_at": [T("2024-04-01 10:00"), T("2024-04-02 10:00"), T("2024-04-08 09:00"), T("2024-05-02 10:00"),
                       T("2024-03-31 23:00")],
        "direction": ["outbound", "inbound", "outbound", "outbound", "outbound"],
        "duration": [120.0, 20.0, 300.0, 60.0, 40.0],
        "talk_time": [100.0, 10.0, 250.0, 50.0, np.nan],
        "score": [80.0, np.nan, 60.0, 100.0, 50.0],
        "fillers": [2, 0, 5, 0, 1],
        "crm_lead_id": [None, None, "L3", None, None],
        "crm_deal_id": ["D1", None, None, None, None],
        "client_phone": ["+79120000001", "8 (912) 000-00-02", None, None, None],
    })


@pytest.fixture()
def call_stages() -> pd.DataFrame:
    rows = [(1, "greeting", "passed"), (1, "needs_discovery", "passed"), (1, "next_step", "missed"),
            (2, "greeting", "passed"), (2, "needs_discovery", "uncertain"), (2, "next_step", "missed"),
            (3, "greeting", "missed"), (3, "needs_discovery", "passed"), (3, "next_step", "passed"),
            (4, "greeting", "passed")]
    return pd.DataFrame(rows, columns=["call_id", "stage_id", "status"])


@pytest.fixture()
def call_objections() -> pd.DataFrame:
    rows = [(1, "price", "passed"), (1, "think_it_over", "missed"), (2, "no_time", "uncertain"), (3, "price", "passed")]
    return pd.DataFrame(rows, columns=["call_id", "type", "status"])


@pytest.fixture()
def leads() -> pd.DataFrame:
    return pd.DataFrame({
        "lead_id": ["L1", "L2", "L3", "L4", "L5"],
        "created_at": [T("2024-04-01 09:55"), T("2024-04-02 09:50"), T("2024-04-05 12:00"), T("2024-04-20 12:00"),
                       T("2024-03-20 00:00")],
        "manager_id": ["m1", "m1", "m2", "m2", "m1"],
        "source": ["site", "call", "site", "site", "site"],
        "client_phone": ["+79120000001", "+79120000002", "+79120000003", "+79120000004", "+79120000001"],
        "first_response_at": [pd.NaT, pd.NaT, T("2024-04-05 12:30"), pd.NaT, pd.NaT],
    })


@pytest.fixture()
def deals() -> pd.DataFrame:
    return pd.DataFrame({
        "deal_id": ["D1", "D2", "D3", "D5", "D6", "D7"],
        "lead_id": ["L1", "L2", "L3", "L5", None, None],
        "client": ["ООО Ромашка", "ИП Петров", "ООО Вектор", "ООО Ромашка", "Альфа", "альфа "],
        "client_phone": ["+79120000001", "+79120000002", "+79120000003", "+79120000001", None, None],
        "manager_id": ["m1", "m1", "m2", "m1", "m2", "m2"],
        "created_at": [T("2024-04-01 10:30"), T("2024-04-03 00:00"), T("2024-04-06 00:00"), T("2024-03-21 00:00"),
                       T("2024-02-01 00:00"), T("2024-01-10 00:00")],
        "closed_at": [T("2024-04-15 09:55"), T("2024-04-20 00:00"), pd.NaT, T("2024-04-10 00:00"),
                      T("2024-04-25 00:00"), T("2024-03-15 00:00")],
        "status": ["won", "lost", "open", "won", "won", "won"],
        "amount": [100000.0, 50000.0, 70000.0, 30000.0, 20000.0, 10000.0],
        "stage": ["Успешно реализовано", "Закрыто и не реализовано", "Переговоры", "Успешно реализовано",
                  "Успешно реализовано", "Успешно реализовано"],
    })


@pytest.fixture()
def history() -> pd.DataFrame:
    rows = [("D1", "Первичный контакт", T("2024-04-01 10:30")), ("D1", "Переговоры", T("2024-04-05")),
            ("D1", "Успешно реализовано", T("2024-04-15 09:55")),
            ("D2", "Первичный контакт", T("2024-04-03")), ("D2", "Закрыто и не реализовано", T("2024-04-20")),
            ("D3", "Первичный контакт", T("2024-04-06")), ("D3", "Переговоры", T("2024-04-07"))]
    return pd.DataFrame(rows, columns=["deal_id", "stage", "entered_at"])


@pytest.fixture()
def plans() -> pd.DataFrame:
    return pd.DataFrame({
        "manager_id": ["m1", "m2"],
        "period_start": [T("2024-04-01"), T("2024-04-01")],
        "period_end": [T("2024-05-01"), T("2024-05-01")],
        "revenue_plan": [200000.0, 0.0],
        "activity_plan": [30.0, 4.0],
        "activity_kind": ["calls", "meetings"],
    })


@pytest.fixture()
def data(calls, call_stages, call_objections, leads, deals, history, plans, managers) -> SalesData:
    return SalesData(calls=calls, call_stages=call_stages, call_objections=call_objections, leads=leads, deals=deals,
                     deal_stage_history=history, plans=plans, managers=managers)


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


# --- calls ---------------------------------------------------------------------------------------

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


# --- CRM -----------------------------------------------------------------------------------------

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


# --- links ---------------------------------------------------------------------------------------

def test_link_calls_rules(calls, leads, deals):
    links = link_calls(calls, leads, deals).set_index("call_id")
    # c1: crm_deal_id D1 -> D1 and its lead; c2: by phone (8 912 ... = +7912...): lead L2 created 10 min before,
    # no deal open then -> the deal the lead led to (D2); c3: crm_lead_id L3 -> its deal D3; c4: nothing known
    assert links.loc[1].tolist() == ["L1", "D1", "deal_id"]
    assert links.loc[2].tolist() == ["L2", "D2", "phone"]
    assert links.loc[3].tolist() == ["L3", "D3", "lead_id"]
    assert links.loc[4].tolist() == [None, None, None]


def test_link_by_phone_picks_the_deal_open_at_the_call():
    leads = pd.DataFrame({"lead_id": ["a"], "created_at": [T("2024-01-01")], "client_phone": ["+79990000000"]})
    deals = pd.DataFrame({"deal_id": ["old", "new"], "lead_id": ["a", "a"],
                          "created_at": [T("2024-01-01"), T("2024-03-01")],
                          "closed_at": [T("2024-02-01"), pd.NaT], "client_phone": ["+79990000000"] * 2})
    calls = pd.DataFrame({"call_id": [1, 2, 3], "started_at": [T("2024-01-15"), T("2024-03-05"), T("2024-02-20")],
                          "client_phone": ["89990000000"] * 3})
    links = link_calls(calls, leads, deals).set_index("call_id")
    assert links.loc[1, "deal_id"] == "old"   # open then
    assert links.loc[2, "deal_id"] == "new"   # the newer deal, open
    # between the deals: "old" closed 19 days before; the lead is older than 30 days -> nothing
    assert links.loc[3, "deal_id"] is None


# --- quality vs outcome --------------------------------------------------------------------------

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


# --- the table, empty periods, JSON --------------------------------------------------------------

def test_kpi_table_has_every_kpi_and_every_manager(data):
    table = kpi_table(data, period=APRIL)
    assert list(table.columns) == ["manager_id", *KPIS]
    assert list(table["manager_id"]) == ["m1", "m2", "m3"]
    m1 = row(table, manager_id="m1")
    assert (m1["calls"], m1["compliance"], m1["objections_handled_rate"]) == (2, 0.6, 0.5)  # stages 3/5, objections 1/2
    assert (m1["revenue"], m1["plan_completion"], m1["conversion"], m1["sla_share"]) == (130000.0, 0.65, 0.5, 1.0)
    m3 = row(table, manager_id="m3")
    assert m3["calls"] == 0 and m3["revenue"] == 0.0 and m3["conversion"] is None and m3["compliance"] is None


@pytest.mark.parametrize("by, key", [("manager", "manager_id"), ("team", "team_id"), ("department", "department_id"),
                                     ("all", "scope")])
def test_empty_period_gives_zeros_and_nones(data, by, key):
    table = kpi_table(data, period=EMPTY, by=by)
    records = to_records(table)
    assert records and no_nan(records)
    for r in records:
        assert r["calls"] == 0 and r["leads"] == 0 and r["revenue"] == 0.0
        assert r["conversion"] is None and r["average_check"] is None and r["plan_completion"] is None
        assert r["cycle_days_median"] is None and r["sla_share"] is None


def test_no_data_at_all():
    report = sales_report(SalesData(), period=APRIL, by="all")
    out = report.to_dict()
    assert out["summary"][0]["calls"] == 0 and out["summary"][0]["conversion"] is None
    assert out["stages"] == [] and out["quality_outcome"] == [] and out["funnel"] == []
    assert len(out["trend"]) == 5  # the weeks of 1, 8, 15, 22 and 29 April
    json.dumps(out, allow_nan=False)


def test_weekly_trend(data):
    trend = weekly_trend(data, period=APRIL, by="manager")
    # 3 managers x 5 weeks (Mondays 1, 8, 15, 22, 29 April), zero weeks included
    assert len(trend) == 15
    assert row(trend, manager_id="m1", week=pd.Timestamp("2024-04-01"))["calls"] == 2
    assert row(trend, manager_id="m2", week=pd.Timestamp("2024-04-08"))["calls"] == 1
    assert row(trend, manager_id="m1", week=pd.Timestamp("2024-04-15"))["won_deals"] == 1  # D1, 15 April
    # the weeks add up to the month
    assert trend.groupby("manager_id")["calls"].sum().to_dict() == {"m1": 2, "m2": 1, "m3": 0}
    assert to_records(trend)[0]["week"] == "2024-04-01"


def test_report_is_json_safe_without_nan(data):
    report = sales_report(data, period=APRIL, by="team", stages=FUNNEL)
    out = report.to_dict()
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)  # raises on NaN or infinity
    assert "NaN" not in text and "Infinity" not in text
    for name in ("summary", "trend", "stages", "objections", "funnel", "quality_outcome"):
        frame = getattr(report, name)
        numeric = frame.select_dtypes("number")
        assert not np.isinf(numeric.astype("float64").to_numpy()).any()
    assert out["kpis"]["conversion"]["title_ru"] == "Конверсия лид → продажа"


@pytest.mark.parametrize("by", ["manager", "team"])
def test_a_report_without_trend_and_outcome_has_the_same_table(data, by):
    full = sales_report(data, period=APRIL, by=by, stages=FUNNEL)
    lean = sales_report(data, period=APRIL, by=by, stages=FUNNEL, trend=False, outcome=False)
    pd.testing.assert_frame_equal(lean.summary, full.summary)
    key = GROUP_KEYS[by]
    for name, item in (("stages", "stage_id"), ("objections", "type")):
        a = getattr(lean, name).sort_values([key, item], key=lambda s: s.astype(str)).reset_index(drop=True)
        b = getattr(full, name).sort_values([key, item], key=lambda s: s.astype(str)).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert lean.trend.empty and lean.funnel.empty and lean.quality_outcome.empty
    assert lean.to_dict()["trend"] == [] and json.dumps(lean.to_dict(), allow_nan=False)


def test_missing_column_is_a_clear_error(calls):
    with pytest.raises(KpiInputError, match="calls frame lacks column.*started_at"):
        call_activity(calls.drop(columns="started_at"), period=APRIL)


def test_grouping_by_team_needs_teams(calls):
    with pytest.raises(KpiInputError, match="team_id"):
        call_activity(calls, period=APRIL, by="team")


def test_naive_times_are_utc_and_directions_are_normalised(calls):
    calls = calls.assign(started_at=calls["started_at"].dt.tz_localize(None), direction=["out", "IN", "out", "out", "out"])
    r = row(call_activity(calls, period=APRIL), manager_id="m1")
    assert (r["calls"], r["calls_inbound"], r["calls_outbound"]) == (2, 1, 1)


def test_period_constructors():
    assert Period.days("2024-04-01", "2024-04-30", tz="UTC") == APRIL
    q = Period.quarter(2024, 2, tz="Europe/Moscow")
    assert (q.start, q.end) == (T("2024-03-31 21:00"), T("2024-06-30 21:00"))
    assert len(q.week_starts()) == 13  # Mondays 1 April .. 24 June (30 June is a Sunday)


# --- end to end on the sample CRM exports ---------------------------------------------------------

def test_sample_exports_give_a_full_report(tmp_path):
    """The sample calls' metadata and labels + the sample CRM exports -> a JSON-safe report."""
    from pathlib import Path

    import yaml

    from analyzer.sales.imports import leads_from_deals, read_deals, read_leads, read_plans, read_stage_history
    from analyzer.sales.linking import attach_manager_ids
    from sample_calls.crm.generate import generate

    root = Path(__file__).resolve().parents[2] / "sample_calls"
    generate(tmp_path)  # the generator runs and writes the same kinds of files as committed
    crm = root / "crm"
    managers = pd.read_csv(crm / "managers.csv", dtype=str).assign(manager_id=lambda m: m["external_id"])
    amo, amo_err = read_deals(crm / "amocrm_deals.csv")
    b24, b24_err = read_deals(crm / "bitrix24_deals.xlsx")
    b24_leads, leads_err = read_leads(crm / "bitrix24_leads.csv")
    assert not (amo_err or b24_err or leads_err)
    deals, unmatched = attach_manager_ids(pd.concat([amo, b24], ignore_index=True), managers)
    assert unmatched == []
    leads, _ = attach_manager_ids(pd.concat([leads_from_deals(amo), b24_leads], ignore_index=True), managers)
    plans, _ = attach_manager_ids(read_plans(crm / "plans.csv")[0], managers)
    history, _ = read_stage_history(crm / "stage_history.csv")

    meta = pd.read_csv(crm / "calls.csv", dtype=str, keep_default_na=False).replace("", None)
    calls = meta.rename(columns={"manager_external_id": "manager_id"}).assign(
        started_at=lambda c: pd.to_datetime(c["started_at"], utc=True), score=70.0, talk_time=60.0, fillers=1)
    stage_rows, objection_rows = [], []
    for cid in calls["call_id"]:
        labels = yaml.safe_load((root / "dialogues" / f"{cid}.yaml").read_text(encoding="utf-8"))["labels"]
        for stage in ("greeting", "introduction", "time_check", "needs_discovery", "presentation", "next_step", "farewell"):
            stage_rows.append((cid, stage, "passed" if stage in labels["stages"] else "missed"))
        for o in labels.get("objections", []):
            objection_rows.append((cid, o["type"], "passed" if o["handled"] else "missed"))
    data = SalesData(calls=calls, call_stages=pd.DataFrame(stage_rows, columns=["call_id", "stage_id", "status"]),
                     call_objections=pd.DataFrame(objection_rows, columns=["call_id", "type", "status"]),
                     leads=leads, deals=deals, deal_stage_history=history, plans=plans, managers=managers)
    links = link_calls(calls, leads, deals)
    assert links["deal_id"].notna().all()  # half by CRM ids, the rest by phone and time
    assert set(links["rule"]) == {"deal_id", "phone"}

    report = sales_report(data, period=Period.month(2024, 4), by="team", min_n=5)
    out = report.to_dict()
    json.dumps(out, allow_nan=False)
    teams = {r["team_id"]: r for r in out["summary"]}
    assert teams["north"]["calls"] == 24 and teams["south"]["calls"] == 48
    assert teams["north"]["leads"] == 24 and teams["north"]["revenue_plan"] == 3_000_000
    # the outcome follows the labels: a next step goes with winning
    next_step = [r for r in out["quality_outcome"] if r["name"] == "next_step"]
    assert all(r["difference"] is None or r["difference"] > 0 for r in next_step)
