"""The ``callqa`` command line: the analyzer's commands (:mod:`analyzer.cli`: analyze, score,
scripts, model) and the service's, composed here::

    callqa serve     the API and a local worker together (one machine)
    callqa worker    process calls: --executor local (processes here) or celery (a broker, many machines)
    callqa import    queue every recording under folders, with shared metadata
    callqa calls     the calls in the database
    callqa rescore   score stored transcripts again after a script change
    callqa learn     learn a new version of a script from its reviews
    callqa db        migrate the database (SQLite file or PostgreSQL)
    callqa user      create a user (admin, head_of_sales, quality_controller, manager)
    callqa kpi       the sales KPI table per manager, team or department
    callqa crm       import CRM exports: leads, deals, plans, stage history, managers (:mod:`api.crm.cli`)

Settings come from CALLQA_* variables (see README); options here override them.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from analyzer.cli import app as analyzer_app
from api.cli_support import console, database_session, prepare_database, safe_url, service_settings
from api.crm.cli import crm_app

service = typer.Typer()
"""The service's commands; :data:`app` puts them after the analyzer's."""


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("faster_whisper", "spacy", "pymorphy3", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@service.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(None, help="local worker processes (CALLQA_WORKERS, default 1; 0: API only)"),
    api_processes: int = typer.Option(1, help="API server processes: uvicorn's workers (one a core is a good start)"),
    access_log: bool = typer.Option(True, help="log every request"),
    import_dir: list[Path] = typer.Option([], "--import", help="queue the recordings in this folder at start"),
    demo: bool = typer.Option(False, "--demo", help="the sample calls and a demo login per role (passwords printed)"),
) -> None:
    """Run the web UI and the API (docs at /docs) and, with the local executor, worker processes beside it."""
    import uvicorn

    from api.processing.local import LocalExecutor

    settings = service_settings(workers=workers)
    _logging()
    prepare_database(settings)
    for folder in import_dir:
        _import(settings, folder, None)
    accounts = []
    if demo:
        from api.web.demo import setup_demo

        accounts = setup_demo(settings)
    executor = None
    if settings.executor == "local" and settings.workers > 0:
        executor = LocalExecutor(settings, processes=settings.workers)
        executor.start()
        console.print(f"{settings.workers} local worker process(es) started")
    console.print(f"API on http://{host}:{port}  (OpenAPI docs: http://{host}:{port}/docs)  database: {safe_url(settings.db_url)}")
    console.print(f"[bold]Web UI: http://{host}:{port}/[/bold]")
    for a in accounts:
        console.print(f"  demo login [bold]{a.username}[/bold] ({a.role.value}), password [green]{a.password}[/green]")

    def _stop(signum: int, _frame: object) -> None:
        # uvicorn shuts down gracefully, then re-raises the signal it caught: here, so the workers
        # are stopped too and the exit is clean
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        uvicorn.run("api.main:app", host=host, port=port, workers=api_processes, log_level="info", access_log=access_log)
    finally:
        if executor is not None:
            executor.stop()


@service.command()
def worker(
    executor: str = typer.Option(None, help="local or celery (CALLQA_EXECUTOR)"),
    processes: int = typer.Option(None, help="worker processes (default CALLQA_WORKERS)"),
    drain: bool = typer.Option(False, help="stop when no call is due (local executor)"),
) -> None:
    """Process queued calls until stopped (Ctrl-C or SIGTERM finish the calls in progress first)."""
    settings = service_settings(executor=executor)
    n = processes or settings.workers or 1
    _logging()
    prepare_database(settings)
    if settings.executor == "celery":
        from api.processing.celery_app import CeleryExecutor

        console.print(f"celery worker, broker {safe_url(settings.broker_url)}, {n} process(es)")
        CeleryExecutor(settings).run(concurrency=n)
        return
    from api.processing.local import LocalExecutor

    console.print(f"local worker, {n} process(es), database {safe_url(settings.db_url)}")
    LocalExecutor(settings, processes=n, drain=drain).run()


@service.command("import")
def import_(
    folders: list[Path] = typer.Argument(..., help="folders of recordings (searched recursively)"),
    manager: str = typer.Option(None, help="PBX extension / CRM id of the manager of these calls"),
    language: str = typer.Option(None),
    manager_channel: str = typer.Option(None, help="left or right"),
    metadata: Path = typer.Option(None, "--metadata", exists=True, dir_okay=False,
                                  help="CSV of per-recording metadata (audio or call_id, manager_external_id, client_phone, "
                                  "direction, started_at, crm_lead_id, crm_deal_id): see sample_calls/crm/calls.csv"),
) -> None:
    """Queue every recording under the folders (a recording already stored is not added twice)."""
    settings = service_settings()
    prepare_database(settings)
    meta: dict[str, Any] = {"manager_external_id": manager, "language": language, "manager_channel": manager_channel}
    failed = 0
    for folder in folders:
        failed += _import(settings, folder, {k: v for k, v in meta.items() if v}, metadata)
    raise typer.Exit(1 if failed else 0)


def _import(settings, folder: Path, meta: dict[str, Any] | None, metadata: Path | None = None) -> int:  # noqa: ANN001
    from api.calls.schemas import CallMetadataCreate
    from api.calls.service import import_folder
    from api.core.db import Database
    from api.core.errors import ServiceError
    from api.core.storage import RecordingStore

    if not folder.is_dir():
        console.print(f"[red]{folder}: not a folder[/red]")
        return 1
    db = Database(settings)
    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    failed = created = dup = 0
    try:
        with db.sessions() as session:
            common = CallMetadataCreate.model_validate(meta or {})
            if metadata is not None:
                from api.crm.calls import import_folder_with_metadata, read_call_metadata

                table = read_call_metadata(metadata)
                for line, reason in table.errors:
                    console.print(f"[yellow]{metadata}:{line}: {reason} (row not used)[/yellow]")
                results = import_folder_with_metadata(session, store, folder=folder, meta=common, table=table)
            else:
                results = import_folder(session, store, folder=folder, meta=common)
            for path, r in results:
                if isinstance(r, ServiceError):
                    failed += 1
                    console.print(f"[red]{path}: {r.message}[/red]")
                elif r.created:
                    created += 1
                else:
                    dup += 1
    finally:
        db.dispose()
    console.print(f"{folder}: {created} queued, {dup} already stored, {failed} rejected")
    return failed


@service.command()
def calls(
    status: str = typer.Option(None, help="queued, transcribing, scoring, done or failed"),
    limit: int = typer.Option(50, min=1, max=10000),
    as_json: bool = typer.Option(False, "--json", help="one JSON summary per line"),
) -> None:
    """The calls in the database, newest first: status, score, stages missed, objections not handled."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from api.models import Call, CallStatus

    with database_session() as (settings, session):
        query = select(Call).options(selectinload(Call.stages), selectinload(Call.objections), selectinload(Call.manager),
                                     selectinload(Call.recording)).order_by(Call.id.desc()).limit(limit)
        if status:
            query = query.where(Call.status == CallStatus(status))
        rows = session.scalars(query).all()
        table = Table(title=f"calls in {safe_url(settings.db_url)}")
        for col in ("id", "recording", "manager", "duration", "status", "score", "stages missed", "objections not handled"):
            table.add_column(col, overflow="fold")
        for c in rows:
            missed = [s.stage_id for s in c.stages if s.status == "missed"]
            unhandled = [o.type for o in c.objections if o.status == "missed"]
            uncertain = c.uncertain
            item = {"id": c.id, "recording": c.recording.original_name if c.recording else c.recording_url,
                    "manager": c.manager.name if c.manager else None, "duration": c.duration, "status": c.status.value,
                    "score": c.score, "stages_missed": missed, "objections_unhandled": unhandled, "uncertain": uncertain,
                    "error": c.error_message if c.status == CallStatus.failed else None}
            if as_json:
                print(json.dumps(item, ensure_ascii=False))
                continue
            score = "-" if c.score is None else f"{c.score:.0f}" + (f" ({uncertain} uncertain)" if uncertain else "")
            state = c.status.value if c.status != CallStatus.failed else f"failed: {c.error_message}"
            table.add_row(str(c.id), str(item["recording"] or ""), str(item["manager"] or ""), f"{c.duration or 0:.0f} s", state, score,
                          ", ".join(missed), ", ".join(unhandled))
        if not as_json:
            Console().print(table)


