"""CRM export files as tables of text: CSV or XLSX bytes to a :class:`RawTable` (headers, string
cells and the file line each row came from), within the caller's :class:`ReadLimits`.

CSV: UTF-8 (with or without BOM), UTF-16 with BOM, or cp1251; ``;``, ``,`` or tab separated;
quoted cells may span lines (line numbers in errors are physical lines of the file). NUL characters
are dropped from every cell and header, of files and records alike: no text column of PostgreSQL
can hold one (nor a lone surrogate, which JSON records may carry: dropped too). Title lines above
the header row are skipped: the header is the first row with two known column names
(:data:`analyzer.sales.headers.KNOWN_HEADERS`).

Limits (:class:`ReadLimits`, passed by the caller): an XLSX's unpacked size and compression ratio
are read from the zip's directory before anything is unpacked; rows, cells a row and characters a
cell are counted as rows stream in, and reading stops at the first past a limit. A sheet's declared
dimensions are not trusted: rows are as wide as their cells.

The only I/O is :func:`read_table`; everything else takes bytes or text.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.sales.errors import CrmFormatError, CrmLimitError
from analyzer.sales.headers import KNOWN_HEADERS, normalise_header


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much an export may hold before reading it stops with :class:`CrmLimitError`.

    The defaults take real exports of a few hundred thousand rows; they bound what a hostile file
    costs (a 150 KB XLSX can unpack to a million rows, a 2 KB one declare a million rows of 18,278
    cells)."""

    max_rows: int = 300_000
    """Non-empty rows, the header and any title lines above it included."""
    max_columns: int = 1_000
    """Cells in one row, up to its last non-empty one (exports with every custom field have a few hundred)."""
    max_cell_chars: int = 32_767
    """Characters in one cell: Excel's own limit. A CSV cell cannot go past 131,072 (Python's csv module)."""
    max_unpacked_bytes: int = 512 * 1024 * 1024
    """An XLSX's parts once unpacked, as its zip directory declares them (reading never goes past that)."""
    max_compression_ratio: float = 100.0
    """Unpacked size over file size, for an XLSX unpacking to more than 10 MB: exports are about 10."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row of an export. ``skipped``: the row was not loaded."""

    line: int
    reason: str
    column: str | None = None
    value: str | None = None
    skipped: bool = True

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" + (" (row skipped)" if self.skipped else "")


@dataclass(frozen=True)
class RawTable:
    """An export as read: header cells, rows of string cells, and the file line of each row."""

    headers: list[str]
    rows: list[list[str]]
    lines: list[int]
    name: str = ""
    errors: list[RowError] = field(default_factory=list)
    """Rows that could not even be split into cells as the header says (too many cells)."""

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], *, first_line: int = 2, name: str = "") -> RawTable:
        """Rows given as dicts (tests, API payloads); line numbers count from ``first_line``."""
        headers: list[str] = []
        for r in records:
            headers += [h for h in r if h not in headers]
        rows = [[_cell(r.get(h)) for h in headers] for r in records]
        return cls([_cell(h) for h in headers], rows, list(range(first_line, first_line + len(rows))), name)


# --- reading ---------------------------------------------------------------------------------

def read_table(path: str | Path, *, limits: ReadLimits = ReadLimits()) -> RawTable:
    """Read a CSV or XLSX export (I/O only; see :func:`table_from_bytes`)."""
    p = Path(path)
    return table_from_bytes(p.read_bytes(), name=p.name, limits=limits)


def table_from_bytes(data: bytes, *, name: str = "", limits: ReadLimits = ReadLimits()) -> RawTable:
    """XLSX (a zip) or CSV bytes to a :class:`RawTable`, within ``limits``."""
    if data[:4] == b"PK\x03\x04":
        return table_from_xlsx(data, name=name, limits=limits)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise CrmFormatError(f"{name or 'file'}: old binary .xls is not supported; save it as .xlsx or CSV")
    return table_from_csv(decode_text(data, name=name), name=name, limits=limits)


def decode_text(data: bytes, *, name: str = "") -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, else cp1251: what Russian Excel and CRMs write.

    Bytes that are none of these (a binary file, a UTF-16 file cut short, a UTF-8 mark followed by
    something else) raise CrmFormatError naming the first bad byte.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        label, attempts = "UTF-8 (the file starts with its mark)", [("utf-8", 3)]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        label, attempts = "UTF-16 (the file starts with its mark)", [("utf-16", 0)]
    else:
        label, attempts = "UTF-8 or cp1251", [("utf-8", 0), ("cp1251", 0)]
    for encoding, skip in attempts:
        try:
            return data[skip:].decode(encoding)
        except UnicodeDecodeError as e:
            error, offset = e, skip + e.start
    what = "it ends in the middle of a character" if error.reason == "truncated data" \
        else f"byte {data[offset]:#04x} at offset {offset} is not a character of it"
    raise CrmFormatError(f"{name or 'file'}: not text in {label}: {what}; save the export again as CSV UTF-8 or as XLSX")


