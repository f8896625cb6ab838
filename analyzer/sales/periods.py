"""Periods a report covers: a half-open time range in UTC and the time zone its days and weeks are counted in.

Months and quarters as people write them (``2024-05``, ``05.2024``, ``май 2024``, ``2024-Q2``) are
read by :func:`parse_period`; :class:`Period` is what every KPI takes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd

DEFAULT_TZ = "Europe/Moscow"
"""The time zone of a CRM account when none is given: times without an offset are local to it."""

Freq = Literal["W"] | None
"""How a period is split: ``None`` (the whole period) or ``"W"`` (weeks from a local Monday)."""

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


@dataclass(frozen=True)
class Period:
    """A half-open time range ``[start, end)`` (UTC) and the time zone its days and weeks are counted in."""

    start: pd.Timestamp
    end: pd.Timestamp
    tz: str = DEFAULT_TZ

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _ts(self.start, self.tz))
        object.__setattr__(self, "end", _ts(self.end, self.tz))
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def days(cls, first: date | str, last: date | str, *, tz: str = DEFAULT_TZ) -> Period:
        """From the first to the last day, both included, in local time (``date_from``/``date_to`` of a report)."""
        return cls(pd.Timestamp(first), pd.Timestamp(last) + pd.Timedelta(days=1), tz)

    @classmethod
    def month(cls, year: int, month: int, *, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year, month, 1)
        return cls(start, start + pd.offsets.MonthBegin(1), tz)

    @classmethod
    def quarter(cls, year: int, quarter: int, *, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year, 3 * quarter - 2, 1)
        return cls(start, start + pd.offsets.MonthBegin(3), tz)

    @property
    def first_day(self) -> date:
        """The local day the period starts on."""
        return self.start.tz_convert(self.tz).date()  # type: ignore[no-any-return]

    @property
    def last_day(self) -> date:
        """The last local day the period covers (``Period.days(p.first_day, p.last_day)`` is ``p``, for whole days)."""
        return (self.end - pd.Timedelta(1)).tz_convert(self.tz).date()  # type: ignore[no-any-return]

    def week_starts(self) -> pd.DatetimeIndex:
        """Local Mondays (tz-naive) of the weeks that overlap the period."""
        first = self.start.tz_convert(self.tz).tz_localize(None).normalize()
        first -= pd.Timedelta(days=first.dayofweek)
        last = (self.end - pd.Timedelta(1)).tz_convert(self.tz).tz_localize(None).normalize()
        return pd.date_range(first, last, freq="7D") if self.end > self.start else pd.DatetimeIndex([])

    def buckets(self, freq: Freq) -> pd.DataFrame:
        """The period split by ``freq``: columns ``week`` (if weekly), ``start``, ``end`` (UTC, clipped)."""
        if freq is None:
            return pd.DataFrame({"start": [self.start], "end": [self.end]})
        weeks = self.week_starts()
        starts = weeks.tz_localize(self.tz).tz_convert("UTC")
        ends = (weeks + pd.Timedelta(days=7)).tz_localize(self.tz).tz_convert("UTC")
        return pd.DataFrame({"week": weeks, "start": np.maximum(starts, self.start), "end": np.minimum(ends, self.end)})


def _ts(value: Any, tz: str) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return (t.tz_localize(tz) if t.tzinfo is None else t).tz_convert("UTC")
