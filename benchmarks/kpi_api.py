"""Answer time of the KPI endpoint for one team and one month, on a large database.

    python -m benchmarks.kpi_api --calls 200000 --deals 40000 [--db-url URL] [--db build/kpi_bench.db] [--runs 10]

Fills a database (a SQLite file by default; ``--db-url`` for PostgreSQL; reused when it already
holds the data) through the real migrations with a synthetic year (2026, Moscow time) made by
:func:`benchmarks.kpi.synthetic`: 100 managers in 10 teams, the calls with seven stage verdicts
each and about 0.8 objections, a stored report of about ``--report-bytes`` of JSON per call
(metrics, stages, objections: what the KPI query reads fillers and talk time from), leads =
1.5 x deals, the deals' stage history and monthly plans. Then times
``GET /api/v1/kpi?period=2026-06&team_id=<team>`` through the ASGI app (FastAPI TestClient, an
admin's token): the first answer (cold: nothing cached in the process) and the median and max of
``--runs`` more, the process CPU time of each (the figure to trust on a busy machine), and the
median with ``format=xlsx``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select

from analyzer.sales import Period
from api.core.db import Database, upgrade
from api.crm.models import Deal, DealStageEntry, Lead, SalesPlan
from api.models import Call, CallObjection, CallStage, CallStatus, Department, Manager, Role, Team, User
from benchmarks.common import print_figures
from benchmarks.kpi import synthetic

N_MANAGERS = 100
CHUNK = 20_000


def _ts(values: Any) -> list[Any]:
    s = pd.Series(values)
    s = pd.to_datetime(s, utc=True)
    return [None if pd.isna(v) else v.floor("us").to_pydatetime() for v in s]


def fill(db: Database, *, n_calls: int, n_deals: int, report_bytes: int, seed: int = 0) -> dict[str, float]:
    """Insert the synthetic year; returns seconds per table."""
    year = Period(pd.Timestamp("2026-01-01"), pd.Timestamp("2027-01-01"), "Europe/Moscow")
    data = synthetic(n_calls, n_deals, N_MANAGERS, year, seed)
    assert data.calls is not None and data.leads is not None and data.deals is not None and data.managers is not None
    assert data.call_stages is not None and data.call_objections is not None and data.deal_stage_history is not None
    seconds: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    with db.sessions() as s:
        t0 = time.perf_counter()
        dept = Department(name="sales")
        s.add(dept)
        s.flush()
        teams = [Team(name=f"team {i}", department_id=dept.id) for i in range(N_MANAGERS // 10)]
        s.add_all(teams)
        s.flush()
        managers = [Manager(name=f"Manager {i}", external_id=str(1000 + i), team_id=teams[i // 10].id) for i in range(N_MANAGERS)]
        s.add_all(managers)
        s.flush()
        mid = np.array([m.id for m in managers])
        s.commit()

        calls = data.calls
        filler = "x" * max(report_bytes - 600, 0)
        started = _ts(calls["started_at"])
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        fillers = calls["fillers"].to_numpy()
        talk = calls["talk_time"].to_numpy()
        for a in range(0, len(calls), CHUNK):
            rows = []
            for i in range(a, min(a + CHUNK, len(calls))):
                score = calls["score"].iat[i]
                report = {"metrics": {"manager_fillers": int(fillers[i]), "manager_talk_time": round(float(talk[i]) * 0.6, 1),
                                      "client_talk_time": round(float(talk[i]) * 0.4, 1)},
                          "stages": [], "objections": [], "notes": filler}
                rows.append({"id": i + 1, "source": "import", "manager_id": int(mid[calls["manager_id"].iat[i]]),
                             "client_phone": calls["client_phone"].iat[i], "direction": str(calls["direction"].iat[i]),
                             "started_at": started[i], "duration": float(calls["duration"].iat[i]),
                             "crm_lead_id": calls["crm_lead_id"].iat[i], "crm_deal_id": calls["crm_deal_id"].iat[i],
                             "status": CallStatus.done, "score": None if np.isnan(score) else float(score),
                             "machine_score": None if np.isnan(score) else float(score), "report": report,
                             "attempts": 1, "lease_token": 1, "uncertain": 0, "next_attempt_at": now, "created_at": now,
                             "updated_at": now, "processed_at": now})
            s.execute(insert(Call), rows)
        s.commit()
        seconds["calls"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        st = data.call_stages
        cid, stage, status = st["call_id"].to_numpy() + 1, st["stage_id"].astype(str).to_numpy(), st["status"].astype(str).to_numpy()
        pos = np.tile(np.arange(7), len(st) // 7 + 1)[: len(st)]
        for a in range(0, len(st), 5 * CHUNK):
            s.execute(insert(CallStage), [{"call_id": int(cid[i]), "stage_id": stage[i], "position": int(pos[i]),
                                           "machine_status": status[i], "status": status[i], "reviewed": False}
                                          for i in range(a, min(a + 5 * CHUNK, len(st)))])
        ob = data.call_objections.sort_values("call_id", kind="stable").reset_index(drop=True)
        ocid = ob["call_id"].to_numpy() + 1
        opos = ob.groupby("call_id").cumcount().to_numpy()
        otype, ostatus = ob["type"].astype(str).to_numpy(), ob["status"].astype(str).to_numpy()
        for a in range(0, len(ob), 5 * CHUNK):
            s.execute(insert(CallObjection), [{"call_id": int(ocid[i]), "position": int(opos[i]), "type": otype[i],
                                               "machine_status": ostatus[i], "machine_handled": ostatus[i] == "passed",
                                               "handled": ostatus[i] == "passed", "status": ostatus[i], "reviewed": False}
                                              for i in range(a, min(a + 5 * CHUNK, len(ob)))])
        s.commit()
        seconds["verdicts"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        leads = data.leads
        lc = _ts(leads["created_at"])
        for a in range(0, len(leads), CHUNK):
            s.execute(insert(Lead), [{"key": f"generic:lead:{leads['lead_id'].iat[i]}", "crm": "generic",
                                      "crm_id": leads["lead_id"].iat[i], "created_at": lc[i],
                                      "manager_id": int(mid[leads["manager_id"].iat[i]]),
                                      "manager_name": f"Manager {leads['manager_id'].iat[i]}", "source": leads["source"].iat[i],
                                      "client_phone": leads["client_phone"].iat[i], "imported_at": now, "updated_at": now}
                                     for i in range(a, min(a + CHUNK, len(leads)))])
        deals = data.deals
        dc, dx = _ts(deals["created_at"]), _ts(deals["closed_at"])
        for a in range(0, len(deals), CHUNK):
            s.execute(insert(Deal), [{"key": f"generic:deal:{deals['deal_id'].iat[i]}", "crm": "generic",
                                      "crm_id": deals["deal_id"].iat[i], "lead_key": f"generic:lead:{deals['lead_id'].iat[i]}",
                                      "crm_lead_id": deals["lead_id"].iat[i], "client_phone": deals["client_phone"].iat[i],
                                      "client_key": deals["client_phone"].iat[i],
                                      "manager_id": int(mid[deals["manager_id"].iat[i]]),
                                      "manager_name": f"Manager {deals['manager_id'].iat[i]}", "created_at": dc[i],
                                      "closed_at": dx[i], "status": deals["status"].iat[i],
                                      "amount": float(deals["amount"].iat[i]), "stage": deals["stage"].iat[i],
                                      "imported_at": now, "updated_at": now}
                                     for i in range(a, min(a + CHUNK, len(deals)))])
        h = data.deal_stage_history
        he = _ts(h["entered_at"])
        hid, hst = h["deal_id"].to_numpy(), h["stage"].astype(str).to_numpy()
        for a in range(0, len(h), 5 * CHUNK):
            s.execute(insert(DealStageEntry), [{"deal_key": f"generic:deal:{hid[i]}", "stage": hst[i], "entered_at": he[i],
                                                "imported_at": now} for i in range(a, min(a + 5 * CHUNK, len(h)))])
        months = pd.date_range("2026-01-01", periods=12, freq="MS")
        s.execute(insert(SalesPlan), [
            {"key": f"plan:{m}:{start.date()}", "manager_name": f"Manager {m}", "manager_id": int(mid[m]),
             "period_start": start.tz_localize("Europe/Moscow").tz_convert("UTC").to_pydatetime(),
             "period_end": (start + pd.offsets.MonthBegin(1)).tz_localize("Europe/Moscow").tz_convert("UTC").to_pydatetime(),
             "activity_kind": "calls", "revenue_plan": float(rng.choice([1e6, 2e6, 3e6])), "activity_plan": 150.0,
             "imported_at": now, "updated_at": now}
            for m in range(N_MANAGERS) for start in months])
        s.commit()
        seconds["crm"] = time.perf_counter() - t0
    if db.engine.dialect.name == "postgresql":  # what autovacuum does a while after a bulk load
        with db.engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--deals", type=int, default=40_000)
    ap.add_argument("--db", type=Path, default=Path("build/kpi_bench.db"), help="the SQLite file (default)")
    ap.add_argument("--db-url", default=None, help="a database URL instead (PostgreSQL); its tables are filled if empty")
    ap.add_argument("--report-bytes", type=int, default=4000, help="size of each call's stored report JSON")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--period", default="2026-06")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth.service import create_user, sign_in
    from api.core.config import get_service_settings

    url = args.db_url or f"sqlite:///{args.db.resolve()}"
    t0 = time.perf_counter()
    upgrade(url)
    settings = get_service_settings(database_url=url, data_dir=Path("build/kpi_bench_data"))
    db = Database(settings)
    with db.sessions() as s:
        have = s.scalar(select(func.count()).select_from(Call)) or 0
    fill_seconds: dict[str, float] = {}
    if have == 0:
        fill_seconds = fill(db, n_calls=args.calls, n_deals=args.deals, report_bytes=args.report_bytes)
    elif have != args.calls:
        print(f"{url} already holds {have} calls; remove it to build {args.calls}", file=sys.stderr)
        return 2
    with db.sessions() as s:
        if s.scalar(select(User.id).where(User.username == "bench")) is None:
            create_user(s, actor=None, username="bench", password="violet-kettle-morning-42", role=Role.admin)
        token = sign_in(s, username="bench", password="violet-kettle-morning-42", hours=1)[0]
        team = s.scalar(select(Team.id).order_by(Team.id).offset(3).limit(1))
        sizes = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
                 for m in (Call, CallStage, CallObjection, Lead, Deal, DealStageEntry, SalesPlan)}
    setup = time.perf_counter() - t0

    app = create_app(settings, db=db, executor=object())
    headers = {"Authorization": f"Bearer {token}"}
    params = {"period": args.period, "team_id": team, "by": "manager"}
    times: list[float] = []
    cpu: list[float] = []
    xlsx: list[float] = []
    with TestClient(app) as client:
        for i in range(args.runs + 1):
            t, c = time.perf_counter(), time.process_time()
            r = client.get("/api/v1/kpi", params=params, headers=headers)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            assert r.status_code == 200, r.text
            if i == 0:
                body = r.json()
        for _ in range(3):
            t = time.perf_counter()
            r = client.get("/api/v1/kpi", params={**params, "format": "xlsx"}, headers=headers)
            xlsx.append(time.perf_counter() - t)
            assert r.status_code == 200
    rows = body["summary"]
    out = {
        "database": url.split("://")[0], **sizes, "fill_seconds": {k: round(v, 1) for k, v in fill_seconds.items()},
        "setup_seconds": round(setup, 1), "period": args.period, "team_id": team, "rows": len(rows),
        "team_calls_in_month": sum(r["calls"] for r in rows), "team_deals_won": sum(r["won_deals"] for r in rows),
        "first_ms": round(times[0] * 1000), "median_ms": round(statistics.median(times[1:]) * 1000),
        "max_ms": round(max(times[1:]) * 1000), "cpu_median_ms": round(statistics.median(cpu[1:]) * 1000),
        "xlsx_median_ms": round(statistics.median(xlsx) * 1000),
    }
    print_figures(out, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