@service.command()
def rescore(
    script: str = typer.Option(None, help="score against this script's active version (default: each call's own script)"),
    dry_run: bool = typer.Option(False, help="show what would change without saving"),
) -> None:
    """Score every stored transcript again against the active script versions, without transcribing."""
    from api.calls.service import rescore as rescore_calls

    with database_session() as (_, session):
        result = rescore_calls(session, actor=None, script_id=script, call_ids=None, dry_run=dry_run)
    verb = "would change" if dry_run else "changed"
    console.print(f"re-scored {result.rescored} calls; {result.changed} {verb}")
    for stage, flips in sorted(result.stage_flips.items()):
        console.print(f"  {stage}: " + ", ".join(f"{k} x{v}" for k, v in sorted(flips.items())))
    for c in result.changes[:20]:
        console.print(f"  call {c.call_id}: score {c.score_before} -> {c.score_after}")


@service.command()
def learn(
    script: str = typer.Argument(..., help="the script id, e.g. ru_b2b_outbound"),
    activate: bool = typer.Option(False, help="activate the learned version and re-score the calls with it"),
) -> None:
    """Learn a new version of a script from its reviewers' verdicts; show what it would change."""
    from api.calls.service import rescore as rescore_calls
    from api.core.errors import ServiceError
    from api.learning.service import learn as learn_version
    from api.scripts.service import activate_version

    with database_session() as (_, session):
        try:
            learned = learn_version(session, actor=None, script_id=script)
        except ServiceError as e:
            console.print(f"[red]{e.message}[/red]")
            raise typer.Exit(1) from None
        result = learned.changes
        console.print(f"version {learned.version.version}: {learned.examples} examples from {learned.calls} reviewed calls "
                      f"({', '.join(f'{k} {v}' for k, v in learned.labels.items())})")
        console.print(f"on {result.rescored} calls it would change {result.changed}")
        for c in result.changes[:20]:
            console.print(f"  call {c.call_id}: score {c.score_before} -> {c.score_after}; objections "
                          f"{', '.join(c.objections_before) or '-'} -> {', '.join(c.objections_after) or '-'}")
        if activate:
            activate_version(session, actor=None, script_id=script, version=learned.version.version)
            applied = rescore_calls(session, actor=None, script_id=script, call_ids=None, dry_run=False)
            console.print(f"activated; re-scored {applied.rescored} calls, {applied.changed} changed")