def table_from_csv(text: str, *, name: str = "", limits: ReadLimits = ReadLimits()) -> RawTable:
    """Split CSV text: the separator is sniffed (``;``, ``,`` or tab); quoted cells may span lines."""
    text = text.replace("\x00", "")
    sep = _sniff_separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    gate = _RowGate(name, limits)
    records: list[list[str]] = []
    lines: list[int] = []
    prev = 0
    try:
        for rec in reader:
            start, prev = prev + 1, reader.line_num
            if any(c.strip() for c in rec):
                gate.admit(rec, start)
                records.append(rec)
                lines.append(start)
    except csv.Error as e:
        if "field limit" in str(e):  # the csv module's own cap on a cell, past ours
            raise CrmLimitError(f"{gate.label}: a cell starting on line {prev + 1} is longer than "
                                f"{limits.max_cell_chars:,} characters", limit="max_cell_chars") from None
        raise CrmFormatError(f"{gate.label}: not readable as CSV at line {prev + 1} ({e})") from None
    return _table_from_records(records, lines, name=name)


EXCEL_ROWS = 1_048_576
"""The last row of a sheet: a row number past it is not a spreadsheet's."""
_RATIO_FROM = 10 * 1024 * 1024
"""Unpacked size under which a high compression ratio costs nothing and is not checked."""


def table_from_xlsx(data: bytes, *, name: str = "", sheet: str | None = None,
                    limits: ReadLimits = ReadLimits()) -> RawTable:
    """The first sheet (or ``sheet``) of an XLSX workbook; line = the sheet's row number."""
    unreadable = f"{name or 'file'}: not a readable XLSX workbook"
    _check_package(data, name=name, unreadable=unreadable, limits=limits)
    try:
        wb = _load_workbook(data, name=name, limits=limits)
    except CrmFormatError:
        raise
    except Exception as e:  # openpyxl raises a zoo of types on a broken file
        raise CrmFormatError(f"{unreadable} ({e}); {_SAVE_AGAIN}") from e
    gate = _RowGate(name, limits)
    try:
        if sheet is None and not wb.worksheets:
            raise CrmFormatError(f"{unreadable} (it has no sheet); {_SAVE_AGAIN}")
        try:
            ws = wb[sheet] if sheet else wb.worksheets[0]
        except KeyError:
            raise CrmFormatError(f"{name or 'file'}: no sheet {sheet!r}; sheets: {', '.join(wb.sheetnames)}") from None
        # the declared dimensions would pad every row to the declared width (and cut a row wider
        # than declared): rows as wide as their cells instead
        ws.reset_dimensions()
        records: list[list[str]] = []
        lines: list[int] = []
        for i, row in enumerate(_sheet_rows(ws, unreadable), start=1):
            if i > EXCEL_ROWS:
                raise CrmFormatError(f"{unreadable} (a row numbered past {EXCEL_ROWS:,}, a sheet's last row); {_SAVE_AGAIN}")
            if row.count(None) == len(row):
                continue
            gate.check_width(len(row), i)
            cells = [_cell(v) for v in row]
            if any(c.strip() for c in cells):
                gate.admit(cells, i)
                records.append(cells)
                lines.append(i)
    finally:
        wb.close()
    return _table_from_records(records, lines, name=name)


_SAVE_AGAIN = "open it in a spreadsheet and save it as .xlsx again, or export CSV"


def _mb(n: float) -> str:
    return f"{n / 1048576:,.1f} MB"


