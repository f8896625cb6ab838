"""The KPI table through the API and the CLI, on SQLite and PostgreSQL: numbers, roles, exports.

The data: three managers (Anna and Boris in team Moscow, headed by the head of sales; Carl in team
Kazan), four scored calls of November 2026 with their stage and objection verdicts, and a CRM
export of four leads, four deals and two plans.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from analyzer import sales
from api.calls.results import call_metrics
from api.core.exports import safe_cell
from api.models import Call, CallObjection, CallStage, CallStatus, Direction, Manager, Team
from api.web.render import fmt_score, fmt_share
from tests.helpers import PASSWORD

CRM_DIR = Path(__file__).resolve().parents[2] / "sample_calls" / "crm"

DEALS = """deal_id,lead_id,created_at,closed_at,status,amount,manager,client,client_phone
D1,L1,2026-11-02 10:00,2026-11-10 12:00,won,100000,Anna,ООО Ромашка,+79160000001
D2,L2,2026-11-03 10:00,2026-11-12 12:00,lost,50000,Anna,ООО Лютик,+79160000002
D3,L3,2026-11-04 10:00,2026-11-20 12:00,won,70000,Boris,ООО Клевер,+79160000003
D4,L4,2026-11-05 10:00,,open,30000,Carl,ООО Мак,+79160000004
"""
LEADS = """lead_id,created_at,manager,client_phone
L1,2026-11-02 09:00,Anna,+79160000001
L2,2026-11-03 09:00,Anna,+79160000002
L3,2026-11-04 09:00,Boris,+79160000003
L4,2026-11-05 09:00,Carl,+79160000004
"""
PLANS = """manager,period,revenue_plan,activity_plan,activity_kind
Anna,2026-11,200000,10,calls
Boris,2026-11,100000,,calls
"""
# (manager, Moscow time, phone, crm lead, crm deal, score, {stage: status}, [(objection, status)])
CALLS = [
    ("Anna", "2026-11-02 09:05", "+79160000001", None, "D1", 80.0, {"greeting": "passed", "next_step": "passed"},
     [("price", "passed")]),
    ("Anna", "2026-11-03 09:30", "+79160000002", None, None, 40.0, {"greeting": "passed", "next_step": "missed"},
     [("price", "missed")]),
    ("Boris", "2026-11-04 09:20", "+79160000003", "L3", None, 70.0, {"greeting": "passed", "next_step": "passed"}, []),
    ("Carl", "2026-11-05 10:00", "+79160000004", None, None, 50.0, {"greeting": "missed", "next_step": "uncertain"},
     [("no_time", "uncertain")]),
]


def _utc(moscow: str) -> datetime:
    return pd.Timestamp(moscow, tz="Europe/Moscow").tz_convert("UTC").to_pydatetime()


@pytest.fixture
def world(client, people, db):
    """The managers, calls and CRM rows above; returns the manager ids by name and the calls frame."""
    with db.sessions() as s:
        kazan = Team(name="Kazan")
        s.add(kazan)
        s.flush()
        carl = Manager(name="Carl", external_id="301", team_id=kazan.id)
        s.add(carl)
        s.flush()
        ids = {"Anna": people.manager_id, "Boris": people.other_manager_id, "Carl": carl.id}
        rows = []
        for i, (name, at, phone, lead, deal, score, stages, objections) in enumerate(CALLS):
            report = {"metrics": {"manager_fillers": i, "manager_talk_time": 60.0, "client_talk_time": 40.0}}
            call = Call(source="import", manager_id=ids[name], client_phone=phone, direction=Direction.outbound,
                        started_at=_utc(at), duration=120.0, crm_lead_id=lead, crm_deal_id=deal, status=CallStatus.done,
                        score=score, machine_score=score, processed_at=datetime.now(UTC), report=report,
                        **call_metrics(report))  # as the worker stores a scored call
            s.add(call)
            s.flush()
            for j, (stage, status) in enumerate(stages.items()):
                s.add(CallStage(call_id=call.id, stage_id=stage, position=j, machine_status=status, status=status))
            for j, (kind, status) in enumerate(objections):
                s.add(CallObjection(call_id=call.id, position=j, type=kind, machine_status=status,
                                    machine_handled=status == "passed", handled=status == "passed", status=status))
            rows.append({"call_id": call.id, "manager_id": ids[name], "started_at": _utc(at), "direction": "outbound",
                         "duration": 120.0, "talk_time": 100.0, "score": score, "fillers": float(i),
                         "crm_lead_id": lead, "crm_deal_id": deal, "client_phone": phone, "stages": stages,
                         "objections": objections, "team_id": kazan.id if name == "Carl" else people.team_id})
        s.commit()
    for name, text in (("deals.csv", DEALS), ("leads.csv", LEADS), ("plans.csv", PLANS)):
        r = client.post("/api/v1/crm/import", files={"file": (name, text.encode())}, headers=people.h("admin"))
        assert r.status_code == 200 and not r.json()["errors"], r.text
    return ids, rows


def get(client, people, role="admin", **params):
    return client.get("/api/v1/kpi", params={"period": "2026-11", **params}, headers=people.h(role))


def test_the_kpi_table_joins_call_quality_with_deals(client, people, world):
    ids, _ = world
    r = get(client, people)
    assert r.status_code == 200, r.text
    rows = {row["name"]: row for row in r.json()["summary"]}
    assert set(rows) == {"Anna", "Boris", "Carl"}
    anna = rows["Anna"]
    # by hand: 2 leads in November, one won -> conversion 1/2; one won deal of 100 000 against a plan of 200 000
    assert (anna["manager_id"], anna["calls"], anna["leads"], anna["converted_leads"]) == (ids["Anna"], 2, 2, 1)
    assert anna["conversion"] == pytest.approx(0.5)
    assert (anna["won_deals"], anna["lost_deals"], anna["revenue"]) == (1, 1, 100000)
    assert anna["plan_completion"] == pytest.approx(0.5) and anna["average_check"] == pytest.approx(100000)
    assert anna["score_mean"] == pytest.approx(60.0)
    assert anna["compliance"] == pytest.approx(3 / 4) and anna["objections_handled_rate"] == pytest.approx(1 / 2)
    assert anna["fillers_per_call"] == pytest.approx(0.5)  # 0 and 1 filler words
    assert rows["Boris"]["revenue"] == 70000 and rows["Boris"]["conversion"] == pytest.approx(1.0)
    assert rows["Carl"]["won_deals"] == 0 and rows["Carl"]["win_rate"] is None  # nothing closed: undefined, not 0
    teams = {row["name"]: row for row in get(client, people, by="team").json()["summary"]}
    assert teams["Moscow"]["revenue"] == 170000 and teams["Moscow"]["leads"] == 3 and teams["Kazan"]["calls"] == 1
    total = get(client, people, by="all").json()["summary"]
    assert len(total) == 1 and total[0]["revenue"] == 170000 and total[0]["calls"] == 4


def test_the_endpoint_gives_the_library_numbers_on_the_same_data(client, people, world):
    ids, calls = world
    managers = pd.DataFrame({"manager_id": list(ids.values()), "name": list(ids), "external_id": [None] * 3})
    frames = {}
    for name, text, parse in (("deals", DEALS, sales.parse_deals), ("leads", LEADS, sales.parse_leads),
                              ("plans", PLANS, sales.parse_plans)):
        frame, errors = parse(sales.table_from_csv(text))
        assert not errors
        frames[name], _ = sales.attach_manager_ids(frame, managers)
    stages = pd.DataFrame([{"call_id": c["call_id"], "stage_id": k, "status": v} for c in calls for k, v in c["stages"].items()])
    objections = pd.DataFrame([{"call_id": c["call_id"], "type": k, "status": v} for c in calls for k, v in c["objections"]])
    team_of = {c["manager_id"]: c["team_id"] for c in calls}
    data = sales.SalesData(calls=pd.DataFrame(calls).drop(columns=["stages", "objections", "team_id"]), call_stages=stages,
                         call_objections=objections, leads=frames["leads"], deals=frames["deals"], plans=frames["plans"],
                         managers=managers.assign(team_id=managers["manager_id"].map(team_of), department_id=None))
    period = sales.Period.month(2026, 11)
    for by in ("manager", "team"):
        expected = {r[sales.GROUP_KEYS[by]]: r for r in sales.to_records(sales.sales_report(data, period=period, by=by).summary)}
        got = {r[sales.GROUP_KEYS[by]]: r for r in get(client, people, by=by).json()["summary"]}
        assert set(got) == set(expected)
        for key, row in expected.items():
            for column, value in row.items():
                assert got[key][column] == (pytest.approx(value) if isinstance(value, float) else value), (by, key, column)



class _Dashboard(HTMLParser):
    """The dashboard as a person reads it: the KPI table's rows (cell texts) and the heatmap's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.kpi: list[list[str]] = []
        self.heat: dict[tuple[int, str], str] = {}
        self.links: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._heat_key: tuple[int, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        elif self._table == "kpi" and tag == "tr":
            self.kpi.append([])
        elif self._table == "kpi" and tag in ("th", "td") and self.kpi:
            self._cell = []
        elif tag == "a" and a.get("data-manager"):
            self._heat_key, self._cell = (int(a["data-manager"] or 0), a["data-stage"] or ""), []
        elif tag == "a" and "download" in a:
            href = a.get("href") or ""
            self.links["xlsx" if "format=xlsx" in href else "csv"] = href

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._heat_key is not None:
            self.heat[self._heat_key] = "".join(self._cell or []).strip()
            self._heat_key, self._cell = None, None
        elif tag in ("th", "td") and self._cell is not None and self._heat_key is None:
            self.kpi[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None


def test_the_dashboard_shows_the_numbers_of_the_kpi_api(client, people, world):
    """A head of sales reads the same figures on the dashboard, in its CSV and from /api/v1/kpi for the same days."""
    web = {"Cookie": f"callqa_session={people.tokens['head_of_sales']}"}
    page = client.get("/dashboard", params={"period": "all"}, headers=web)
    assert page.status_code == 200, page.text
    seen = _Dashboard()
    seen.feed(page.text)
    days = dict(parse_qsl(urlsplit(seen.links["xlsx"]).query))  # the days the page covers, as the API takes them
    api = client.get("/api/v1/kpi", params={"date_from": days["date_from"], "date_to": days["date_to"]},
                     headers=people.h("head_of_sales")).json()
    rows = {r["name"]: r for r in api["summary"]}
    assert set(rows) == {"Anna", "Boris"}  # the head's own team only, on both

    header, *body = seen.kpi
    assert header[1:] == ["Звонки", "Средняя оценка звонка", "Соблюдение скрипта", "Отработка возражений",
                          "Конверсия лид → продажа", "Объём продаж", "Выполнение плана"]
    shown = {cells[0]: cells[1:] for cells in body}
    assert set(shown) == set(rows)
    for name, r in rows.items():
        assert shown[name] == [str(r["calls"]), fmt_score(r["score_mean"]), fmt_share(r["compliance"]),
                               fmt_share(r["objections_handled_rate"]), fmt_share(r["conversion"]),
                               f"{r['revenue']:,.0f}".replace(",", "\u00a0"), fmt_share(r["plan_completion"])], name
    # one won deal of 100 000; "all time" starts on 2 November, the day of the first call: 29 days of the plan
    assert shown["Anna"][5] == "100\u00a0000" and shown["Anna"][6] == f"{100000 / (200000 * 29 / 30):.0%}" == "52%"

    # the heatmap: a cell per manager and stage the API counts verdicts for, its share of the decided ones
    ids = {r["manager_id"]: r["name"] for r in api["summary"]}
    cells = {(r["manager_id"], r["stage_id"]): r for r in api["stages"] if r["decided"]}
    assert set(seen.heat) == set(cells)
    for key, r in cells.items():
        assert seen.heat[key] == f"{fmt_share(r['compliance'])}{r['decided']}", (ids[key[0]], key[1])

    # the CSV for a spreadsheet: every KPI of the same rows, semicolons and a BOM
    r = client.get(seen.links["csv"], headers=web)
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    titles = {v["title_ru"]: k for k, v in api["kpis"].items()}
    assert table[0][0] == "Менеджер" and [titles[h] for h in table[0][1:]] == list(api["kpis"])
    assert sorted(line[0] for line in table[1:]) == sorted(rows)
    for line in table[1:]:
        expected = rows[line[0]]
        for title, cell in zip(table[0][1:], line[1:], strict=True):
            value = expected[titles[title]]
            assert (cell == "" if value is None else float(cell) == pytest.approx(value)), (line[0], title)


def test_a_manager_sees_own_kpis_and_a_head_of_sales_own_teams(client, people, world):
    ids, _ = world
    mine = get(client, people, role="manager").json()
    assert [r["manager_id"] for r in mine["summary"]] == [ids["Anna"]] and mine["scope"] == [ids["Anna"]]
    r = get(client, people, role="manager", manager_id=ids["Boris"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "manager_not_found"
    head = get(client, people, role="head_of_sales").json()
    assert {r["name"] for r in head["summary"]} == {"Anna", "Boris"}
    with_team = get(client, people, role="head_of_sales", by="team").json()["summary"]
    assert [r["name"] for r in with_team] == ["Moscow"]
    with_kazan = get(client, people, role="head_of_sales", team_id=with_team[0]["team_id"] + 1)
    assert with_kazan.status_code == 404 and with_kazan.json()["error"]["code"] == "team_not_found"
    qc = get(client, people, role="quality_controller").json()
    assert len(qc["summary"]) == 3
    assert get(client, people, role="admin", manager_id=ids["Carl"]).json()["scope"] == [ids["Carl"]]
    assert client.get("/api/v1/kpi", params={"period": "2026-11"}).status_code == 401
    r = client.get("/api/v1/kpi/quality-vs-outcome", params={"period": "2026-11", "by": "manager"},
                   headers=people.h("manager"))
    assert r.status_code == 200 and {row["manager_id"] for row in r.json()["rows"]} <= {ids["Anna"]}
    r = get(client, people, manager_id=9999)
    assert r.status_code == 404 and r.json()["error"]["code"] == "manager_not_found"


def test_csv_and_xlsx_exports_hold_the_same_rows(client, people, world):
    rows = get(client, people).json()["summary"]
    r = get(client, people, format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="kpi_2026-11_manager.csv"'
    back = pd.read_csv(io.BytesIO(r.content), encoding="utf-8-sig")
    assert list(back.columns) == list(rows[0])
    for row, (_, parsed) in zip(rows, back.iterrows(), strict=True):
        for column, value in row.items():
            cell = parsed[column]
            if value is None:
                assert pd.isna(cell), column
            elif isinstance(value, float | int) and not isinstance(value, bool):
                assert float(cell) == pytest.approx(value), column
            else:
                assert str(cell) == str(value), column

    x = get(client, people, format="xlsx", trend="week")
    assert x.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert x.headers["content-disposition"] == 'attachment; filename="kpi_2026-11_manager.xlsx"'
    wb = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True)
    assert wb.sheetnames == ["summary", "trend", "stages", "objections", "funnel", "quality_vs_outcome", "kpis"]
    sheet = list(wb["summary"].iter_rows(values_only=True))
    assert list(sheet[0]) == list(rows[0])
    width = len(sheet[0])  # a row's empty cells at the end are not stored
    assert [dict(zip(sheet[0], line + (None,) * (width - len(line)), strict=True)) for line in sheet[1:]] == [
        {k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]
    trend = get(client, people, trend="week").json()["trend"]
    assert len(list(wb["trend"].iter_rows(values_only=True))) == len(trend) + 1
    assert {r["week"] for r in trend} == {"2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"}


def test_an_empty_period_gives_zeros_and_nulls_never_nan(client, people, world):
    r = client.get("/api/v1/kpi", params={"date_from": "2025-01-01", "date_to": "2025-01-31", "trend": "week"},
                   headers=people.h("admin"))
    assert r.status_code == 200
    assert "NaN" not in r.text and "Infinity" not in r.text
    body = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert body["period"]["label"] == "2025-01"
    for row in body["summary"]:
        assert (row["calls"], row["leads"], row["won_deals"], row["revenue"]) == (0, 0, 0, 0)
        assert row["conversion"] is None and row["score_mean"] is None and row["plan_completion"] is None
    for extra in ("quality-vs-outcome", "funnel"):
        r = client.get(f"/api/v1/kpi/{extra}", params={"period": "2025-01"}, headers=people.h("admin"))
        assert r.status_code == 200 and "NaN" not in r.text


def test_catalogue_funnel_quality_and_bad_parameters(client, people, world):
    cat = client.get("/api/v1/kpi/catalogue", headers=people.h("manager")).json()
    assert cat["conversion"]["title_ru"] == "Конверсия лид → продажа" and cat["conversion"]["unit"] == "share"
    q = client.get("/api/v1/kpi/quality-vs-outcome", params={"period": "2026-11"}, headers=people.h("admin")).json()
    next_step = next(r for r in q["rows"] if r["factor"] == "stage" and r["name"] == "next_step")
    # D1 (won) had next_step done; D2 (lost) missed it; D3 (won, linked by lead id) done
    assert (next_step["deals_done"], next_step["won_done"], next_step["deals_missed"]) == (2, 2, 1)
    assert next_step["verdict"] == "not_enough_data"
    f = client.get("/api/v1/kpi/funnel", params={"period": "2026-11", "by": "all"}, headers=people.h("admin"))
    assert f.status_code == 200 and f.json()["group_key"] == "scope"
    assert {r["pipeline"] for r in f.json()["rows"]} <= {"generic"}
    for params, code in (({"period": "November"}, "bad_period"), ({}, "bad_period"),
                         ({"period": "2026-11", "date_from": "2026-11-01", "date_to": "2026-11-30"}, "bad_period"),
                         ({"date_from": "0001-01-01", "date_to": "0001-01-31"}, "bad_period"),
                         ({"date_from": "2020-01-01", "date_to": "2026-12-31"}, "bad_period"),
                         ({"period": "2026-11", "by": "region"}, "validation_error")):
        r = client.get("/api/v1/kpi", params=params, headers=people.h("admin"))
        assert r.status_code in (400, 422) and r.json()["error"]["code"] == code, params


HYPERLINK = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def formula_names(client, people):
    """Two CRM managers named like spreadsheet formulas; the first won a deal of -100 (a refund) in November 2026."""
    managers = io.StringIO()
    csv.writer(managers).writerows([["external_id", "name", "team"], ["201", HYPERLINK, "Moscow"], ["202", "@SUM(1)", "Moscow"]])
    deals = io.StringIO()
    csv.writer(deals).writerows([["deal_id", "created_at", "closed_at", "status", "amount", "manager"],
                                 ["F1", "2026-11-02 10:00", "2026-11-03 10:00", "won", "-100", HYPERLINK],
                                 ["F2", "2026-11-02 10:00", "", "open", "5", "@SUM(1)"]])
    for name, text in (("managers.csv", managers.getvalue()), ("deals.csv", deals.getvalue())):
        r = client.post("/api/v1/crm/import", files={"file": (name, text.encode())}, headers=people.h("admin"))
        assert r.status_code == 200 and not r.json()["errors"] and not r.json()["unmatched_managers"], r.text


def test_exports_write_a_name_that_looks_like_a_formula_as_text(client, people, formula_names):
    quoted = {"'" + HYPERLINK, "'@SUM(1)"}
    r = get(client, people, format="csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert quoted <= {row["name"] for row in rows}
    assert {row["name"]: row["revenue"] for row in rows}["'" + HYPERLINK] == "-100.0"  # a number stays a number

    x = get(client, people, format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(x.content))["summary"]
    header = [c.value for c in sheet[1]]
    cells = {row[header.index("name")].value: row for row in sheet.iter_rows(min_row=2)}
    assert quoted <= set(cells)
    for name in quoted:
        assert cells[name][header.index("name")].data_type == "s"  # text, not a formula
    revenue = cells["'" + HYPERLINK][header.index("revenue")]
    assert (revenue.data_type, revenue.value) == ("n", -100)

    form = client.get("/login").text  # the dashboard's own export, signed in to the web UI
    token = re.search(r'name="login_csrf" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"login_csrf": token, "next": "/", "username": "admin", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    r = client.get("/dashboard/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    names = {line[0] for line in csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";")}
    assert quoted <= names and HYPERLINK not in names


def test_the_xlsx_export_takes_a_name_with_control_characters(client, people, world, db):
    with db.sessions() as s:  # a bell and a vertical tab pasted into a CRM name: XML 1.0 cannot hold them
        s.get(Manager, people.other_manager_id).name = "Bo\x07ris\x0b"
        s.commit()
    x = get(client, people, format="xlsx")
    assert x.status_code == 200, x.text
    names = [row[1] for row in openpyxl.load_workbook(io.BytesIO(x.content))["summary"].iter_rows(min_row=2, values_only=True)]
    assert "Boris" in names
    r = get(client, people, format="csv")
    assert "Boris" in {row["name"] for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(1)", "'@SUM(1)"), ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"), ("Анна", "Анна"), ("a=b", "a=b"), ("-5", "-5"), ("+7.5", "+7.5"), ("-1,5e3", "-1,5e3"),
    (-100.0, -100.0), (3, 3), (None, None),
], ids=["equals", "plus", "minus", "at", "tab", "carriage-return", "name", "equals-inside", "negative-text",
        "plus-text", "decimal-comma-text", "negative-number", "integer", "empty"])
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(value, written):
    assert safe_cell(value) == written


def test_callqa_kpi_prints_the_managers_rows_of_the_sample_data(client, people, settings, monkeypatch):
    for name in ("managers.csv", "amocrm_deals.csv", "bitrix24_leads.csv", "bitrix24_deals.xlsx", "stage_history.csv",
                 "plans.csv"):
        r = client.post("/api/v1/crm/import", files={"file": (name, (CRM_DIR / name).read_bytes())}, headers=people.h("admin"))
        assert r.status_code == 200, r.text
    monkeypatch.setenv("CALLQA_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("CALLQA_DATA_DIR", str(settings.data_dir))
    from api.cli import app

    out = CliRunner().invoke(app, ["kpi", "--period", "2024-04"], terminal_width=200)
    assert out.exit_code == 0, out.output
    for name in ("Игорь Ляхов", "Наталья Орлова", "Анна Смирнова", "Олег Новиков", "Emma Clarke", "James Porter"):
        assert name in out.output
    as_json = CliRunner().invoke(app, ["kpi", "--period", "2024-04", "--by", "team", "--json"])
    report = json.loads(as_json.stdout.strip().splitlines()[-1])
    revenue = {r["name"]: r["revenue"] for r in report["summary"]}
    assert revenue == {"north": 1098500, "south": 2608000}
    # each CRM's pipeline is its own funnel: amoCRM stages never follow Bitrix24 ones
    steps = {(r["pipeline"], r["from_stage"], r["to_stage"]) for r in report["funnel"]}
    assert ("amocrm: Продажи", "Принимают решение", "Успешно реализовано") in steps
    assert ("bitrix24: Общее", "Счёт на предоплату", "Сделка успешна") in steps
    assert len({p for p, _, _ in steps}) == 2
    by_department = CliRunner().invoke(app, ["kpi", "--period", "2024-04", "--by", "department", "--json"])
    [sales] = json.loads(by_department.stdout.strip().splitlines()[-1])["summary"]
    assert (sales["name"], sales["revenue"], sales["leads"]) == ("sales", 3706500, 72)
    assert not any(isinstance(v, float) and math.isnan(v) for r in report["summary"] for v in r.values())