@service.command()
def db(action: str = typer.Argument("upgrade", help="upgrade: create or migrate the schema")) -> None:
    """Create or migrate the database schema, seed the bundled scripts and the first administrator."""
    if action != "upgrade":
        raise typer.BadParameter("only 'upgrade' is supported", param_hint="ACTION")
    settings = service_settings()
    prepare_database(settings)
    console.print(f"database {safe_url(settings.db_url)} is at the newest schema")


@service.command()
def user(
    username: str = typer.Argument(...),
    role: str = typer.Option(..., help="admin, head_of_sales, quality_controller or manager"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    manager_id: int = typer.Option(None, help="for a manager login: the manager whose calls it owns"),
) -> None:
    """Create a user."""
    from api.auth.passwords import PasswordPolicy
    from api.auth.service import create_user
    from api.core.errors import ServiceError
    from api.models import Role

    try:
        role_value = Role(role)
    except ValueError:
        raise typer.BadParameter(f"one of {', '.join(r.value for r in Role)}", param_hint="--role") from None
    try:
        with database_session() as (settings, session):
            u = create_user(session, actor=None, username=username, password=password, role=role_value, manager_id=manager_id,
                            passwords=PasswordPolicy.of(settings))
            console.print(f"user {u.username} ({u.role.value}) created, id {u.id}")
    except ServiceError as e:
        console.print(f"[red]{e.message}[/red]")
        raise typer.Exit(1) from None


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


@service.command("kpi")
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

    try:
        with database_session() as (_, session):
            d_from: date | None = date_from.date() if date_from else None
            d_to: date | None = date_to.date() if date_to else None
            report = kpi_report(session, user=None, period=period_of(period, date_from=d_from, date_to=d_to), by=by,
                                team_id=team, manager_id=manager, trend="week" if trend else None)
    except ServiceError as e:
        console.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    for path, fmt in ((csv_file, "csv"), (xlsx_file, "xlsx")):
        if path is not None:
            data, _, _ = export(report, fmt=fmt)
            path.write_bytes(data)
            console.print(f"wrote {path}")
    if as_json:
        print(json.dumps(report, ensure_ascii=False, allow_nan=False))
        return
    Console(width=None if sys.stdout.isatty() else 160).print(kpi_table(report))
    if not report["summary"]:
        console.print("no managers in scope: import calls and a managers list first (callqa crm import managers.csv)")


app = typer.Typer(add_completion=False, no_args_is_help=True, help="Call quality and script compliance for sales calls.")
app.add_typer(analyzer_app)
app.add_typer(service)
app.add_typer(crm_app, name="crm")


def main() -> None:
    app()
