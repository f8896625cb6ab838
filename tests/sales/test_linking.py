"""Who is who: CRM rows to managers by name or external id, calls to leads and deals by id, phone and time."""

from __future__ import annotations

import pandas as pd

from analyzer.sales.imports import read_deals
from analyzer.sales.linking import attach_manager_ids, link_calls

from .department import T


def test_attach_manager_ids(crm_dir):
    deals, _ = read_deals(crm_dir / "amocrm_deals_cp1251.csv")
    managers = pd.DataFrame({"manager_id": [1, 2], "name": ["ЛЯХОВ Игорь", "Смирнова Анна"], "external_id": ["101", None]})
    out, unmatched = attach_manager_ids(deals, managers)
    assert out["manager_id"].tolist() == [1, 1, 2]  # word order and case do not matter
    assert unmatched == []
    out, unmatched = attach_manager_ids(deals.assign(manager=["101", "Пётр", None]), managers)
    assert out["manager_id"].tolist()[0] == 1 and unmatched == ["Пётр"]  # by external id; an unknown name


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
