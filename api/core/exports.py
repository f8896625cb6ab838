"""Cells of the CSV and XLSX files the service writes (the KPI exports, the dashboard's table), made
safe to open in a spreadsheet. Every export passes each cell through :func:`safe_cell`.

Text starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which spreadsheets
skip before one) is read as a formula by Excel and LibreOffice when the file is opened, and
openpyxl writes such a string into an XLSX as a formula: a CRM manager named
``=HYPERLINK("http://evil", "x")`` would become a link. Such text gets a single quote in front
(OWASP's advice for CSV injection) and stays text. Numbers stay numbers, and so does text that is
only a number (``-5``). Control characters XML 1.0 cannot hold (a bell pasted into a CRM name) are
dropped: openpyxl refuses to write them.
"""

from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell that is never run as a formula and that XLSX can hold."""
    if not isinstance(value, str):
        return value
    value = _NOT_XML.sub("", value)
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
