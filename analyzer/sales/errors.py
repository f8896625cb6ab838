"""Errors of the sales package: CRM exports that cannot be read, KPI input frames that lack data::

    AnalyzerError
    ├── CrmFormatError      a CRM export cannot be read as a whole: not CSV/XLSX, no header row,
    │   │                   a required column missing (names it and lists the accepted headers)
    │   └── CrmLimitError   the file is past one of its ReadLimits (``limit`` names which)
    └── KpiInputError       an input frame lacks a required column, or a grouping needs data it lacks

A bad row of an export is no exception: it comes back as a :class:`analyzer.sales.tables.RowError`.
"""

from __future__ import annotations

from analyzer.errors import AnalyzerError


class CrmFormatError(AnalyzerError):
    """A CRM export cannot be read as a whole (format, header row, a required column)."""

    code = "crm_format_error"


class CrmLimitError(CrmFormatError):
    """A CRM export past one of its :class:`~analyzer.sales.tables.ReadLimits`; ``limit`` is the name of that field."""

    code = "crm_file_too_large"

    def __init__(self, message: str, *, limit: str):
        super().__init__(message)
        self.limit = limit


class KpiInputError(AnalyzerError):
    """An input frame lacks a column a KPI needs."""

    code = "kpi_input_error"
