"""``callqa crm``, added to the command line by :mod:`api.cli`::

    callqa crm import FILE... [--source amocrm|bitrix24|generic] [--entity leads|deals|plans|stage_history|managers]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from api.cli_support import console, database_session

crm_app = typer.Typer(help="CRM data: leads, deals, plans, stage history, managers (amoCRM, Bitrix24, generic CSV/XLSX)",
                      no_args_is_help=True)


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

    failed = False
    out = Console()
    with database_session() as (settings, session):
        for path in files:
            try:
                result = import_bytes(session, data=path.read_bytes(), filename=path.name, actor=None, source=source,
                                      entity=entity, limits=read_limits(settings))
            except (AnalyzerError, ServiceError) as e:
                session.rollback()
                failed = True
                console.print(f"[red]{path}: {getattr(e, 'message', str(e))}[/red]")
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
    raise typer.Exit(1 if failed else 0)
