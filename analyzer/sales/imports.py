"""CRM data in: leads, deals, plans and deal stage history from amoCRM, Bitrix24 or a generic export.

Pure parsing: the ``parse_*`` functions take a :class:`~analyzer.sales.tables.RawTable` (headers,
string cells and the line each row came from; :mod:`analyzer.sales.tables` reads one from CSV or
XLSX bytes) and return ``(DataFrame, list[RowError])``: a bad row is reported with its line number
and reason, the good rows land. The only I/O is in the thin ``read_*(path)`` wrappers. Which
columns each CRM writes is in :mod:`analyzer.sales.headers`.

Numbers in Russian format (``1 234 567,89``, ``150 000 ₽``); dates ``dd.mm.yyyy hh:mm:ss`` (seconds
and time optional) or ISO 8601. Times without an offset are local time of the CRM account (``tz``,
default Europe/Moscow) and come out as UTC. Phones come out as ``+79123456789`` (Russian ``8``
prefix read as ``+7``; a bare 10-digit number is national, ``default_country`` prefixed).

Status from stage: won for ``Успешно реализовано`` (amoCRM), ``Сделка успешна`` / ``WON``
(Bitrix24); lost for ``Закрыто и не реализовано``, ``Сделка провалена`` / ``LOSE`` /
``Анализ причины провала`` (``APOLOGY``); anything else is open. Custom final stages are passed as
``won_stages=`` / ``lost_stages=``.

Every row gets a stable ``key``: ``"<crm>:<entity>:<id>"`` (``amocrm:deal:10452``), for the
database layer to upsert on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analyzer.sales.errors import CrmFormatError
from analyzer.sales.headers import (
    ALIASES,
    DEAL_MARKERS,
    PHONE_HEADERS,
    CrmSource,
    Entity,
    detect_entity,
    detect_source,
    normalise_header,
)
from analyzer.sales.periods import DEFAULT_TZ, parse_period
from analyzer.sales.tables import RawTable, RowError, read_table

LEAD_COLUMNS = ["key", "crm", "lead_id", "created_at", "manager", "source", "client", "client_phone", "status",
                "first_response_at", "title"]
DEAL_COLUMNS = ["key", "crm", "deal_id", "lead_id", "title", "client", "client_phone", "manager", "created_at",
                "closed_at", "stage", "pipeline", "status", "amount", "currency", "source"]
PLAN_COLUMNS = ["manager", "period_start", "period_end", "revenue_plan", "activity_plan", "activity_kind"]
STAGE_HISTORY_COLUMNS = ["key", "crm", "deal_id", "stage", "entered_at"]


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

def _columns(table: RawTable, entity: Entity, required: Sequence[str]) -> dict[str, int]:
    """Canonical field -> column index; the first alias present wins."""
    index: dict[str, int] = {}
    for i, h in enumerate(table.headers):
        index.setdefault(normalise_header(h), i)
    found: dict[str, int] = {}
    used: set[int] = set()
    for fld, aliases in ALIASES[entity].items():
        for a in aliases:
            if a in index and index[a] not in used:
                found[fld] = index[a]
                used.add(index[a])
                break
    missing = [f for f in required if f not in found]
    if missing:
        need = "; ".join(f"{f}: one of {', '.join(repr(a) for a in ALIASES[entity][f])}" for f in missing)
        raise CrmFormatError(f"{table.name or 'file'}: no column for {need} (headers: {', '.join(table.headers)})")
    return found


def _phone_columns(table: RawTable) -> list[int]:
    normed = [normalise_header(h) for h in table.headers]
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
    if crm == "amocrm" or {normalise_header(h) for h in table.headers} & DEAL_MARKERS:  # a deals export: its deals' leads
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


def _label(mask: pd.Series, value: str) -> pd.Series:
    """``value`` where ``mask``, else None (object dtype)."""
    return pd.Series(value, index=mask.index, dtype=object).where(mask, None)


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
        header = normalise_header(table.headers[cols["activity_plan"]]) if "activity_plan" in cols else ""
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
