"""CRM data in: leads, deals, plans and deal stage history from amoCRM, Bitrix24 or a generic export.

Pure parsing: the ``parse_*`` functions take a :class:`RawTable` (headers, string cells and the line
each row came from) and return ``(DataFrame, list[RowError])``: a bad row is reported with its line
number and reason, the good rows land. The only I/O is in the thin ``read_*(path)`` wrappers.

Inputs
------
- **amoCRM** "Сделки → Экспорт" (CSV or Excel): ``ID``, ``Название сделки``, ``Бюджет``,
  ``Ответственный``, ``Дата создания сделки`` (or ``Дата создания``), ``Кем создана сделка``,
  ``Дата закрытия`` (``не закрыта`` when open), ``Теги``, ``Этап сделки``, ``Воронка``,
  ``Полное имя контакта``, ``Компания``, ``Рабочий телефон``, ``Мобильный телефон``, ...,
  ``Источник``. amoCRM has no lead entity apart from the deal: :func:`read_leads` on an amoCRM
  export gives one lead per deal (``lead_id`` = deal id), see :func:`leads_from_deals`.
- **Bitrix24** deal and lead lists exported to CSV or Excel: ``ID``, ``Название`` /
  ``Название лида``, ``Стадия сделки`` / ``Статус``, ``Сумма``, ``Валюта``, ``Ответственный``,
  ``Дата создания``, ``Дата закрытия`` / ``Предполагаемая дата закрытия``, ``Направление``,
  ``Источник``, ``Контакт``, ``Компания``, ``Телефон`` / ``Рабочий телефон`` / ``Мобильный телефон``.
- **generic**: English snake_case headers, documented in ``sample_calls/crm/FORMAT.md``; the only
  format for plans and stage history, which CRMs do not export as tables.

CSV: UTF-8 (with or without BOM), UTF-16 with BOM, or cp1251; ``;``, ``,`` or tab separated;
quoted cells may span lines (line numbers in errors are physical lines of the file). NUL characters
are dropped from every cell and header, of files and records alike: no text column of PostgreSQL
can hold one (nor a lone surrogate, which JSON records may carry: dropped too). Numbers in
Russian format (``1 234 567,89``, ``150 000 ₽``); dates ``dd.mm.yyyy hh:mm:ss`` (seconds and time
optional) or ISO 8601. Times without an offset are local time of the CRM account (``tz``, default
Europe/Moscow) and come out as UTC. Phones come out as ``+79123456789`` (Russian ``8`` prefix read
as ``+7``; a bare 10-digit number is national, ``default_country`` prefixed).

Status from stage: won for ``Успешно реализовано`` (amoCRM), ``Сделка успешна`` / ``WON``
(Bitrix24); lost for ``Закрыто и не реализовано``, ``Сделка провалена`` / ``LOSE`` /
``Анализ причины провала`` (``APOLOGY``); anything else is open. Custom final stages are passed as
``won_stages=`` / ``lost_stages=``.

Every row gets a stable ``key``: ``"<crm>:<entity>:<id>"`` (``amocrm:deal:10452``), for the
database layer to upsert on.

Limits (:class:`ReadLimits`, passed by the caller): an XLSX's unpacked size and compression ratio
are read from the zip's directory before anything is unpacked; rows, cells a row and characters a
cell are counted as rows stream in, and reading stops at the first past a limit. A sheet's declared
dimensions are not trusted: rows are as wide as their cells.

Errors::

    AnalyzerError
    └── CrmFormatError      the file as a whole cannot be read: not CSV/XLSX, no header row,
        │                   a required column missing (names it and lists the accepted headers)
        └── CrmLimitError   the file is past one of its ReadLimits (``limit`` names which)
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyzer.errors import AnalyzerError

CrmSource = Literal["amocrm", "bitrix24", "generic"]
Entity = Literal["leads", "deals", "plans", "stage_history"]

DEFAULT_TZ = "Europe/Moscow"

LEAD_COLUMNS = ["key", "crm", "lead_id", "created_at", "manager", "source", "client", "client_phone", "status",
                "first_response_at", "title"]
DEAL_COLUMNS = ["key", "crm", "deal_id", "lead_id", "title", "client", "client_phone", "manager", "created_at",
                "closed_at", "stage", "pipeline", "status", "amount", "currency", "source"]
PLAN_COLUMNS = ["manager", "period_start", "period_end", "revenue_plan", "activity_plan", "activity_kind"]
STAGE_HISTORY_COLUMNS = ["key", "crm", "deal_id", "stage", "entered_at"]


class CrmFormatError(AnalyzerError):
    """A CRM export cannot be read as a whole (format, header row, a required column)."""

    code = "crm_format_error"


class CrmLimitError(CrmFormatError):
    """A CRM export past one of its :class:`ReadLimits`; ``limit`` is the name of that field."""

    code = "crm_file_too_large"

    def __init__(self, message: str, *, limit: str):
        super().__init__(message)
        self.limit = limit


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
        if sum(_norm(c) in _KNOWN_HEADERS for c in rec) >= 2:
            return i
    return None


# --- values ----------------------------------------------------------------------------------

_NULL_WORDS = {"", "-", "—", "не закрыта", "не закрыт", "нет", "null", "none", "nan", "n/a"}
_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                 "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%d.%m.%y %H:%M", "%d.%m.%y", "%d-%m-%Y %H:%M:%S")
_OFFSET = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d:?\d\d)$")


def parse_datetimes(values: pd.Series, *, tz: str = DEFAULT_TZ) -> tuple[pd.Series, pd.Series]:
    """Strings to UTC timestamps. Returns ``(parsed, bad)``: ``bad`` marks non-empty cells that are not dates.

    Naive times are local to ``tz``; ISO strings with an offset keep it. Empty, ``-`` and
    ``не закрыта`` are missing, not bad.
    """
    s = values.astype("string").fillna("").str.strip()
    missing = s.str.casefold().isin(_NULL_WORDS)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    todo = ~missing
    aware = todo & s.str.contains(_OFFSET, regex=True)
    if aware.any():
        out[aware] = _representable(pd.to_datetime(s[aware], format="ISO8601", utc=True, errors="coerce"))
        todo &= ~aware
    for fmt in _DATE_FORMATS:
        if not todo.any():
            break
        parsed = _representable(pd.to_datetime(s[todo], format=fmt, errors="coerce"))
        ok = parsed.notna()
        if ok.any():
            local = parsed[ok].dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
            out[local.index] = local.dt.tz_convert("UTC")
            todo &= out.isna()
    return out, ~missing & out.isna()


_FIRST_DAY, _DAY_AFTER = pd.Timestamp("1678-01-01"), pd.Timestamp("2262-01-01")


def _representable(parsed: pd.Series) -> pd.Series:
    """Parsed times in nanoseconds, the unit of the frames; a time they cannot hold (pandas' range
    is 1677-09-21 to 2262-04-11: ``9999-12-31`` as "never", ``0001-01-01`` as "unknown") becomes NaT."""
    wall = parsed.dt.tz_convert(None) if parsed.dt.tz is not None else parsed
    return parsed.where((wall >= _FIRST_DAY) & (wall < _DAY_AFTER)).dt.as_unit("ns")


_NUMBER_JUNK = re.compile(r"(?i)(₽|руб\.?|р\.|rub|usd|eur|\$|€|[\s\u00a0\u202f'])")
_NUMBER_OK = re.compile(r"^[-+]?[\d.,]*\d[\d.,]*$")


def parse_number(text: str | None) -> float | None:
    """``'1 234 567,89'``, ``'150 000 ₽'``, ``'1234567.89'``, ``'1,234,567.89'`` -> float; empty -> None.

    A single comma is a decimal comma (Russian format); raises ValueError on anything else.
    """
    if text is None or text.strip().casefold() in _NULL_WORDS:
        return None
    t = _NUMBER_JUNK.sub("", text.strip())
    if not _NUMBER_OK.match(t):
        raise ValueError(f"{text!r} is not a number")
    if "," in t and "." in t:
        dec = "," if t.rfind(",") > t.rfind(".") else "."
        t = t.replace("." if dec == "," else ",", "").replace(",", ".")
    elif t.count(",") == 1:
        t = t.replace(",", ".")
    elif t.count(",") > 1 or t.count(".") > 1:
        t = t.replace(",", "").replace(".", "")
    return float(t)


_PHONE_SPLIT = re.compile(r"[,;/]|\s{2,}")
_PHONE_EXT = re.compile(r"(?i)(доб|ext|вн|#).*$")


def normalise_phone(text: str | None, *, default_country: str = "7") -> str | None:
    """``'+7 (912) 345-67-89'``, ``'8 912 345 67 89'``, ``'9123456789'`` -> ``'+79123456789'``; empty -> None.

    Several numbers in one cell (amoCRM joins them with commas): the first. An extension
    (``доб. 12``) is dropped. Raises ValueError for what cannot be a client's number.
    """
    if text is None:
        return None
    parts = [p for p in _PHONE_SPLIT.split(text) if p.strip()]
    if not parts:
        return None
    first = _PHONE_EXT.sub("", re.sub(r"\([^\d)]*\)", "", parts[0])).strip()
    if re.search(r"[^\d\s()+.\-]", first):
        raise ValueError(f"{text!r} is not a phone number")
    plus = first.startswith("+")
    digits = re.sub(r"\D", "", first)
    if not plus and len(digits) == 11 and digits[0] == "8" and default_country == "7":
        digits = "7" + digits[1:]
    elif not plus and len(digits) == 10:
        digits = default_country + digits
    if len(digits) < 11 or len(digits) > 15:
        raise ValueError(f"{text!r} is not a full phone number")
    return "+" + digits


def normalise_phones(values: pd.Series, *, default_country: str = "7") -> tuple[pd.Series, pd.Series]:
    """Vector form of :func:`normalise_phone`: ``(phones, bad)``; bad cells become None."""
    s = values.astype("string").fillna("")
    uniq = pd.unique(s.to_numpy())
    mapping: dict[str, str | None] = {}
    bad_values: set[str] = set()
    for u in uniq:
        try:
            mapping[u] = normalise_phone(u, default_country=default_country)
        except ValueError:
            mapping[u] = None
            bad_values.add(u)
    return s.map(mapping).astype(object), s.isin(bad_values)


WON_STAGES = frozenset({"успешно реализовано", "сделка успешна", "won", "closed - won", "closed won", "успешно"})
LOST_STAGES = frozenset({"закрыто и не реализовано", "сделка провалена", "lose", "lost", "closed - lost",
                         "closed lost", "анализ причины провала", "apology", "провалена"})
_STAGE_ID = re.compile(r"^(?:C\d+:)?(WON|LOSE|APOLOGY)$")


def status_from_stage(stages: pd.Series, *, won_stages: Iterable[str] = (), lost_stages: Iterable[str] = ()) -> pd.Series:
    """Stage names (or Bitrix24 ids such as ``C1:WON``) to ``won`` / ``lost`` / ``open``."""
    s = stages.astype("string").fillna("").str.strip()
    key = s.str.casefold().str.replace("ё", "е")
    won = WON_STAGES | {x.casefold().replace("ё", "е") for x in won_stages}
    lost = LOST_STAGES | {x.casefold().replace("ё", "е") for x in lost_stages}
    ids = s.str.upper().str.extract(_STAGE_ID, expand=False)
    out = np.where(key.isin(won) | ids.eq("WON").fillna(False), "won",
                   np.where(key.isin(lost) | ids.isin(["LOSE", "APOLOGY"]).fillna(False), "lost", "open"))
    return pd.Series(out, index=s.index, dtype=object)


_STATUS_WORDS = {"won": "won", "выиграна": "won", "успешно": "won", "lost": "lost", "проиграна": "lost",
                 "open": "open", "открыта": "open", "в работе": "open"}

_LEAD_STATUS = {"качественный лид": "converted", "converted": "converted", "сконвертирован": "converted",
                "некачественный лид": "junk", "junk": "junk", "некачественный": "junk"}


# --- columns ---------------------------------------------------------------------------------

def _norm(header: str) -> str:
    h = header.replace("\ufeff", "").casefold().replace("ё", "е")
    h = re.sub(r"\(.*?\)|[₽$€:*]|,\s*руб\.?", " ", h)
    return re.sub(r"\s+", " ", h).strip()


PHONE_HEADERS = ("client_phone", "phone", "телефон", "мобильный телефон", "рабочий телефон", "рабочий прямой телефон",
                 "телефон контакта", "домашний телефон", "другой телефон", "телефон клиента")

_ALIASES: dict[Entity, dict[str, tuple[str, ...]]] = {
    "deals": {
        "deal_id": ("deal_id", "id", "id сделки", "номер сделки"),
        "lead_id": ("lead_id", "id лида", "лид id"),
        "title": ("title", "название сделки", "название", "сделка"),
        "amount": ("amount", "бюджет", "сумма", "сумма сделки", "budget", "opportunity"),
        "currency": ("currency", "валюта"),
        "manager": ("manager", "ответственный", "менеджер", "responsible", "ответственный менеджер"),
        "created_at": ("created_at", "дата создания сделки", "дата создания", "создана"),
        "closed_at": ("closed_at", "дата закрытия", "дата закрытия сделки", "дата завершения",
                      "предполагаемая дата закрытия"),
        "status": ("status",),
        "stage": ("stage", "этап сделки", "стадия сделки", "этап", "стадия"),
        "pipeline": ("pipeline", "воронка", "направление"),
        "client": ("client", "клиент", "полное имя контакта", "контакт", "компания", "компания контакта"),
        "source": ("source", "источник", "источник сделки", "utm_source"),
    },
    "leads": {
        "lead_id": ("lead_id", "id", "id лида"),
        "title": ("title", "название лида", "название"),
        "created_at": ("created_at", "дата создания", "дата создания лида", "создан"),
        "manager": ("manager", "ответственный", "менеджер", "responsible"),
        "source": ("source", "источник", "utm_source"),
        "client": ("client", "клиент", "название компании", "компания", "контакт", "полное имя контакта", "имя"),
        "status": ("status", "статус", "статус лида", "стадия"),
        "first_response_at": ("first_response_at", "дата первого ответа", "первый ответ"),
    },
    "plans": {
        "manager": ("manager", "менеджер", "ответственный", "сотрудник"),
        "period": ("period", "период", "месяц"),
        "period_start": ("period_start", "начало периода", "с"),
        "period_end": ("period_end", "конец периода", "по"),
        "revenue_plan": ("revenue_plan", "план выручки", "план по выручке", "план продаж", "план"),
        "activity_plan": ("activity_plan", "план активности", "план звонков", "план встреч"),
        "activity_kind": ("activity_kind", "вид активности"),
    },
    "stage_history": {
        "deal_id": ("deal_id", "id сделки", "сделка", "id"),
        "stage": ("stage", "этап", "стадия", "этап сделки", "стадия сделки"),
        "entered_at": ("entered_at", "дата перехода", "дата входа", "дата", "дата изменения"),
    },
}
MANAGER_HEADERS = ("external_id", "team", "team_id", "department", "department_id")
"""Headers of a managers list (``sample_calls/crm/managers.csv``): not a CRM entity, but its header row is found too."""
_KNOWN_HEADERS = {a for fields in _ALIASES.values() for aliases in fields.values() for a in aliases} | set(PHONE_HEADERS) \
    | set(MANAGER_HEADERS)

_SIGNATURES: dict[CrmSource, frozenset[str]] = {
    "amocrm": frozenset({"название сделки", "бюджет", "этап сделки", "воронка", "дата создания сделки",
                         "кем создана сделка", "кем создана", "полное имя контакта", "ответственный за контакт",
                         "компания контакта", "дата редактирования", "кем редактирована", "теги", "примечание",
                         "рабочий прямой телефон"}),
    "bitrix24": frozenset({"стадия сделки", "сумма", "направление", "название лида", "стадия", "статус",
                           "предполагаемая дата закрытия", "сделка закрыта", "валюта", "дата изменения",
                           "кем создан", "кем изменен", "название компании", "закрыта", "тип", "статус лида",
                           "дата начала", "кем создана", "кем изменена"}),
    "generic": frozenset({"deal_id", "lead_id", "created_at", "closed_at", "amount", "client_phone", "manager",
                          "stage", "status", "revenue_plan", "activity_plan", "entered_at", "period",
                          "first_response_at"}),
}


def detect_source(headers: Sequence[str]) -> CrmSource:
    """Which CRM wrote these headers: the signature set with most hits; ``generic`` when none stands out."""
    normed = {_norm(h) for h in headers}
    scores = {src: len(normed & sig) for src, sig in _SIGNATURES.items()}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
        return "generic"
    return ranked[0][0]


_DEAL_MARKERS = frozenset({"amount", "бюджет", "сумма", "deal_id", "стадия сделки", "этап сделки", "stage", "closed_at"})


def detect_entity(headers: Sequence[str]) -> Entity:
    """Which kind of export: plans, stage history, leads or deals."""
    normed = {_norm(h) for h in headers}
    if normed & {"revenue_plan", "activity_plan", "план выручки", "план по выручке", "план продаж",
                 "план звонков", "план встреч", "план активности"}:
        return "plans"
    if normed & {"entered_at", "дата перехода", "дата входа"}:
        return "stage_history"
    if normed & _DEAL_MARKERS:
        return "deals"
    if normed & {"название лида", "статус лида", "id лида", "lead_id", "first_response_at"}:
        return "leads"
    return "deals"


def _columns(table: RawTable, entity: Entity, required: Sequence[str]) -> dict[str, int]:
    """Canonical field -> column index; the first alias present wins."""
    index: dict[str, int] = {}
    for i, h in enumerate(table.headers):
        index.setdefault(_norm(h), i)
    found: dict[str, int] = {}
    used: set[int] = set()
    for fld, aliases in _ALIASES[entity].items():
        for a in aliases:
            if a in index and index[a] not in used:
                found[fld] = index[a]
                used.add(index[a])
                break
    missing = [f for f in required if f not in found]
    if missing:
        need = "; ".join(f"{f}: one of {', '.join(repr(a) for a in _ALIASES[entity][f])}" for f in missing)
        raise CrmFormatError(f"{table.name or 'file'}: no column for {need} (headers: {', '.join(table.headers)})")
    return found


def _phone_columns(table: RawTable) -> list[int]:
    normed = [_norm(h) for h in table.headers]
    return [normed.index(h) for h in PHONE_HEADERS if h in normed]


class _Rows:
    """Collects per-row problems while fields are parsed column by column."""

    def __init__(self, table: RawTable):
        self.table = table
        self.frame = pd.DataFrame(table.rows, columns=range(len(table.headers)), dtype=object) if table.rows \
            else pd.DataFrame({i: pd.Series(dtype=object) for i in range(len(table.headers))})
        self.lines = np.asarray(table.lines, dtype=np.int64)
        self.errors: list[RowError] = list(table.errors)
        self.drop = np.zeros(len(table.rows), dtype=bool)

    def col(self, idx: int | None) -> pd.Series:
        if idx is None:
            return pd.Series([""] * len(self.frame), index=self.frame.index, dtype=object)
        return self.frame[idx].astype(object)

    def report(self, mask: pd.Series | np.ndarray, values: pd.Series, reason: str, column: str, *, skip: bool) -> None:
        m = np.asarray(mask, dtype=bool)
        for i in np.flatnonzero(m):
            v = str(values.iloc[i])
            self.errors.append(RowError(int(self.lines[i]), reason.format(v=v), column, v, skip))
        if skip:
            self.drop |= m

    def text(self, idx: int | None) -> pd.Series:
        s = self.col(idx).astype(str).str.strip()
        return pd.Series(np.where(s.ne(""), s, None), index=s.index, dtype=object)

    def dates(self, idx: int | None, column: str, tz: str, *, required: bool) -> pd.Series:
        raw = self.col(idx)
        parsed, bad = parse_datetimes(raw, tz=tz)
        self.report(bad, raw, f"{column} {{v!r}} is not a date (dd.mm.yyyy hh:mm:ss or ISO 8601)", column, skip=required)
        if required:
            self.report(~bad & parsed.isna(), raw, f"{column} is empty", column, skip=True)
        return parsed

    def numbers(self, idx: int | None, column: str) -> pd.Series:
        raw = self.col(idx)
        uniq: dict[str, float | None] = {}
        bad_values: set[str] = set()
        for u in pd.unique(raw.astype(str).to_numpy()):
            try:
                uniq[u] = parse_number(u)
            except ValueError:
                bad_values.add(u)
        s = raw.astype(str)
        self.report(s.isin(bad_values), raw, f"{column} {{v!r}} is not a number", column, skip=True)
        return pd.to_numeric(s.map(uniq), errors="coerce").astype("float64")

    def phones(self, default_country: str) -> pd.Series:
        cols = _phone_columns(self.table)
        out = pd.Series([None] * len(self.frame), index=self.frame.index, dtype=object)
        for c in cols:
            raw = self.col(c)
            phones, bad = normalise_phones(raw, default_country=default_country)
            self.report(bad, raw, f"{self.table.headers[c]} {{v!r}} is not a phone number; left empty",
                        self.table.headers[c], skip=False)
            out = out.where(out.notna(), phones)
        return out

    def ids(self, idx: int, column: str) -> pd.Series:
        ids = self.text(idx)
        self.report(ids.isna(), self.col(idx), f"{column} is empty", column, skip=True)
        dup = ids.notna() & ids.duplicated(keep="first")
        if dup.any():
            first_line = pd.Series(self.lines, index=ids.index).groupby(ids).transform("first")
            for i in np.flatnonzero(dup.to_numpy()):
                self.errors.append(RowError(int(self.lines[i]), f"duplicate {column} {ids.iloc[i]!r} (first on line "
                                            f"{int(first_line.iloc[i])})", column, str(ids.iloc[i])))
            self.drop |= dup.to_numpy()
        return ids

    def finish(self, frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[RowError]]:
        out = frame.loc[~self.drop, columns].reset_index(drop=True)
        for c in out.columns:  # text columns: object dtype, None for missing (never NaN)
            if not (pd.api.types.is_numeric_dtype(out[c].dtype) or pd.api.types.is_datetime64_any_dtype(out[c].dtype)):
                col = out[c].astype(object)
                out[c] = col.where(col.notna(), None)
        return out, sorted(self.errors, key=lambda e: e.line)


def _key(crm: str, entity: str, ids: pd.Series) -> pd.Series:
    return (f"{crm}:{entity}:" + ids.astype("string")).astype(object)


# --- parsing ---------------------------------------------------------------------------------

def parse_deals(table: RawTable, *, source: CrmSource | None = None, tz: str = DEFAULT_TZ,
                won_stages: Iterable[str] = (), lost_stages: Iterable[str] = (),
                default_country: str = "7") -> tuple[pd.DataFrame, list[RowError]]:
    """A deals export to the canonical deals frame (``DEAL_COLUMNS``).

    ``status`` comes from a generic ``status`` column (won/lost/open) or from the stage name
    (:func:`status_from_stage`). ``closed_at`` is kept only for won and lost deals (Bitrix24 fills
    an expected close date on open ones). amoCRM deals are their own leads: ``lead_id`` = ``deal_id``.
    """
    crm = source or detect_source(table.headers)
    cols = _columns(table, "deals", ["deal_id", "created_at"])
    if "status" not in cols and "stage" not in cols:
        raise CrmFormatError(f"{table.name or 'file'}: no stage column ('Этап сделки', 'Стадия сделки', 'stage') "
                             "and no 'status' column: cannot tell won deals from lost")
    r = _Rows(table)
    g = cols.get
    df = pd.DataFrame(index=r.frame.index)
    df["deal_id"] = r.ids(cols["deal_id"], "ID")
    df["crm"] = crm
    df["key"] = _key(crm, "deal", df["deal_id"])
    lead = r.text(g("lead_id"))
    df["lead_id"] = lead.where(lead.notna(), df["deal_id"]) if crm == "amocrm" else lead
    for f in ("title", "client", "manager", "stage", "pipeline", "currency", "source"):
        df[f] = r.text(g(f))
    df["client_phone"] = r.phones(default_country)
    df["created_at"] = r.dates(g("created_at"), "created_at", tz, required=True)
    closed = r.dates(g("closed_at"), "closed_at", tz, required=False)
    df["amount"] = r.numbers(g("amount"), "amount")
    by_stage = status_from_stage(df["stage"], won_stages=won_stages, lost_stages=lost_stages)
    if "status" in cols:
        raw = r.text(cols["status"])
        words = raw.astype("string").str.strip().str.casefold().map(_STATUS_WORDS).astype(object)
        named = status_from_stage(raw, won_stages=won_stages, lost_stages=lost_stages)
        st = words.where(words.notna(), named.where(named.ne("open"), None))
        r.report(raw.notna() & st.isna(), raw, "status {v!r} is not won, lost or open", "status", skip=True)
        df["status"] = st.where(raw.notna(), by_stage).fillna("open").astype(object)
    else:
        df["status"] = by_stage
    df["closed_at"] = closed.where(df["status"].isin(["won", "lost"]))
    early = df["closed_at"].notna() & df["created_at"].notna() & (df["closed_at"] < df["created_at"])
    r.report(early, df["closed_at"].astype(str), "closed_at {v} is before created_at", "closed_at", skip=True)
    return r.finish(df, DEAL_COLUMNS)


def parse_leads(table: RawTable, *, source: CrmSource | None = None, tz: str = DEFAULT_TZ,
                default_country: str = "7", **deal_options: Any) -> tuple[pd.DataFrame, list[RowError]]:
    """A leads export to the canonical leads frame (``LEAD_COLUMNS``).

    An amoCRM deals export (amoCRM has no separate leads) gives one lead per deal.
    """
    crm = source or detect_source(table.headers)
    if crm == "amocrm" or {_norm(h) for h in table.headers} & _DEAL_MARKERS:  # a deals export: its deals' leads
        deals, errors = parse_deals(table, source=crm, tz=tz, default_country=default_country, **deal_options)
        return leads_from_deals(deals), errors
    cols = _columns(table, "leads", ["lead_id", "created_at"])
    r = _Rows(table)
    g = cols.get
    df = pd.DataFrame(index=r.frame.index)
    df["lead_id"] = r.ids(cols["lead_id"], "ID")
    df["crm"] = crm
    df["key"] = _key(crm, "lead", df["lead_id"])
    for f in ("title", "manager", "source", "client"):
        df[f] = r.text(g(f))
    st = r.text(g("status"))
    mapped = st.astype("string").str.strip().str.casefold().str.replace("ё", "е").map(_LEAD_STATUS).astype(object)
    df["status"] = mapped.fillna("open").where(st.notna(), None)
    df["client_phone"] = r.phones(default_country)
    df["created_at"] = r.dates(g("created_at"), "created_at", tz, required=True)
    df["first_response_at"] = r.dates(g("first_response_at"), "first_response_at", tz, required=False)
    return r.finish(df, LEAD_COLUMNS)


def leads_from_deals(deals: pd.DataFrame) -> pd.DataFrame:
    """One lead per ``lead_id`` of the deals (the earliest deal's data): for CRMs whose deal is the lead."""
    d = deals.assign(lead_id=deals["lead_id"].where(deals["lead_id"].notna(), deals["deal_id"]))
    d = d.sort_values("created_at", kind="stable").drop_duplicates("lead_id")
    out = pd.DataFrame({
        "crm": d["crm"], "lead_id": d["lead_id"], "created_at": d["created_at"], "manager": d["manager"],
        "source": d["source"], "client": d["client"], "client_phone": d["client_phone"], "title": d["title"],
        "status": _label(d["status"].eq("won"), "converted"),
        "first_response_at": pd.Series(pd.NaT, index=d.index, dtype="datetime64[ns, UTC]"),
    })
    out["key"] = out["crm"].astype(str) + ":lead:" + out["lead_id"].astype(str)
    return out[LEAD_COLUMNS].reset_index(drop=True)


_MONTHS = {"январь": 1, "января": 1, "февраль": 2, "февраля": 2, "март": 3, "марта": 3, "апрель": 4, "апреля": 4,
           "май": 5, "мая": 5, "июнь": 6, "июня": 6, "июль": 7, "июля": 7, "август": 8, "августа": 8,
           "сентябрь": 9, "сентября": 9, "октябрь": 10, "октября": 10, "ноябрь": 11, "ноября": 11,
           "декабрь": 12, "декабря": 12}


def parse_period(text: str) -> tuple[date, date]:
    """``2024-05``, ``05.2024``, ``май 2024``, ``2024-Q2``, ``Q2 2024`` -> (first day, first day after)."""
    t = text.strip().casefold()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})|(\d{1,2})\.(\d{4})", t)
    if m:
        y, mo = (int(m[1]), int(m[2])) if m[1] else (int(m[4]), int(m[3]))
        if 1 <= mo <= 12:
            return date(y, mo, 1), date(y + mo // 12, mo % 12 + 1, 1)
    m = re.fullmatch(r"(\d{4})-?q([1-4])|q([1-4])[ -]?(\d{4})", t)
    if m:
        y, q = (int(m[1]), int(m[2])) if m[1] else (int(m[4]), int(m[3]))
        return date(y, 3 * q - 2, 1), date(y + (q == 4), (3 * q) % 12 + 1, 1)
    m = re.fullmatch(r"([а-я]+)\s+(\d{4})", t)
    if m and m[1] in _MONTHS:
        y, mo = int(m[2]), _MONTHS[m[1]]
        return date(y, mo, 1), date(y + mo // 12, mo % 12 + 1, 1)
    raise ValueError(f"{text!r} is not a period (2024-05, 05.2024, май 2024, 2024-Q2)")


_ACTIVITY_KIND = {"calls": "calls", "звонки": "calls", "звонок": "calls", "meetings": "meetings", "встречи": "meetings",
                  "встреча": "meetings"}


def parse_plans(table: RawTable, *, tz: str = DEFAULT_TZ) -> tuple[pd.DataFrame, list[RowError]]:
    """Plans (generic format only) to ``PLAN_COLUMNS``; the period is half-open ``[period_start, period_end)`` in UTC.

    A period is one ``period`` cell (month or quarter) or ``period_start`` and ``period_end``
    dates, the end day included. ``activity_kind`` is ``calls`` or ``meetings`` (``звонки`` /
    ``встречи``); without the column it follows the header (``План встреч`` -> meetings), else calls.
    """
    cols = _columns(table, "plans", ["manager"])
    if "period" not in cols and not {"period_start", "period_end"} <= cols.keys():
        raise CrmFormatError(f"{table.name or 'file'}: plans need a 'period' column (2024-05) or 'period_start' "
                             "and 'period_end'")
    r = _Rows(table)
    g = cols.get
    df = pd.DataFrame(index=r.frame.index)
    df["manager"] = r.text(cols["manager"])
    r.report(df["manager"].isna(), r.col(cols["manager"]), "manager is empty", "manager", skip=True)
    if "period" in cols:
        raw = r.col(cols["period"])
        starts: list[date | None] = []
        ends: list[date | None] = []
        bad: list[bool] = []
        for v in raw.astype(str):
            try:
                a, b = parse_period(v)
                starts.append(a)
                ends.append(b)
                bad.append(False)
            except ValueError:
                starts.append(None)
                ends.append(None)
                bad.append(True)
        r.report(np.array(bad), raw, "period {v!r} is not a month or quarter (2024-05, 05.2024, 2024-Q2)", "period", skip=True)
        df["period_start"] = _local_midnight(pd.Series(starts, index=df.index), tz)
        df["period_end"] = _local_midnight(pd.Series(ends, index=df.index), tz)
    else:
        df["period_start"] = r.dates(g("period_start"), "period_start", tz, required=True)
        end = r.dates(g("period_end"), "period_end", tz, required=True)
        df["period_end"] = end + pd.Timedelta(days=1)
        inverted = df["period_end"] <= df["period_start"]
        r.report(inverted, r.col(g("period_end")), "period_end {v!r} is before period_start", "period_end", skip=True)
    df["revenue_plan"] = r.numbers(g("revenue_plan"), "revenue_plan")
    df["activity_plan"] = r.numbers(g("activity_plan"), "activity_plan")
    if "activity_kind" in cols:
        raw = r.text(cols["activity_kind"])
        kind = raw.astype("string").str.strip().str.casefold().map(_ACTIVITY_KIND)
        r.report(raw.notna() & kind.isna(), raw, "activity_kind {v!r} is not calls or meetings", "activity_kind", skip=True)
        df["activity_kind"] = kind.fillna("calls").astype(object)
    else:
        header = _norm(table.headers[cols["activity_plan"]]) if "activity_plan" in cols else ""
        df["activity_kind"] = "meetings" if "встреч" in header else "calls"
    return r.finish(df, PLAN_COLUMNS)


def _local_midnight(days: pd.Series, tz: str) -> pd.Series:
    ts = pd.to_datetime(days, errors="coerce")
    return ts.dt.tz_localize(tz).dt.tz_convert("UTC")


def parse_stage_history(table: RawTable, *, source: CrmSource | None = None,
                        tz: str = DEFAULT_TZ) -> tuple[pd.DataFrame, list[RowError]]:
    """Deal stage history (generic: ``deal_id``, ``stage``, ``entered_at``) to ``STAGE_HISTORY_COLUMNS``."""
    crm = source or detect_source(table.headers)
    cols = _columns(table, "stage_history", ["deal_id", "stage", "entered_at"])
    r = _Rows(table)
    df = pd.DataFrame(index=r.frame.index)
    df["deal_id"] = r.text(cols["deal_id"])
    r.report(df["deal_id"].isna(), r.col(cols["deal_id"]), "deal_id is empty", "deal_id", skip=True)
    df["stage"] = r.text(cols["stage"])
    r.report(df["stage"].isna(), r.col(cols["stage"]), "stage is empty", "stage", skip=True)
    df["entered_at"] = r.dates(cols["entered_at"], "entered_at", tz, required=True)
    df["crm"] = crm
    df["key"] = _key(crm, "deal", df["deal_id"])
    return r.finish(df, STAGE_HISTORY_COLUMNS)


@dataclass(frozen=True)
class CrmExport:
    """What :func:`parse_export` found in one file."""

    entity: Entity
    source: CrmSource
    frame: pd.DataFrame
    errors: list[RowError]


def parse_export(table: RawTable, *, tz: str = DEFAULT_TZ, **options: Any) -> CrmExport:
    """Detect the CRM and the kind of export by the headers, then parse it."""
    entity = detect_entity(table.headers)
    source = detect_source(table.headers)
    if entity == "deals":
        frame, errors = parse_deals(table, source=source, tz=tz, **options)
    elif entity == "leads":
        frame, errors = parse_leads(table, source=source, tz=tz, **options)
    elif entity == "plans":
        frame, errors = parse_plans(table, tz=tz)
    else:
        frame, errors = parse_stage_history(table, source=source, tz=tz)
    return CrmExport(entity, source, frame, errors)


def read_deals(path: str | Path, **options: Any) -> tuple[pd.DataFrame, list[RowError]]:
    """:func:`parse_deals` of a CSV or XLSX file."""
    return parse_deals(read_table(path), **options)


def read_leads(path: str | Path, **options: Any) -> tuple[pd.DataFrame, list[RowError]]:
    """:func:`parse_leads` of a CSV or XLSX file."""
    return parse_leads(read_table(path), **options)


def read_plans(path: str | Path, **options: Any) -> tuple[pd.DataFrame, list[RowError]]:
    """:func:`parse_plans` of a CSV or XLSX file."""
    return parse_plans(read_table(path), **options)


def read_stage_history(path: str | Path, **options: Any) -> tuple[pd.DataFrame, list[RowError]]:
    """:func:`parse_stage_history` of a CSV or XLSX file."""
    return parse_stage_history(read_table(path), **options)


def read_export(path: str | Path, **options: Any) -> CrmExport:
    """:func:`parse_export` of a CSV or XLSX file."""
    return parse_export(read_table(path), **options)


# --- managers --------------------------------------------------------------------------------

def _name_key(name: Any) -> str | None:
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    words = re.sub(r"[^\w\s]", " ", str(name).casefold().replace("ё", "е")).split()
    return " ".join(sorted(words)) or None


def attach_manager_ids(frame: pd.DataFrame, managers: pd.DataFrame, *, column: str = "manager") -> tuple[pd.DataFrame, list[str]]:
    """Add ``manager_id`` by the CRM's responsible-user name (or ``external_id``). Returns the unmatched names.

    Names match case- and word-order-insensitively (``Ляхов Игорь`` = ``игорь ляхов``), ``ё`` = ``е``.
    """
    lookup: dict[str, Any] = {}
    if "external_id" in managers:
        for ext, mid in zip(managers["external_id"], managers["manager_id"], strict=True):
            if ext is not None and not (isinstance(ext, float) and np.isnan(ext)):
                lookup[str(ext).strip().casefold()] = mid
    for name, mid in zip(managers["name"], managers["manager_id"], strict=True):
        k = _name_key(name)
        if k:
            lookup.setdefault(k, mid)
    names = frame[column]
    uniq = pd.unique(names.dropna().astype(str).to_numpy())
    mapping = {u: lookup.get(u.strip().casefold(), lookup.get(_name_key(u) or "")) for u in uniq}
    out = frame.copy()
    out["manager_id"] = names.map(mapping)
    unmatched = sorted(u for u, m in mapping.items() if m is None)
    return out, unmatched


# --- linking calls to leads and deals ----------------------------------------------------------

LINK_COLUMNS = ["call_id", "lead_id", "deal_id", "rule"]
_E164 = re.compile(r"^\+\d{11,15}$")
_NAT = np.iinfo(np.int64).min


def _shared_codes(parts: Sequence[pd.Series], normalise: Callable[[Any], str | None]) -> tuple[list[np.ndarray], np.ndarray]:
    """One code space over several columns: the values normalised (each distinct raw value once),
    then numbered; -1 where missing or not valid. Returns (codes per column, value of each code)."""
    raw = np.concatenate([np.asarray(p.to_numpy(dtype=object, na_value=None), dtype=object) for p in parts]) \
        if parts else np.empty(0, dtype=object)
    codes, uniq = pd.factorize(raw, use_na_sentinel=True)
    norm = np.array([normalise(u) for u in uniq], dtype=object)
    ncodes, values = pd.factorize(norm, use_na_sentinel=True)
    ncodes = np.append(np.asarray(ncodes, dtype=np.int64), -1)  # code -1 stays -1
    final = ncodes[np.asarray(codes, dtype=np.int64)]
    bounds = np.cumsum([0, *(len(p) for p in parts)])
    return [final[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], np.asarray(values, dtype=object)


def _phone_or_none(value: Any, default_country: str) -> str | None:
    text = str(value)
    if _E164.match(text):
        return text
    try:
        return normalise_phone(text, default_country=default_country)
    except ValueError:
        return None


def _id_or_none(value: Any) -> str | None:
    text = str(value).strip()
    return text or None


def _utc_ns(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A time column as int64 UTC nanoseconds (``_NAT`` where missing)."""
    if name not in frame.columns:
        return np.full(len(frame), _NAT, dtype=np.int64)
    s = frame[name]
    s = s.dt.tz_convert("UTC") if isinstance(s.dtype, pd.DatetimeTZDtype) else pd.to_datetime(s, utc=True)
    return np.asarray(s.astype("datetime64[ns, UTC]").array.asi8, dtype=np.int64)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(None, index=frame.index, dtype=object)


def link_calls(calls: pd.DataFrame, leads: pd.DataFrame, deals: pd.DataFrame, *,
               before: pd.Timedelta = pd.Timedelta(minutes=30), lead_window: pd.Timedelta = pd.Timedelta(days=30),
               deal_grace: pd.Timedelta = pd.Timedelta(days=1), default_country: str = "7") -> pd.DataFrame:
    """Tie each call to a lead and a deal. Returns ``LINK_COLUMNS``: ``call_id, lead_id, deal_id, rule``.

    The rule, first match wins:

    1. ``rule="deal_id"``: the call's ``crm_deal_id`` names a known deal: that deal and its lead.
    2. ``rule="lead_id"``: the call's ``crm_lead_id`` names a known lead (or a deal's ``lead_id``):
       that lead, and its deal (below).
    3. ``rule="phone"``: by the client's normalised phone. The lead: the latest lead of that phone
       created from ``lead_window`` before the call to ``before`` after it (an inbound call
       usually creates its lead a moment later). The deal: the latest deal of that phone created
       no later than ``before`` after the call and not closed more than ``deal_grace`` before it
       (the deal open at the time of the call); failing that, the deal of the lead.
    4. otherwise ``lead_id``, ``deal_id`` and ``rule`` are None.

    The deal of a lead is the latest of its deals created no later than ``before`` after the call,
    else the first one created after the call (a qualification call belongs to the deal it led to).
    An older deal of the same phone that is still open is not looked at when a newer one closed
    before the call. Ids come out as strings.
    """
    n = len(calls)
    t_call = _utc_ns(calls, "started_at")
    has_time = t_call != _NAT
    d_created, d_closed = _utc_ns(deals, "created_at"), _utc_ns(deals, "closed_at")
    shift, grace, window = before.value, deal_grace.value, lead_window.value

    # one code space each for phones, lead ids and deal ids across the frames (strings hashed once)
    (p_call, p_deal, p_lead), _ = _shared_codes(
        [_column(calls, "client_phone"), _column(deals, "client_phone"), _column(leads, "client_phone")],
        lambda v: _phone_or_none(v, default_country))
    (l_lead, l_deal, l_call), lead_values = _shared_codes(
        [_column(leads, "lead_id"), _column(deals, "lead_id"), _column(calls, "crm_lead_id")], _id_or_none)
    (d_deal, d_call), deal_values = _shared_codes([_column(deals, "deal_id"), _column(calls, "crm_deal_id")], _id_or_none)
    known_lead = np.zeros(len(lead_values) + 1, dtype=bool)
    known_lead[l_lead[l_lead >= 0]] = True
    known_lead[l_deal[l_deal >= 0]] = True
    deal_row = np.full(len(deal_values) + 1, -1, dtype=np.int64)  # first deal row of each deal id
    rows = np.flatnonzero(d_deal >= 0)[::-1]
    deal_row[d_deal[rows]] = rows

    # 1. the deal named by the call
    deal = deal_row[d_call]
    by_deal = deal >= 0
    lead = np.where(by_deal, l_deal[np.maximum(deal, 0)], -1) if len(deals) else np.full(n, -1, dtype=np.int64)
    # 2. the lead named by the call
    by_lead = ~by_deal & (l_call >= 0) & known_lead[np.maximum(l_call, 0)]
    lead = np.where(by_lead, l_call, lead)

    # 3a. the lead by phone
    need = (lead < 0) & (p_call >= 0) & has_time
    if need.any() and len(leads):
        ok = (p_lead >= 0) & (_utc_ns(leads, "created_at") != _NAT)
        hit, row = _asof(t_call[need], p_call[need], _utc_ns(leads, "created_at")[ok] - shift, p_lead[ok],
                         tolerance=window + shift)
        rows = np.flatnonzero(ok)
        sel = np.flatnonzero(need)[hit]
        lead[sel] = l_lead[rows[row]]
    # 3b. the deal open at the call, by phone
    need = (deal < 0) & (p_call >= 0) & has_time & ~by_lead
    if need.any() and len(deals):
        ok = (p_deal >= 0) & (d_created != _NAT)
        hit, row = _asof(t_call[need], p_call[need], d_created[ok] - shift, p_deal[ok])
        rows = np.flatnonzero(ok)[row]
        sel = np.flatnonzero(need)[hit]
        open_then = (d_closed[rows] == _NAT) | (t_call[sel] <= d_closed[rows] + grace)
        sel, rows = sel[open_then], rows[open_then]
        deal[sel] = rows
        fill = lead[sel] < 0
        lead[sel[fill]] = l_deal[rows[fill]]
    # the deal of the lead: backward, then forward
    need = (deal < 0) & (lead >= 0) & has_time
    if need.any() and len(deals):
        ok = (l_deal >= 0) & (d_created != _NAT)
        rows_ok = np.flatnonzero(ok)
        for direction in ("backward", "forward"):
            sel_all = np.flatnonzero(need)
            if not len(sel_all):
                break
            hit, row = _asof(t_call[sel_all], lead[sel_all], d_created[ok] - shift, l_deal[ok], direction=direction)
            deal[sel_all[hit]] = rows_ok[row]
            need[sel_all[hit]] = False

    rule = np.full(n, None, dtype=object)
    rule[(lead >= 0) | (deal >= 0)] = "phone"
    rule[by_lead] = "lead_id"
    rule[by_deal] = "deal_id"
    lead_out = np.full(n, None, dtype=object)
    lead_out[lead >= 0] = np.asarray(lead_values, dtype=object)[lead[lead >= 0]]
    deal_out = np.full(n, None, dtype=object)
    deal_out[deal >= 0] = deal_values[d_deal[deal[deal >= 0]]]
    return pd.DataFrame({"call_id": _column(calls, "call_id").to_numpy(), "lead_id": pd.Series(lead_out, dtype=object),
                         "deal_id": pd.Series(deal_out, dtype=object), "rule": pd.Series(rule, dtype=object)})


def _label(mask: pd.Series, value: str) -> pd.Series:
    """``value`` where ``mask``, else None (object dtype)."""
    return pd.Series(value, index=mask.index, dtype=object).where(mask, None)


def _asof(t_left: np.ndarray, key_left: np.ndarray, t_right: np.ndarray, key_right: np.ndarray, *,
          direction: Literal["backward", "forward"] = "backward", tolerance: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each left (time, key): the right row with the same key and the latest time <= the left's
    (or the earliest >= for forward), within ``tolerance`` ns. Returns (left rows hit, right rows)."""
    left = pd.DataFrame({"t": t_left, "k": key_left, "i": np.arange(len(t_left))}).sort_values("t", kind="stable")
    right = pd.DataFrame({"t": t_right, "k": key_right, "j": np.arange(len(t_right))}).sort_values("t", kind="stable")
    merged = pd.merge_asof(left, right, on="t", by="k", direction=direction,
                           tolerance=tolerance)
    found = merged["j"].notna().to_numpy()
    return merged["i"].to_numpy()[found], merged["j"].to_numpy()[found].astype(np.int64)
