"""CRM import through the API, on SQLite and PostgreSQL: what a head of sales sees when loading exports."""

from __future__ import annotations

import io
import itertools
import random
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.app import create_app
from api.crm.models import Deal, DealStageEntry, Lead, SalesPlan
from api.models import Call, Manager
from tests.helpers import NoExecutor

CRM = Path(__file__).resolve().parents[2] / "sample_calls" / "crm"


def upload(client, people, path: Path | str, *, data: bytes | None = None, role: str = "admin", **form):
    name = Path(path).name
    body = data if data is not None else Path(path).read_bytes()
    return client.post("/api/v1/crm/import", files={"file": (name, body, "application/octet-stream")}, data=form,
                       headers=people.h(role))


def counts(db) -> dict[str, int]:
    with db.sessions() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Lead, Deal, DealStageEntry, SalesPlan, Manager)}


def test_importing_the_same_exports_twice_changes_nothing(client, people, db):
    files = ["managers.csv", "amocrm_deals.csv", "bitrix24_leads.csv", "bitrix24_deals.xlsx", "stage_history.csv", "plans.csv"]
    first = {f: upload(client, people, CRM / f).json() for f in files}
    assert first["amocrm_deals.csv"]["source"] == "amocrm" and first["amocrm_deals.csv"]["entity"] == "deals"
    assert first["amocrm_deals.csv"]["inserted"] == 24
    assert first["amocrm_deals.csv"]["also"]["leads"]["inserted"] == 24  # an amoCRM deal is its own lead
    assert (first["bitrix24_deals.xlsx"]["source"], first["bitrix24_deals.xlsx"]["inserted"]) == ("bitrix24", 48)
    assert first["bitrix24_leads.csv"]["entity"] == "leads"
    assert first["stage_history.csv"]["inserted"] == 254
    assert first["plans.csv"]["entity"] == "plans" and first["plans.csv"]["inserted"] == 6
    # extensions 101 and 102 are known (Anna, Boris): renamed as the list says; four managers are new
    assert first["managers.csv"]["entity"] == "managers"
    assert (first["managers.csv"]["inserted"], first["managers.csv"]["updated"]) == (4, 2)
    assert all(not r["errors"] and not r["unmatched_managers"] for r in first.values())
    before = counts(db)
    assert before["crm_deals"] == 72 and before["crm_leads"] == 72

    again = {f: upload(client, people, CRM / f).json() for f in files}
    for f, r in again.items():
        assert (r["inserted"], r["updated"]) == (0, 0), f
        assert r["unchanged"] == first[f]["rows"], f
    with db.sessions() as s:
        assert s.get(Manager, people.manager_id).name == "Игорь Ляхов"
    assert again["amocrm_deals.csv"]["also"]["leads"] == {"inserted": 0, "updated": 0, "unchanged": 24}
    assert counts(db) == before
    with db.sessions() as s:  # every CRM row found its manager by the CRM's name
        assert s.scalar(select(func.count()).select_from(Deal).where(Deal.manager_id.is_(None))) == 0


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_land(client, people, db):
    csv = ("deal_id,lead_id,created_at,closed_at,status,amount,manager,client_phone\n"
           "D1,L1,2026-11-02 10:00,2026-11-10 12:00,won,100000,Anna,+79160000001\n"
           "D2,L2,second of november,,open,5000,Anna,+79160000002\n"
           "D3,L3,2026-11-03 10:00,2026-11-12 12:00,lost,много,Boris,+79160000003\n"
           "D4,L4,2026-11-04 10:00,,open,7 500,Boris,not a phone\n")
    r = upload(client, people, "deals.csv", data=csv.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["entity"], body["source"], body["inserted"]) == ("deals", "generic", 2)
    by_line = {e["line"]: e for e in body["errors"]}
    assert by_line[3]["column"] == "created_at" and by_line[3]["skipped"] and "second of november" in by_line[3]["reason"]
    assert by_line[4]["column"] == "amount" and by_line[4]["skipped"]
    assert by_line[5]["skipped"] is False  # a bad phone is reported, the deal still lands
    with db.sessions() as s:
        deals = {d.crm_id: d for d in s.scalars(select(Deal))}
    assert set(deals) == {"D1", "D4"}
    assert deals["D1"].amount == 100000 and deals["D1"].status == "won" and deals["D1"].manager_id == people.manager_id
    assert deals["D4"].client_phone is None and deals["D4"].amount == 7500


