"""The small department of the KPI tests (``department.py`` describes it) as fixtures, and the sample CRM exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzer.sales.frames import SalesData

from .department import T


@pytest.fixture(scope="module")
def crm_dir(data_dir):
    return data_dir / "crm"


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
