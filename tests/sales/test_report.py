"""The report of a period: every KPI and every manager in the table, empty periods, the weekly
trend, JSON without NaN, and the sample CRM exports end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analyzer.sales.frames import SalesData
from analyzer.sales.grouping import GROUP_KEYS
from analyzer.sales.imports import leads_from_deals, read_deals, read_leads, read_plans, read_stage_history
from analyzer.sales.linking import attach_manager_ids, link_calls
from analyzer.sales.metrics import KPIS
from analyzer.sales.periods import Period
from analyzer.sales.report import kpi_table, sales_report, to_records, weekly_trend
from sample_calls.crm.generate import generate

from .department import APRIL, EMPTY, FUNNEL, no_nan, row


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


def test_sample_exports_give_a_full_report(tmp_path):
    """The sample calls' metadata and labels + the sample CRM exports -> a JSON-safe report."""
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
