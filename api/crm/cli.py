"""``callqa crm import`` and ``callqa kpi`` (registered in :mod:`api.cli`)::

    callqa crm import FILE... [--source amocrm|bitrix24|generic] [--entity leads|deals|plans|stage_history|managers]
    callqa kpi [--period 2026-11 | --from 2026-11-01 --to 2026-11-30] [--by manager|team|department|all]
               [--team ID] [--manager ID] [--json] [--csv FILE] [--xlsx FILE]
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

crm_app = typer.Typer(help="CRM data: leads, deals, plans, stage history, managers (amoCRM, Bitrix24, generic CSV/XLSX)",
                      no_args_is_help=True)
err = Console(stderr=True)


def _database():  # noqa: ANN202
    from api.cli import _bootstrap, _settings
    from api.core.db import Database

    settings = _settings()
    _bootstrap(settings)
    return settings, Database(settings)


@crm_app.command("import")
def crm_import(
    files: list[Path] = typer.Argument(..., help="CSV or XLSX exports", exists=True, dir_okay=False, readable=True),
    source: str = typer.Option(None, help="amocrm, bitrix24 or generic (default: detected from the headers)"),
    entity: str = typer.Option(None, help="leads, deals, plans, stage_history or managers (default: detected)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON result per file"),
) -> None:
    """Import CRM exports; the same file twice changes nothing. Prints the counts and the bad rows."""
    from analyzer.errors import AnalyzerError
    from api.core.errors import ServiceError
    from api.crm.service import import_bytes, read_limits

    settings, database = _database()
    failed = False
    out = Console()
    try:
        with database.sessions() as session:
            for path in files:
                try:
                    result = import_bytes(session, data=path.read_bytes(), filename=path.name, actor=None, source=source,
                                          entity=entity, limits=read_limits(settings))
                except (AnalyzerError, ServiceError) as e:
                    session.rollback()
                    failed = True
                    err.print(f"[red]{path}: {getattr(e, 'message', str(e))}[/red]")
                    continue
                if as_json:
                    print(json.dumps(result.to_dict(), ensure_ascii=False))
                    continue
                c = result.counts
                also = "".join(f"; {k}: {v.inserted} inserted, {v.updated} updated, {v.unchanged} unchanged"
                               for k, v in result.also.items())
                out.print(f"{path}: {result.source} {result.entity}: {c.inserted} inserted, {c.updated} updated, "
                          f"{c.unchanged} unchanged, {sum(e.skipped for e in result.errors)} bad rows{also}")
                for row_error in result.errors:
                    out.print(f"  [yellow]{row_error}[/yellow]")
                if result.unmatched_managers:
                    out.print(f"  [yellow]no manager here is named {', '.join(result.unmatched_managers)}: import a "
                              "managers list (external_id,name,team,department) to count their rows[/yellow]")
    finally:
        database.dispose()
    raise typer.Exit(1 if failed else 0)


_COLUMNS = [  # (KPI, header, format)
    ("calls", "calls", "int"), ("score_mean", "score", "num"), ("compliance", "script", "pct"),
    ("objections_handled_rate", "obj. handled", "pct"), ("leads", "leads", "int"), ("conversion", "conv.", "pct"),
    ("won_deals", "won", "int"), ("lost_deals", "lost", "int"), ("revenue", "revenue", "money"),
    ("plan_completion", "plan", "pct"), ("average_check", "avg check", "money"), ("cycle_days_median", "cycle d", "num"),
]


def _cell(v: Any, fmt: str) -> str:
    if v is None:
        return "-"
    if fmt == "pct":
        return f"{v * 100:.0f}%"
    if fmt == "money":
        return f"{v:,.0f}".replace(",", " ")
    if fmt == "num":
        return f"{v:.1f}"
    return str(v)


def kpi_table(report: dict[str, Any]) -> Table:
    """The summary rows as a rich table, for people."""
    p = report["period"]
    table = Table(title=f"Sales KPIs, {p['label']} ({p['tz']}), by {report['by']}")
    table.add_column(report["by"], no_wrap=True)
    for _, header, _ in _COLUMNS:
        table.add_column(header, justify="right")
    for row in report["summary"]:
        table.add_row(str(row.get("name") or row[report["group_key"]] or "-"), *[_cell(row.get(k), f) for k, _, f in _COLUMNS])
    return table


def kpi_command(
    period: str = typer.Option(None, help="a month 2026-11 or a quarter 2026-Q4"),
    date_from: datetime = typer.Option(None, "--from", formats=["%Y-%m-%d"], help="first day (with --to)"),
    date_to: datetime = typer.Option(None, "--to", formats=["%Y-%m-%d"], help="last day, included"),
    by: str = typer.Option("manager", help="manager, team, department or all"),
    team: int = typer.Option(None, help="only this team's managers (id)"),
    manager: int = typer.Option(None, help="only this manager (id)"),
    trend: bool = typer.Option(False, help="week by week"),
    as_json: bool = typer.Option(False, "--json", help="the whole report as JSON"),
    csv_file: Path = typer.Option(None, "--csv", help="also write the table as CSV"),
    xlsx_file: Path = typer.Option(None, "--xlsx", help="also write the report as XLSX"),
) -> None:
    """The KPI table per manager (team, department): call quality joined with CRM conversion and revenue."""
    from api.core.errors import ServiceError
    from api.kpi.service import export, kpi_report, period_of

    _, database = _database()
    try:
        with database.sessions() as session:
            d_from: date | None = date_from.date() if date_from else None
            d_to: date | None = date_to.date() if date_to else None
            report = kpi_report(session, user=None, period=period_of(period, date_from=d_from, date_to=d_to), by=by,
                                team_id=team, manager_id=manager, trend="week" if trend else None)
    except ServiceError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    for path, fmt in ((csv_file, "csv"), (xlsx_file, "xlsx")):
        if path is not None:
            data, _, _ = export(report, fmt=fmt)
            path.write_bytes(data)
            err.print(f"wrote {path}")
    if as_json:
        print(json.dumps(report, ensure_ascii=False, allow_nan=False))
        return
    Console(width=None if sys.stdout.isatty() else 160).print(kpi_table(report))
    if not report["summary"]:
        err.print("no managers in scope: import calls and a managers list first (callqa crm import managers.csv)")
