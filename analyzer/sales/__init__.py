"""Sales: CRM exports in, calls tied to leads and deals, KPIs per manager, team or department out.

Pure DataFrame transformations; the only I/O is in the thin ``read_*(path)`` wrappers. The modules,
in the order data flows through them:

- :mod:`~analyzer.sales.tables`: CSV or XLSX bytes to a table of text cells, within read limits;
- :mod:`~analyzer.sales.headers`: which CRM wrote an export, which entity it holds, which column is which;
- :mod:`~analyzer.sales.imports`: leads, deals, plans and stage history as canonical frames, bad rows reported;
- :mod:`~analyzer.sales.linking`: CRM rows to managers, calls to leads and deals;
- :mod:`~analyzer.sales.periods`: months, quarters and day ranges in a time zone;
- :mod:`~analyzer.sales.frames`: the KPIs' input frames (:class:`SalesData`);
- :mod:`~analyzer.sales.grouping`: which rows a period counts, groups and weeks;
- :mod:`~analyzer.sales.metrics`: every KPI, defined once, and their catalogue (:data:`KPIS`);
- :mod:`~analyzer.sales.statistics`: quality vs outcome, with score intervals;
- :mod:`~analyzer.sales.report`: the report of a period and its JSON-safe records.

Errors (:mod:`~analyzer.sales.errors`): :class:`CrmFormatError`, :class:`CrmLimitError`, :class:`KpiInputError`.
"""

from analyzer.sales.errors import CrmFormatError, CrmLimitError, KpiInputError
from analyzer.sales.frames import SalesData
from analyzer.sales.grouping import GROUP_KEYS, By
from analyzer.sales.imports import (
    CrmExport,
    leads_from_deals,
    parse_deals,
    parse_export,
    parse_leads,
    parse_plans,
    parse_stage_history,
    read_deals,
    read_export,
    read_leads,
    read_plans,
    read_stage_history,
)
from analyzer.sales.linking import attach_manager_ids, link_calls
from analyzer.sales.metrics import KPIS, KpiInfo, funnel_conversion
from analyzer.sales.periods import DEFAULT_TZ, Freq, Period, parse_period
from analyzer.sales.report import SalesReport, kpi_table, sales_report, to_records, weekly_trend
from analyzer.sales.statistics import quality_vs_outcome
from analyzer.sales.tables import RawTable, ReadLimits, RowError, read_table, table_from_bytes, table_from_csv

__all__ = [
    "DEFAULT_TZ", "GROUP_KEYS", "KPIS", "By", "CrmExport", "CrmFormatError", "CrmLimitError", "Freq", "KpiInfo",
    "KpiInputError", "Period", "RawTable", "ReadLimits", "RowError", "SalesData", "SalesReport", "attach_manager_ids",
    "funnel_conversion", "kpi_table", "leads_from_deals", "link_calls", "parse_deals", "parse_export", "parse_leads",
    "parse_period", "parse_plans", "parse_stage_history", "quality_vs_outcome", "read_deals", "read_export",
    "read_leads", "read_plans", "read_stage_history", "read_table", "sales_report", "table_from_bytes",
    "table_from_csv", "to_records", "weekly_trend",
]
