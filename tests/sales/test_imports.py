"""CRM exports in: amoCRM and Bitrix24 shaped CSV/XLSX with Russian headers, cp1251 and BOM, bad rows."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzer.sales.errors import CrmFormatError
from analyzer.sales.imports import (
    leads_from_deals,
    normalise_phone,
    parse_datetimes,
    parse_deals,
    parse_number,
    read_deals,
    read_export,
    read_leads,
    read_plans,
    read_stage_history,
    status_from_stage,
)
from analyzer.sales.tables import RawTable

from .department import T


def errors_by_line(errors) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for e in errors:
        out.setdefault(e.line, []).append(e.reason)
    return out


@pytest.mark.parametrize("text, value", [
    ("1 234 567,89", 1234567.89),
    ("1\u00a0234\u00a0567,89", 1234567.89),   # Excel's no-break space
    ("150 000 ₽", 150000.0),
    ("150 000 руб.", 150000.0),
    ("1234567.89", 1234567.89),
    ("1,234,567.89", 1234567.89),
    ("1.234.567,89", 1234567.89),
    ("-500", -500.0),
    ("0,5", 0.5),                            # a single comma is a decimal comma
    ("", None),
    ("-", None),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["много", "12 шт", "1,2,3.4.5"])
def test_parse_number_rejects(text):
    with pytest.raises(ValueError):
        parse_number(text)


@pytest.mark.parametrize("text, phone", [
    ("+7 (912) 345-67-89", "+79123456789"),
    ("8 (912) 345-67-89", "+79123456789"),    # Russian trunk prefix 8 -> +7
    ("89123456789", "+79123456789"),
    ("79123456789", "+79123456789"),
    ("9123456789", "+79123456789"),          # national number without a prefix
    ("+7 913 000-00-01, +7 913 000 00 02", "+79130000001"),  # amoCRM joins several with commas: the first
    ("+7 495 123-45-67 доб. 123", "+74951234567"),
    ("+7 912 345 67 89 (Рабочий)", "+79123456789"),
    ("+44 20 7946 0958", "+442079460958"),
    ("", None),
])
def test_normalise_phone(text, phone):
    assert normalise_phone(text) == phone


@pytest.mark.parametrize("text", ["звоните вечером", "123", "+7 912"])
def test_normalise_phone_rejects(text):
    with pytest.raises(ValueError):
        normalise_phone(text)


def test_parse_datetimes_local_time_to_utc():
    values = pd.Series(["01.04.2024 10:15:00", "01.04.2024 10:15", "01.04.2024", "2024-04-01 10:15:00",
                        "2024-04-01T10:15:00+05:00", "не закрыта", "", "32.04.2024"])
    parsed, bad = parse_datetimes(values, tz="Europe/Moscow")
    # Moscow is UTC+3: 10:15 local = 07:15 UTC; an explicit offset is kept (+05:00 -> 05:15 UTC)
    assert parsed.tolist()[:5] == [T("2024-04-01 07:15"), T("2024-04-01 07:15"), T("2024-03-31 21:00"),
                                   T("2024-04-01 07:15"), T("2024-04-01 05:15")]
    assert parsed[5:].isna().all()
    assert bad.tolist() == [False] * 7 + [True]  # "не закрыта" and empty are missing, not errors


def test_parse_datetimes_calls_dates_a_timestamp_cannot_hold_bad():
    values = pd.Series(["31.12.9999 23:59", "0001-01-01", "9999-12-31T00:00:00Z", "2261-12-31 23:59", "01.01.1678"])
    parsed, bad = parse_datetimes(values, tz="UTC")
    assert bad.tolist() == [True, True, True, False, False]
    assert parsed[3] == T("2261-12-31 23:59") and parsed.dtype == "datetime64[ns, UTC]"


@pytest.mark.parametrize("stage, status", [
    ("Успешно реализовано", "won"), ("Сделка успешна", "won"), ("WON", "won"), ("C3:WON", "won"),
    ("Закрыто и не реализовано", "lost"), ("Сделка провалена", "lost"), ("LOSE", "lost"), ("C1:LOSE", "lost"),
    ("Анализ причины провала", "lost"), ("Переговоры", "open"), ("", "open"), ("Договор подписан", "open"),
])
def test_status_from_stage(stage, status):
    assert status_from_stage(pd.Series([stage])).tolist() == [status]


def test_custom_final_stages():
    s = status_from_stage(pd.Series(["Договор подписан", "Отказ"]), won_stages=["договор подписан"], lost_stages=["Отказ"])
    assert s.tolist() == ["won", "lost"]


@pytest.mark.parametrize("name", ["amocrm_deals_cp1251.csv", "amocrm_deals_utf8_bom.csv"])
def test_amocrm_deals_csv(crm_dir, name):
    deals, errors = read_deals(crm_dir / name)
    # the good rows land: 10452 (a note spanning two lines), 10453, 10456
    assert deals["deal_id"].tolist() == ["10452", "10453", "10456"]
    first = deals.iloc[0].to_dict()
    assert first["key"] == "amocrm:deal:10452" and first["crm"] == "amocrm"
    assert first["lead_id"] == "10452"                  # amoCRM: the deal is its own lead
    assert first["amount"] == 1234567.89                 # "1 234 567,89"
    assert first["client_phone"] == "+79123456789"       # "8 (912) 345-67-89"
    assert first["created_at"] == T("2024-04-01 07:15")  # 10:15 Moscow
    assert first["closed_at"] == T("2024-04-15 15:00")
    assert (first["status"], first["stage"], first["manager"], first["source"]) == (
        "won", "Успешно реализовано", "Игорь Ляхов", "Сайт")
    assert deals.loc[1, "closed_at"] is pd.NaT and deals.loc[1, "status"] == "open"  # "не закрыта"
    assert deals.loc[1, "client_phone"] == "+79130000001"  # the first of two mobile numbers
    assert deals.loc[2, "status"] == "lost" and deals.loc[2, "client_phone"] is None
    # bad rows are reported with their line in the file (the header is line 1; row 10452 spans lines 2-3)
    assert errors_by_line(errors) == {
        5: ["amount 'много' is not a number"],
        6: ["ID is empty"],
        7: ["created_at '32.04.2024 09:00:00' is not a date (dd.mm.yyyy hh:mm:ss or ISO 8601)"],
        8: ["Рабочий телефон 'звоните вечером' is not a phone number; left empty"],
        9: ["duplicate ID '10452' (first on line 2)"],
    }
    assert [e.skipped for e in errors] == [True, True, True, False, True]
    assert str(errors[0]) == "line 5: amount 'много' is not a number (row skipped)"


def test_amocrm_leads_are_its_deals(crm_dir):
    leads, errors = read_leads(crm_dir / "amocrm_deals_cp1251.csv")
    assert leads["key"].tolist() == ["amocrm:lead:10452", "amocrm:lead:10453", "amocrm:lead:10456"]
    assert leads.loc[0, "status"] == "converted" and leads.loc[0, "created_at"] == T("2024-04-01 07:15")
    assert len(errors) == 5


def test_nan_never_in_text_columns(crm_dir):
    deals, _ = read_deals(crm_dir / "amocrm_deals_cp1251.csv")
    for c in deals.columns:
        if deals[c].dtype == object:
            assert all(v is None or isinstance(v, str) for v in deals[c]), c


def test_bitrix24_deals_xlsx(crm_dir):
    export = read_export(crm_dir / "bitrix24_deals.xlsx")
    assert (export.entity, export.source) == ("deals", "bitrix24")
    deals = export.frame
    assert deals["key"].tolist() == ["bitrix24:deal:501", "bitrix24:deal:502", "bitrix24:deal:503"]
    assert deals["status"].tolist() == ["won", "open", "lost"]
    # native Excel dates are local time; a text date works too
    assert deals["created_at"].tolist() == [T("2024-04-01 07:15"), T("2024-04-05 11:30"), T("2024-04-02 06:00")]
    # the expected close date of an open deal is not a close
    assert deals["closed_at"].tolist()[0] == T("2024-04-12 13:00") and deals["closed_at"].isna().tolist()[1]
    assert deals["amount"].tolist() == [250000.0, 75000.5, 40000.0]  # a number cell, "75 000,50", a number
    assert deals["client_phone"].tolist() == ["+79123456789", "+79130000002", None]
    assert deals["pipeline"].tolist() == ["Общее"] * 3 and deals["currency"].tolist() == ["RUB"] * 3
    # the sheet's row numbers
    assert errors_by_line(export.errors) == {5: ["amount 'много' is not a number"], 6: ["created_at is empty"]}


def test_bitrix24_leads_csv(crm_dir):
    leads, errors = read_leads(crm_dir / "bitrix24_leads.csv")
    assert leads["key"].tolist() == ["bitrix24:lead:71", "bitrix24:lead:72", "bitrix24:lead:73"]
    assert leads["status"].tolist() == ["converted", "open", "junk"]
    assert leads["client_phone"].tolist() == ["+79123456789", "+79130000002", None]
    assert leads["created_at"].tolist()[2] == T("2024-04-03 09:00")  # ISO without seconds
    assert errors_by_line(errors) == {5: ["created_at 'вчера' is not a date (dd.mm.yyyy hh:mm:ss or ISO 8601)"]}


def test_generic_deals(crm_dir):
    deals, errors = read_deals(crm_dir / "generic_deals.csv")
    assert deals["deal_id"].tolist() == ["D1", "D2", "D3", "D5"]
    assert deals["created_at"].tolist()[0] == T("2024-04-01 07:30")   # ISO with +03:00 kept
    assert deals["status"].tolist() == ["won", "lost", "open", "won"]  # D5: no status, a won stage
    assert deals["amount"].isna().tolist() == [False, False, True, False]
    assert errors_by_line(errors) == {5: ["status 'maybe' is not won, lost or open"]}


def test_generic_plans(crm_dir):
    plans, errors = read_plans(crm_dir / "generic_plans.csv")
    msk = "Europe/Moscow"
    april = (pd.Timestamp("2024-04-01", tz=msk).tz_convert("UTC"), pd.Timestamp("2024-05-01", tz=msk).tz_convert("UTC"))
    assert plans.to_dict("records")[0] == {"manager": "Игорь Ляхов", "period_start": april[0], "period_end": april[1],
                                           "revenue_plan": 2000000.0, "activity_plan": 400.0, "activity_kind": "calls"}
    assert plans["activity_kind"].tolist() == ["calls", "meetings", "calls"]
    assert plans.loc[2, "period_end"] == pd.Timestamp("2024-07-01", tz=msk)  # 2024-Q2
    assert errors_by_line(errors) == {5: ["period 'апрель' is not a month or quarter (2024-05, 05.2024, 2024-Q2)"]}


def test_russian_plans_with_dates_cp1251(crm_dir):
    plans, errors = read_plans(crm_dir / "plans_ru_cp1251.csv")
    assert not errors
    # "по 30.04.2024" includes the 30th: the half-open end is 1 May
    assert plans.loc[0, "period_end"] == pd.Timestamp("2024-05-01", tz="Europe/Moscow")
    assert plans["revenue_plan"].tolist() == [2000000.0, 1500000.5]
    assert plans["activity_kind"].tolist() == ["meetings", "meetings"]  # from the header "План встреч"


def test_generic_stage_history(crm_dir):
    history, errors = read_stage_history(crm_dir / "generic_stage_history.csv")
    assert history["stage"].tolist() == ["Первичный контакт", "Переговоры", "Успешно реализовано", "Первичный контакт"]
    assert history["key"].tolist()[0] == "generic:deal:D1"
    assert errors_by_line(errors) == {6: ["entered_at is empty"]}


def test_missing_required_column_names_it():
    table = RawTable.from_records([{"ID": "1", "Ответственный": "Анна", "Этап сделки": "Переговоры"}])
    with pytest.raises(CrmFormatError, match="no column for created_at: one of 'created_at', 'дата создания сделки'"):
        parse_deals(table)


def test_no_stage_and_no_status_is_an_error():
    table = RawTable.from_records([{"deal_id": "1", "created_at": "2024-04-01", "amount": "5"}])
    with pytest.raises(CrmFormatError, match="cannot tell won deals from lost"):
        parse_deals(table)


def test_leads_from_deals_keeps_the_earliest_deal_per_lead():
    deals = pd.DataFrame({"crm": "generic", "deal_id": ["a", "b"], "lead_id": ["L", "L"], "created_at": [T("2024-04-02"), T("2024-04-01")],
                          "manager": ["x", "y"], "source": None, "client": None, "client_phone": None, "title": None,
                          "status": ["open", "won"]})
    leads = leads_from_deals(deals)
    assert leads[["key", "manager", "status"]].to_dict("records") == [{"key": "generic:lead:L", "manager": "y",
                                                                        "status": "converted"}]
