"""The one writer of the CSV and XLSX files the service hands out (the KPI table, the dashboard's
table, a script's reviewed examples), made safe to open in a spreadsheet.

CSV is UTF-8 with a byte order mark: without it Excel reads the file as the system's code page and
Cyrillic turns to mojibake. The separator is the caller's: ``,`` by default, ``;`` for files made for
a spreadsheet in a Russian locale (its list separator; Excel splits a ``,`` file into nothing there).

Every cell passes through :func:`safe_cell`. Text starting with ``=``, ``+``, ``-`` or ``@`` (or a
tab or carriage return, which spreadsheets skip before one) is read as a formula by Excel and
LibreOffice when the file is opened, and openpyxl writes such a string into an XLSX as a formula: a
CRM manager named ``=HYPERLINK("http://evil", "x")`` would become a link. Such text gets a single
quote in front (OWASP's advice for CSV injection) and stays text. Numbers stay numbers, and so does
text that is only a number (``-5``). Control characters XML 1.0 cannot hold (a bell pasted into a
CRM name) are dropped: openpyxl refuses to write them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi.responses import Response

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Rows = Iterable[Sequence[Any]]
"""A table as rows of cells, the header first."""


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell that is never run as a formula and that XLSX can hold."""
    if not isinstance(value, str):
        return value
    value = _NOT_XML.sub("", value)
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def records_table(records: Sequence[Mapping[str, Any]], *, columns: Mapping[str, str] | None = None) -> list[list[Any]]:
    """Dicts (JSON records) as a table: a header row, then a row per record. ``columns`` picks the
    columns and titles them (key -> title); by default every key of the first record, as it is."""
    keys = list(columns) if columns is not None else (list(records[0]) if records else [])
    header = [columns[k] for k in keys] if columns is not None else keys
    return [header, *([r.get(k) for k in keys] for r in records)]


def csv_bytes(rows: Rows, *, sep: str = ",") -> bytes:
    """The rows as CSV, UTF-8 with a byte order mark; an empty cell for None."""
    out = io.StringIO()
    csv.writer(out, delimiter=sep).writerows([safe_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(sheets: Iterable[tuple[str, Rows]]) -> bytes:
    """A workbook with a sheet per (title, rows)."""
    import openpyxl  # only the XLSX download needs it: not loaded by every worker and CLI run

    wb = openpyxl.Workbook(write_only=True)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append([safe_cell(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def download(data: bytes, *, media_type: str, filename: str) -> Response:
    """A file to save: ``data`` with the header that makes a browser save it as ``filename``."""
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
