"""CRM export files as tables: encodings, separators, title rows, broken and hostile files, read limits."""

from __future__ import annotations

import pytest

from analyzer.sales.errors import CrmFormatError, CrmLimitError
from analyzer.sales.imports import parse_deals
from analyzer.sales.tables import RawTable, ReadLimits, table_from_bytes


@pytest.mark.parametrize("data", [b"", b"hello;world\n1;2\n", b"\x00\x01\x02binary"])
def test_not_an_export(data):
    with pytest.raises(CrmFormatError, match="no header row"):
        table_from_bytes(data, name="x.csv")


def test_old_xls_and_broken_xlsx():
    with pytest.raises(CrmFormatError, match="old binary .xls"):
        table_from_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, name="deals.xls")
    with pytest.raises(CrmFormatError, match="not a readable XLSX"):
        table_from_bytes(b"PK\x03\x04 broken zip", name="deals.xlsx")


@pytest.mark.parametrize(("limits", "limit"), [
    (ReadLimits(max_rows=2), "max_rows"),
    (ReadLimits(max_columns=3), "max_columns"),
    (ReadLimits(max_cell_chars=12), "max_cell_chars"),
], ids=["rows", "columns", "cell"])
def test_reading_stops_at_the_limits_the_caller_passes(limits, limit):
    text = "deal_id,created_at,status\nD1,2024-04-01,open\nD2,2024-04-01,open,a longer note\n"
    table = table_from_bytes(text.encode())  # the defaults take it (the last row with a cell too many)
    assert len(table.rows) == 1 and table.errors[0].line == 3
    with pytest.raises(CrmLimitError) as err:
        table_from_bytes(text.encode(), name="deals.csv", limits=limits)
    assert err.value.limit == limit and err.value.code == "crm_file_too_large"
    assert str(err.value).startswith("deals.csv: ") and "line 3" in str(err.value)


def test_nul_characters_are_dropped_from_files_and_records():
    table = table_from_bytes("deal_id,created_at,manager\nD\x001,2024-04-01,Ан\x00на\n".encode())
    assert table.rows == [["D1", "2024-04-01", "Анна"]]
    records = RawTable.from_records([{"deal_id\x00": "D\x001", "manager": "\x00"}])
    assert (records.headers, records.rows) == (["deal_id", "manager"], [["D1", ""]])


def test_title_rows_above_the_header_are_skipped():
    text = "Сделки за апрель\n\nID;Название сделки;Бюджет;Дата создания;Этап сделки\n7;Тест;1 000;01.04.2024;Переговоры\n"
    deals, errors = parse_deals(table_from_bytes(text.encode("utf-8")))
    assert deals["deal_id"].tolist() == ["7"] and not errors


def test_a_row_with_too_many_cells_is_reported():
    text = "ID;Название сделки;Бюджет;Дата создания;Этап сделки\n7;Тест;1 000;01.04.2024;Переговоры;лишнее\n8;Ок;5;01.04.2024;Переговоры\n"
    deals, errors = parse_deals(table_from_bytes(text.encode("utf-8")))
    assert deals["deal_id"].tolist() == ["8"]
    assert errors[0].line == 2 and "6 cells but the header has 5" in errors[0].reason


def test_utf16_tab_separated_excel_text():
    text = "ID\tНазвание сделки\tБюджет\tДата создания\tЭтап сделки\r\n7\tТест\t1 000\t01.04.2024\tПереговоры\r\n"
    deals, _ = parse_deals(table_from_bytes(text.encode("utf-16")))
    assert deals.loc[0, "amount"] == 1000.0