def test_pushed_records_upsert_and_count_updates(client, people, db):
    rows = [{"deal_id": "D1", "created_at": "2026-11-02T10:00:00+03:00", "status": "open", "amount": "1000", "manager": "Anna"},
            {"deal_id": "D2", "created_at": "2026-11-03T10:00:00+03:00", "status": "open", "amount": "2000", "manager": "Boris"}]
    r = client.post("/api/v1/crm/records", json={"entity": "deals", "records": rows}, headers=people.h("head_of_sales"))
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["entity"]) == (2, "deals")
    rows[0] = {**rows[0], "status": "won", "closed_at": "2026-11-20T10:00:00+03:00"}
    r = client.post("/api/v1/crm/records", json={"records": rows}, headers=people.h("head_of_sales")).json()
    assert (r["inserted"], r["updated"], r["unchanged"]) == (0, 1, 1)
    with db.sessions() as s:
        d1 = s.scalar(select(Deal).where(Deal.crm_id == "D1"))
        assert d1 is not None and d1.status == "won" and d1.closed_at is not None
        assert d1.manager_id == people.manager_id
    rows[0] = {**rows[0], "manager": "Boris"}  # the deal was handed over in the CRM
    r = client.post("/api/v1/crm/records", json={"records": rows}, headers=people.h("head_of_sales")).json()
    assert (r["updated"], r["unchanged"]) == (1, 1)
    with db.sessions() as s:
        assert s.scalar(select(Deal.manager_id).where(Deal.crm_id == "D1")) == people.other_manager_id
    bad = client.post("/api/v1/crm/records", json={"records": [{"deal_id": "", "created_at": "x", "status": "won"}]},
                      headers=people.h("admin")).json()
    assert bad["inserted"] == 0 and bad["errors"][0]["line"] == 1


def test_entity_and_source_can_be_overridden(client, people):
    csv = "ID;Название лида;Ответственный;Дата создания;Статус\n77;Заявка;Anna;01.11.2026 10:00;NEW\n"
    detected = upload(client, people, "leads.csv", data=csv.encode("cp1251")).json()
    assert (detected["entity"], detected["source"], detected["inserted"]) == ("leads", "bitrix24", 1)
    forced = upload(client, people, "leads.csv", data=csv.encode("cp1251"), source="generic").json()
    assert forced["source"] == "generic" and forced["inserted"] == 1  # another CRM: another key
    plain = "ID;Название;Ответственный;Дата создания\n78;Заявка;Anna;01.11.2026 10:00\n".encode()
    r = upload(client, people, "list.csv", data=plain)  # detected as deals, which need a stage or status column
    assert r.status_code == 422 and r.json()["error"]["code"] == "crm_format_error"
    as_leads = upload(client, people, "list.csv", data=plain, entity="leads").json()
    assert (as_leads["entity"], as_leads["inserted"]) == ("leads", 1)


def test_an_unreadable_file_and_wrong_roles_are_json_errors(client, people):
    r = upload(client, people, "notes.csv", data=b"hello\nworld\n")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "crm_format_error" and "header" in r.json()["error"]["message"]
    r = upload(client, people, "x.csv", data=b"", role="admin")
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_file"
    for role in ("manager", "quality_controller"):
        r = upload(client, people, CRM / "plans.csv", role=role)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.post("/api/v1/crm/import", files={"file": ("plans.csv", (CRM / "plans.csv").read_bytes())})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = upload(client, people, CRM / "managers.csv", role="head_of_sales")
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    r = upload(client, people, CRM / "plans.csv", entity="contacts")
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


DEALS_CSV = "deal_id,created_at,status,manager\nD1,2026-11-02 10:00,open,Anna\n"
NOT_TEXT = {
    "random-bytes": random.Random(0).randbytes(4096),  # holds 0x98, which cp1251 leaves undefined
    "utf16-odd-length": "\ufeff".encode("utf-16-le") + DEALS_CSV.encode("utf-16-le") + b"\x00",
    "utf8-bom-then-invalid": b"\xef\xbb\xbf" + DEALS_CSV.encode() + b"D2,2026-11-03 10:00,open,\xff\xfe\x80\n",
    "cp1251-undefined-byte": DEALS_CSV.encode("cp1251") + b"D2,2026-11-03 10:00,open,\x98\n",
}


