"""Speed and memory of a full department-quarter KPI report on synthetic frames.

    python -m benchmarks.kpi --calls 1000000 --deals 200000 [--managers 200] [--json]

Builds synthetic canonical frames (one quarter, Q2 2024 in Moscow time; leads = 1.5 x deals;
seven stage verdicts per call; about 0.8 objections per call; a stage history of 2-4 rows per
deal; monthly plans), then times, separately:

- ``link``: :func:`analyzer.sales.linking.link_calls` (CRM id, else phone and time);
- ``report``: :func:`analyzer.sales.report.sales_report` by manager: the KPI table, the weekly trend, stage
  compliance, objections, funnel and quality vs outcome.

Memory: the peak of Python-tracked allocations during each step (tracemalloc; numpy and pandas
buffers included) and the process's peak RSS at the end (data included).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from analyzer.sales import Period, SalesData, link_calls, sales_report
from benchmarks.common import print_figures

STAGES = ["greeting", "introduction", "time_check", "needs_discovery", "presentation", "next_step", "farewell"]
OBJECTIONS = ["price", "think_it_over", "no_time", "have_supplier", "send_offer", "no_need", "not_decision_maker",
              "no_budget"]
FUNNEL = ["Первичный контакт", "Переговоры", "Принимают решение", "Согласование договора", "Успешно реализовано"]
LOST = "Закрыто и не реализовано"


def synthetic(n_calls: int, n_deals: int, n_managers: int, period: Period, seed: int = 0) -> SalesData:
    """Canonical frames with plausible shapes: ids as strings (as the database keeps CRM ids),
    stage and status columns categorical (as one would load 7 million verdict rows)."""
    rng = np.random.default_rng(seed)
    start, end = period.start.value, period.end.value
    span = end - start
    day = 86_400 * 10**9

    managers = pd.DataFrame({"manager_id": np.arange(n_managers), "name": [f"Manager {i}" for i in range(n_managers)],
                             "team_id": np.arange(n_managers) // 10, "department_id": np.arange(n_managers) // 100})

    n_phones = max(n_deals * 3 // 4, 1)
    phones = np.array([f"+7912{i:07d}" for i in range(n_phones)], dtype=object)

    n_leads = n_deals * 3 // 2
    lead_created = start - 30 * day + rng.integers(0, span + 30 * day, n_leads)
    leads = pd.DataFrame({
        "lead_id": np.array([f"L{i}" for i in range(n_leads)], dtype=object),
        "created_at": pd.to_datetime(lead_created, utc=True),
        "manager_id": rng.integers(0, n_managers, n_leads),
        "source": rng.choice(np.array(["site", "call", "ads"], dtype=object), n_leads),
        "client_phone": phones[rng.integers(0, n_phones, n_leads)],
        "first_response_at": pd.Series(pd.NaT, index=range(n_leads), dtype="datetime64[ns, UTC]"),
    })

    lead_of_deal = rng.choice(n_leads, n_deals, replace=False)
    deal_created = lead_created[lead_of_deal] + rng.exponential(2 * day, n_deals).astype(np.int64)
    status = rng.choice(np.array(["won", "lost", "open"], dtype=object), n_deals, p=[0.25, 0.35, 0.40])
    closed = deal_created + rng.exponential(20 * day, n_deals).astype(np.int64)
    closed_at = pd.to_datetime(np.where(status == "open", np.iinfo(np.int64).min, closed), utc=True)
    reached = rng.integers(0, len(FUNNEL) - 1, n_deals)
    stage = np.where(status == "won", FUNNEL[-1], np.where(status == "lost", LOST, np.array(FUNNEL, dtype=object)[reached]))
    deals = pd.DataFrame({
        "deal_id": np.array([f"D{i}" for i in range(n_deals)], dtype=object),
        "lead_id": leads["lead_id"].to_numpy()[lead_of_deal],
        "client": None,
        "client_phone": leads["client_phone"].to_numpy()[lead_of_deal],
        "manager_id": leads["manager_id"].to_numpy()[lead_of_deal],
        "created_at": pd.to_datetime(deal_created, utc=True),
        "closed_at": closed_at,
        "status": status,
        "amount": np.round(rng.lognormal(11, 1, n_deals), -2),
        "stage": stage,
    })

    # history: the funnel up to the reached stage (won: all of it), 2-4 rows a deal in practice
    top = np.where(status == "won", len(FUNNEL) - 1, reached)
    counts = top + 1 + (status == "lost")
    deal_idx = np.repeat(np.arange(n_deals), counts)
    step = np.arange(len(deal_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    is_lost_row = (status[deal_idx] == "lost") & (step == counts[deal_idx] - 1)
    hist_stage = np.where(is_lost_row, LOST, np.array(FUNNEL, dtype=object)[np.minimum(step, len(FUNNEL) - 1)])
    history = pd.DataFrame({"deal_id": deals["deal_id"].to_numpy()[deal_idx],
                            "stage": pd.Categorical(hist_stage, categories=[*FUNNEL, LOST]),
                            "entered_at": pd.to_datetime(deal_created[deal_idx] + step * day, utc=True)})

    call_started = start + rng.integers(0, span, n_calls)
    which = rng.random(n_calls)
    deal_pick = rng.integers(0, n_deals, n_calls)
    lead_pick = rng.integers(0, n_leads, n_calls)
    crm_deal = np.where(which < 0.3, deals["deal_id"].to_numpy()[deal_pick], None)
    crm_lead = np.where((which >= 0.3) & (which < 0.5), leads["lead_id"].to_numpy()[lead_pick], None)
    duration = rng.exponential(150, n_calls)
    calls = pd.DataFrame({
        "call_id": np.arange(n_calls),
        "manager_id": rng.integers(0, n_managers, n_calls),
        "started_at": pd.to_datetime(call_started, utc=True),
        "direction": pd.Categorical(np.where(rng.random(n_calls) < 0.3, "inbound", "outbound")),
        "duration": duration,
        "talk_time": duration * 0.8,
        "score": np.where(rng.random(n_calls) < 0.9, rng.uniform(0, 100, n_calls), np.nan),
        "fillers": rng.poisson(2, n_calls),
        "crm_lead_id": crm_lead,
        "crm_deal_id": crm_deal,
        "client_phone": phones[rng.integers(0, n_phones, n_calls)],
    })

    verdict = np.array(["passed", "missed", "uncertain"], dtype=object)
    call_stages = pd.DataFrame({
        "call_id": np.repeat(calls["call_id"].to_numpy(), len(STAGES)),
        "stage_id": pd.Categorical.from_codes(np.tile(np.arange(len(STAGES)), n_calls), STAGES),
        "status": pd.Categorical.from_codes(rng.choice(3, n_calls * len(STAGES), p=[0.7, 0.25, 0.05]), verdict),
    })
    n_obj = int(n_calls * 0.8)
    call_objections = pd.DataFrame({
        "call_id": rng.integers(0, n_calls, n_obj),
        "type": pd.Categorical.from_codes(rng.integers(0, len(OBJECTIONS), n_obj), OBJECTIONS),
        "status": pd.Categorical.from_codes(rng.choice(3, n_obj, p=[0.5, 0.45, 0.05]), verdict),
    })

    months = pd.date_range(period.start.tz_convert(period.tz).tz_localize(None), periods=3, freq="MS")
    plans = pd.DataFrame({
        "manager_id": np.repeat(np.arange(n_managers), len(months)),
        "period_start": np.tile(months.tz_localize(period.tz).tz_convert("UTC"), n_managers),
        "period_end": np.tile((months + pd.offsets.MonthBegin(1)).tz_localize(period.tz).tz_convert("UTC"), n_managers),
        "revenue_plan": 2_000_000.0,
        "activity_plan": 400.0,
        "activity_kind": "calls",
    })
    return SalesData(calls=calls, call_stages=call_stages, call_objections=call_objections, leads=leads, deals=deals,
                     deal_stage_history=history, plans=plans, managers=managers)


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds, peak MiB of traced allocations): timed in one run, memory traced in a
    second run (tracing slows pandas down)."""
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--deals", type=int, default=200_000)
    ap.add_argument("--managers", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args(argv)

    period = Period.quarter(2024, 2, tz="Europe/Moscow")
    t0 = time.perf_counter()
    data = synthetic(args.calls, args.deals, args.managers, period, args.seed)
    build = time.perf_counter() - t0
    assert data.calls is not None and data.leads is not None and data.deals is not None

    links, link_s, link_mb = measure(lambda: link_calls(data.calls, data.leads, data.deals))
    data = SalesData(**{**data.__dict__, "links": links})
    report, report_s, report_mb = measure(lambda: sales_report(data, period=period, by="manager"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    linked = float(links["deal_id"].notna().mean())
    out = {
        "calls": args.calls, "deals": args.deals, "leads": len(data.leads), "managers": args.managers,
        "stage_verdicts": len(data.call_stages) if data.call_stages is not None else 0,
        "objections": len(data.call_objections) if data.call_objections is not None else 0,
        "build_seconds": round(build, 2),
        "link_seconds": round(link_s, 2), "link_peak_mib": round(link_mb), "calls_linked_to_deal": round(linked, 3),
        "report_seconds": round(report_s, 2), "report_peak_mib": round(report_mb),
        "total_seconds": round(link_s + report_s, 2), "process_peak_rss_mib": round(rss),
        "summary_rows": len(report.summary), "trend_rows": len(report.trend),
        "quality_outcome_rows": len(report.quality_outcome),
    }
    print_figures(out, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