def _check_package(data: bytes, *, name: str, unreadable: str, limits: ReadLimits) -> None:
    """Refuse an XLSX too large once unpacked, from the sizes its zip directory declares, before
    anything is unpacked (zipfile never reads a part past its declared size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except Exception as e:  # BadZipFile, and worse on a file only starting like a zip
        raise CrmFormatError(f"{unreadable} ({e}); {_SAVE_AGAIN}") from e
    label = name or "file"
    if unpacked > limits.max_unpacked_bytes:
        raise CrmLimitError(f"{label}: unpacks to {_mb(unpacked)}, more than {_mb(limits.max_unpacked_bytes)}",
                            limit="max_unpacked_bytes")
    ratio = unpacked / max(len(data), 1)
    if unpacked > _RATIO_FROM and ratio > limits.max_compression_ratio:
        raise CrmLimitError(f"{label}: {_mb(len(data))} that unpack to {_mb(unpacked)}, {ratio:,.0f} times its size, "
                            f"more than {limits.max_compression_ratio:g} times (exports are about 10): a decompression "
                            "bomb, or a sheet padded with empty rows", limit="max_compression_ratio")


def _load_workbook(data: bytes, *, name: str, limits: ReadLimits) -> Any:
    """``openpyxl.load_workbook(read_only=True, data_only=True)``, refusing before the sheets are
    opened a workbook whose sheets would make it read more than ``max_unpacked_bytes``: openpyxl
    reads every sheet's part on opening (for its size, to the end when the sheet declares none),
    once for each sheet that names it, and a workbook may name the same part thousands of times."""
    from openpyxl.reader.excel import ExcelReader

    class Reader(ExcelReader):  # what load_workbook runs, with the check before the sheets
        def read_worksheets(self) -> None:
            sizes = {i.filename: i.file_size for i in self.archive.infolist()}
            parts = [rel.target.lstrip("/") for _, rel in self.parser.find_sheets()]
            read = sum(sizes.get(p, 0) for p in parts)
            if read > limits.max_unpacked_bytes:
                raise CrmLimitError(f"{name or 'file'}: its {len(parts):,} sheets name parts that unpack to {_mb(read)} "
                                    f"together (a part is read once for each sheet naming it), more than "
                                    f"{_mb(limits.max_unpacked_bytes)}", limit="max_unpacked_bytes")
            super().read_worksheets()

    reader = Reader(io.BytesIO(data), read_only=True, data_only=True)
    reader.read()
    return reader.wb


class _RowGate:
    """Counts an export's rows as they are read and stops at the first one past a limit."""

    def __init__(self, name: str, limits: ReadLimits) -> None:
        self.label = name or "file"
        self.limits = limits
        self.rows = 0

    def check_width(self, cells: int, line: int) -> None:
        if cells > self.limits.max_columns:
            raise CrmLimitError(f"{self.label}: line {line} has {cells:,} cells, more than {self.limits.max_columns:,}",
                                limit="max_columns")

    def admit(self, cells: Sequence[str], line: int) -> None:
        self.rows += 1
        if self.rows > self.limits.max_rows:
            raise CrmLimitError(f"{self.label}: more than {self.limits.max_rows:,} rows (line {line})", limit="max_rows")
        self.check_width(len(cells), line)
        longest = max(map(len, cells), default=0)
        if longest > self.limits.max_cell_chars:
            raise CrmLimitError(f"{self.label}: a cell on line {line} holds {longest:,} characters, more than "
                                f"{self.limits.max_cell_chars:,}", limit="max_cell_chars")


def _sheet_rows(ws: Any, unreadable: str) -> Iterator[tuple[Any, ...]]:
    """A sheet's rows as openpyxl reads them, lazily; a part openpyxl cannot read (a cell naming a
    shared string that is not there, text in a number cell, a missing or malformed part) is a
    CrmFormatError that says after which row."""
    rows = ws.iter_rows(values_only=True)
    done = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as e:  # the zoo again, raised while the sheet streams in
            raise CrmFormatError(f"{unreadable} (after row {done}: {type(e).__name__}: {e}); {_SAVE_AGAIN}") from e
        done += 1
        yield row


_NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return _NOT_STORABLE.sub("", str(v))


def _sniff_separator(text: str) -> str:
    head = "\n".join(text[:8192].splitlines()[:20])  # title lines may precede the header
    counts = {s: head.count(s) for s in (";", "\t", ",")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _table_from_records(records: list[list[str]], lines: list[int], *, name: str) -> RawTable:
    at = _find_header(records)
    if at is None:
        raise CrmFormatError(f"{name or 'file'}: no header row with known columns in the first 20 rows; "
                             "expected an amoCRM or Bitrix24 export or the generic format (sample_calls/crm/FORMAT.md)")
    headers = [h.strip() for h in records[at]]
    rows, row_lines, errors = [], [], []
    for rec, line in zip(records[at + 1:], lines[at + 1:], strict=True):
        extra = rec[len(headers):]
        if any(c.strip() for c in extra):
            errors.append(RowError(line, f"{len(rec)} cells but the header has {len(headers)}: a separator inside an unquoted cell?"))
            continue
        rows.append([c.strip() for c in rec[:len(headers)]] + [""] * (len(headers) - len(rec)))
        row_lines.append(line)
    return RawTable(headers, rows, row_lines, name, errors)


def _find_header(records: list[list[str]]) -> int | None:
    for i, rec in enumerate(records[:20]):
        if sum(normalise_header(c) in KNOWN_HEADERS for c in rec) >= 2:
            return i
    return None