@pytest.mark.parametrize("data", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_a_csv_in_no_known_encoding_is_422_saying_how_to_save_it(client, people, db, data):
    r = upload(client, people, "deals.csv", data=data)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "crm_format_error"
    assert error["message"].startswith("deals.csv: ") and "UTF-8" in error["message"] and "XLSX" in error["message"]
    assert counts(db)["crm_deals"] == 0


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>")
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rId1" Type="{RELATIONSHIPS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 f'<Relationship Id="rId1" Type="{RELATIONSHIPS}/worksheet" Target="worksheets/sheet1.xml"/>'
                 f'<Relationship Id="rId2" Type="{RELATIONSHIPS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
ONE_SHEET = '<sheet name="deals" sheetId="1" r:id="rId1"/>'


def xlsx(rows: str | Iterable[str], *, strings: tuple[str, ...] = (), sheets: str = ONE_SHEET, leave_out: str = "",
         dimension: str | None = None) -> bytes:
    """A workbook written part by part, so a test can break any part: ``rows`` is the sheet's
    ``<row>`` elements (or pieces of them, streamed into the zip), ``strings`` its shared strings,
    ``dimension`` the range the sheet declares (``A1:D2``)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    parts = {
        "[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": PACKAGE_RELS, "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{RELATIONSHIPS}"><sheets>{sheets}</sheets></workbook>',
        "xl/sharedStrings.xml": f'<sst xmlns="{main}">' + "".join(f"<si><t>{t}</t></si>" for t in strings) + "</sst>",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            if name != leave_out:
                z.writestr(name, text)
        if leave_out != "xl/worksheets/sheet1.xml":
            with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
                sheet.write(f'<worksheet xmlns="{main}">{declared}<sheetData>'.encode())
                for piece in [rows] if isinstance(rows, str) else rows:
                    sheet.write(piece.encode())
                sheet.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def row(number: int, *cells: str) -> str:
    """A sheet row of text cells; a cell already written as ``<c ...>`` goes in as it is (``@`` = its reference)."""
    out = []
    for i, cell in enumerate(cells):
        ref = f"{chr(65 + i)}{number}"
        out.append(cell.replace("@", ref) if cell.startswith("<c") else f'<c r="{ref}" t="inlineStr"><is><t>{cell}</t></is></c>')
    return f'<row r="{number}">{"".join(out)}</row>'


HEADER = row(1, "deal_id", "created_at", "status", "manager")
GOOD_XLSX = xlsx(HEADER + row(2, "D1", "2026-11-02 10:00", "open", "Anna"))
BROKEN_XLSX = {
    "shared-string-past-the-end": xlsx(HEADER + row(2, "D1", "2026-11-02 10:00", "open", '<c r="@" t="s"><v>5</v></c>'),
                                       strings=("Anna",)),
    "text-in-a-number-cell": xlsx(HEADER + row(2, "D1", "2026-11-02 10:00", "open", '<c r="@"><v>Anna</v></c>')),
    "boolean-that-is-not": xlsx(HEADER + row(2, "D1", "2026-11-02 10:00", "open", '<c r="@" t="b"><v>yes</v></c>')),
    "cell-reference-out-of-the-sheet": xlsx(HEADER + '<row r="2"><c r="ZZZZZZ2"><v>1</v></c></row>'),
    "row-number-not-a-number": xlsx(HEADER + '<row r="two"><c><v>1</v></c></row>'),
    "no-sheet": xlsx(HEADER, sheets=""),
    "sheet-part-missing": xlsx(HEADER, leave_out="xl/worksheets/sheet1.xml"),
    "malformed-sheet-xml": xlsx(HEADER + '<row r="2"><c r="A2"><v>1</v></row>'),
    "no-workbook": xlsx(HEADER, leave_out="xl/workbook.xml"),
    "not-a-zip": b"PK\x03\x04" + b"\x00" * 200,
    "truncated": GOOD_XLSX[: len(GOOD_XLSX) // 2],
    "row-past-the-last-row-of-a-sheet": xlsx(HEADER + row(1_048_577, "D1", "2026-11-02 10:00", "open", "Anna")),
}


@pytest.mark.parametrize("data", BROKEN_XLSX.values(), ids=BROKEN_XLSX.keys())
def test_a_broken_xlsx_is_422_crm_format_error(client, people, db, data):
    assert upload(client, people, "deals.xlsx", data=GOOD_XLSX).json()["inserted"] == 1  # the builder's workbook is good
    r = upload(client, people, "deals.xlsx", data=data)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "crm_format_error" and error["message"].startswith("deals.xlsx: not a readable XLSX workbook")
    assert counts(db)["crm_deals"] == 1


@pytest.fixture
def client_with(settings, db):
    """The API with settings changed: ``client_with(crm_max_rows=10)``."""
    opened = []

    def make(**changes):
        opened.append(TestClient(create_app(settings.model_copy(update=changes), db=db, executor=NoExecutor())))
        return opened[-1].__enter__()

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def assert_too_large(r, setting: str, says: str) -> None:
    assert r.status_code == 413, r.text[:500]
    error = r.json()["error"]
    assert error["code"] == "crm_file_too_large", error
    assert setting in error["message"] and says in error["message"], error["message"]


def test_an_xlsx_decompression_bomb_is_refused_from_its_zip_directory_before_any_row_is_read(client_with, people, db):
    thousand_rows = '<row><c t="inlineStr"><is><t>D1</t></is></c></row>' * 1000
    bomb = xlsx(itertools.chain([HEADER], itertools.repeat(thousand_rows, 1000)))
    assert len(bomb) < 200_000  # a million rows, 50 MB of sheet
    # with the row limit at 10 a refusal from reading would name CALLQA_CRM_MAX_ROWS: this one comes first
    c = client_with(crm_max_rows=10)
    assert_too_large(upload(c, people, "deals.xlsx", data=bomb), "CALLQA_CRM_MAX_COMPRESSION_RATIO", "times its size")
    # less compressible (numbered rows), yet past the unpacked limit
    numbered = xlsx(HEADER + "".join(row(i, f"D{i}", "2026-11-02 10:00", "open", "Anna") for i in range(2, 20_000)))
    assert len(numbered) < 1024 * 1024
    c = client_with(crm_max_rows=10, crm_max_unpacked_mb=1)
    assert_too_large(upload(c, people, "deals.xlsx", data=numbered), "CALLQA_CRM_MAX_UNPACKED_MB", "more than 1.0 MB")
    assert counts(db)["crm_deals"] == 0


def test_a_workbook_naming_one_sheet_part_many_times_is_refused_before_its_sheets_are_opened(client_with, people, db):
    # openpyxl reads a sheet's part once for each sheet naming it: 40 times 70 KB here, 20,000 times 5 MB in a bomb
    rows = HEADER + "".join(row(i, f"D{i}", "2026-11-02 10:00", "open", "Anna") for i in range(2, 500))
    forty = "".join(f'<sheet name="s{i}" sheetId="{i}" r:id="rId1"/>' for i in range(1, 41))
    c = client_with(crm_max_unpacked_mb=1)
    assert_too_large(upload(c, people, "deals.xlsx", data=xlsx(rows, sheets=forty)), "CALLQA_CRM_MAX_UNPACKED_MB",
                     "its 40 sheets name parts that unpack to")
    assert upload(c, people, "deals.xlsx", data=xlsx(rows)).json()["inserted"] == 498


def test_an_export_past_the_row_limit_is_413_naming_the_setting(client_with, people, db):
    c = client_with(crm_max_rows=10)
    header, line = "deal_id,created_at,status\n", "D{},2026-11-02 10:00,open\n"
    nine = header + "".join(line.format(i) for i in range(9))
    assert upload(c, people, "deals.csv", data=nine.encode()).json()["inserted"] == 9  # 10 rows with the header
    ten = nine + line.format(9)
    assert_too_large(upload(c, people, "deals.csv", data=ten.encode()), "CALLQA_CRM_MAX_ROWS", "more than 10 rows")
    sheet = xlsx(HEADER + "".join(row(i, f"X{i}", "2026-11-02 10:00", "open", "Anna") for i in range(2, 13)))
    assert_too_large(upload(c, people, "deals.xlsx", data=sheet), "CALLQA_CRM_MAX_ROWS", "more than 10 rows")
    assert counts(db)["crm_deals"] == 9


@pytest.mark.parametrize(("name", "chars"), [("deals.csv", 140_000), ("deals.csv", 40_000), ("deals.xlsx", 40_000)],
                         ids=["csv-past-the-csv-module-limit", "csv", "xlsx"])
def test_a_cell_past_the_size_limit_is_413_naming_the_setting(client, people, db, name, chars):
    def export(note: str) -> bytes:  # a column the import does not store: any length would do
        if name.endswith(".csv"):
            return f"deal_id,created_at,status,note\nD1,2026-11-02 10:00,open,{note}\n".encode()
        return xlsx(row(1, "deal_id", "created_at", "status", "note") + row(2, "D1", "2026-11-02 10:00", "open", note))

    assert_too_large(upload(client, people, name, data=export("x" * chars)), "CALLQA_CRM_MAX_CELL_CHARS", "32,767")
    assert upload(client, people, name, data=export("x" * 32_767)).json()["inserted"] == 1  # Excel's own limit is fine


def test_a_sheet_is_read_by_its_cells_not_by_the_dimensions_it_declares(client_with, people, db):
    rows = HEADER + row(2, "D1", "2026-11-02 10:00", "open", "Anna")
    r = upload(client_with(), people, "deals.xlsx", data=xlsx(rows, dimension="A1:A1"))  # declared too small
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    # declared as the whole sheet: a million rows of 18,278 cells from 2 KB, were the rows padded to it
    r = upload(client_with(), people, "deals.xlsx", data=xlsx(rows + row(3, "D2", "2026-11-02 10:00", "open", "Anna"),
                                                               dimension="A1:ZZZ1048576"))
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    wide = rows + '<row r="3"><c r="ZZZ3" t="inlineStr"><is><t>far right</t></is></c></row>'
    r = upload(client_with(crm_max_columns=8), people, "deals.xlsx", data=xlsx(wide))
    assert_too_large(r, "CALLQA_CRM_MAX_COLUMNS", "line 3 has 18,278 cells, more than 8")


def test_dates_outside_the_representable_range_are_bad_rows_not_failures(client, people, db):
    csv = ("deal_id,created_at,closed_at,status\n"
           "D1,9999-12-31 23:59,,open\n"
           "D2,0001-01-01,,open\n"
           "D3,2026-11-02T10:00:00+03:00,9999-12-31T00:00:00Z,won\n"
           "D4,2026-11-02 10:00,,open\n")
    r = upload(client, people, "deals.csv", data=csv.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert {(e["line"], e["column"]) for e in body["errors"]} == {(2, "created_at"), (3, "created_at"), (4, "closed_at")}
    assert body["inserted"] == 2  # D3 lands without its impossible close date
    with db.sessions() as s:
        assert {d.crm_id: d.closed_at for d in s.scalars(select(Deal))} == {"D3": None, "D4": None}


def test_nul_characters_in_crm_cells_never_reach_the_database(client, people, db):
    csv = "deal_id,created_at,status,manager,client\nD1,2026-11-02 10:00,open,An\x00na,ООО\x00 Ромашка\x00\n"
    r = upload(client, people, "deals.csv", data=csv.encode("utf-8"))
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    r = client.post("/api/v1/crm/records", headers=people.h("admin"), json={"records": [
        {"deal_id": "D2\x00", "created_at": "2026-11-03 10:00", "status": "open", "manager\x00": "\x00Anna", "client": "\x00"}]})
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    with db.sessions() as s:
        deals = {d.crm_id: d for d in s.scalars(select(Deal))}
    assert set(deals) == {"D1", "D2"}
    assert deals["D1"].client == "ООО Ромашка" and deals["D2"].client is None
    assert all(d.manager_name == "Anna" and d.manager_id == people.manager_id for d in deals.values())


def test_a_lone_surrogate_in_pushed_records_is_dropped_not_a_500(client, people, db):
    body = '{"records": [{"deal_id": "D1", "created_at": "2026-11-02 10:00", "status": "open", "manager": "An\\ud800na"}]}'
    r = client.post("/api/v1/crm/records", content=body.encode(), headers={**people.h("admin"), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    with db.sessions() as s:
        assert s.scalar(select(Deal)).manager_id == people.manager_id


def test_callqa_import_with_a_metadata_csv_ties_the_sample_recordings_to_crm_rows(settings, db, monkeypatch):
    monkeypatch.setenv("CALLQA_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("CALLQA_DATA_DIR", str(settings.data_dir))
    from api.cli import app

    audio = CRM.parent / "audio"
    out = CliRunner().invoke(app, ["import", str(audio), "--metadata", str(CRM / "calls.csv")])
    assert out.exit_code == 0, out.output
    with db.sessions() as s:
        calls = {c.recording.original_name: c for c in s.scalars(select(Call))}
        assert len(calls) == 5
        mono = calls["ru_12_telecom_hangup_mono.mp3"]  # found by its file name in the audio column
        assert mono.client_phone == "+79125000035" and mono.started_at.isoformat() == "2024-04-09T08:07:00+00:00"
        assert mono.manager is not None and mono.manager.external_id == "202"
        en = calls["en_07_recruiting_gives_up_on_budget.ogg"]
        assert (en.crm_lead_id, en.crm_deal_id, en.direction.value) == ("7006", "10406", "outbound")
    # a second import with the metadata changes nothing; a call stored without it gets what it lacks
    with db.sessions() as s:
        en = s.scalar(select(Call).where(Call.crm_deal_id == "10406"))
        en.crm_deal_id, en.client_phone = None, "+70000000000"
        s.commit()
    out = CliRunner().invoke(app, ["import", str(audio), "--metadata", str(CRM / "calls.csv")])
    assert out.exit_code == 0 and "0 queued, 5 already stored" in out.output.replace("\n", " ")
    with db.sessions() as s:
        en = s.scalar(select(Call).where(Call.crm_lead_id == "7006"))
        assert en.crm_deal_id == "10406" and en.client_phone == "+70000000000"  # filled in, not overwritten
