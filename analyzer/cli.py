"""The ``callqa`` command line: analyse recordings, re-score transcripts, check scripts."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from analyzer.errors import AnalyzerError, TranscriptFormatError
from analyzer.results import CallReport, Transcript, error_report

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Call quality and script compliance for sales calls.")
out_console = Console()
err_console = Console(stderr=True)

AUDIO_EXTENSIONS = {".wav", ".mp3", ".ogg", ".opus", ".oga", ".flac", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".amr", ".gsm"}
_STATUS_STYLE = {"passed": "green", "missed": "red", "uncertain": "yellow"}
_STATUS_MARK = {"passed": "✔", "missed": "✘", "uncertain": "?"}


def _expand(paths: list[Path], extensions: set[str], *, skip: Path | None = None) -> list[Path]:
    """Files named and files in folders named; the reports folder itself is never read back."""
    skip_dir = skip.resolve() if skip is not None else None
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_file() or f.suffix.lower() not in extensions:
                    continue
                if skip_dir is not None and skip_dir in f.resolve().parents:
                    continue
                files.append(f)
        else:
            files.append(p)  # a missing or odd file gets its own error report
    return files


def _check_out(out: Path | None, files: list[Path]) -> None:
    if out is None:
        return
    sources = {f.resolve() for f in files}
    used: set[Path] = set()
    for f in files:
        if _out_path(out, f, used).resolve() in sources:
            raise typer.BadParameter(f"a report would overwrite the input {f}; choose another folder", param_hint="--out")


def _out_path(out: Path, source: Path, used: set[Path]) -> Path:
    target = out / f"{source.stem}.json"
    n = 2
    while target in used:
        target = out / f"{source.stem}-{n}.json"
        n += 1
    used.add(target)
    return target


def _emit(reports: Iterator[tuple[Path, dict[str, Any], CallReport | None]], *, as_json: bool, out: Path | None, total: int) -> int:
    failed = 0
    used: set[Path] = set()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, transient=True, disable=total < 2 or not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task("analysing", total=total)
        for source, data, _report in reports:
            failed += data.get("status") == "failed"
            if out is not None:
                target = _out_path(out, source, used)
                target.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
            if as_json and out is None:
                sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
                sys.stdout.flush()
            elif not as_json:
                out_console.print(_render(data))
            progress.advance(task)
    if out is not None:
        err_console.print(f"wrote {total} report(s) to {out}")
    if failed:
        err_console.print(f"[red]{failed} of {total} call(s) failed[/red]")
    return 1 if failed else 0


def _render(data: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.panel import Panel

    source = data.get("source") or "transcript"
    if data.get("status") == "failed":
        return Panel(f"[red]{escape(data['error']['message'])}[/red]", title=escape(f"{source}: failed"), border_style="red")
    score = data["score"]
    title = f"{source}  score {score if score is not None else '-'}  {data['language']}  {data['duration'] or 0:.0f}s  script {data['script']['id']} v{data['script']['version']}"
    stages = Table(show_header=True, header_style="bold", expand=True)
    stages.add_column("stage")
    stages.add_column("", width=2)
    stages.add_column("evidence")
    for s in data["stages"]:
        ev = s["evidence"]
        where = f"[{ev['start']:.1f}s] " if ev and ev.get("start") is not None else ""
        text = f"{where}{escape(ev['text'][:90])} [dim]≈ {escape(ev['phrase'])}[/dim]" if ev else escape(s.get("note") or "")
        stages.add_row(escape(s["title"]), f"[{_STATUS_STYLE[s['status']]}]{_STATUS_MARK[s['status']]}[/]", text)
    parts: list[Any] = [stages]
    if data["objections"]:
        obj = Table(show_header=True, header_style="bold", expand=True)
        obj.add_column("objection")
        obj.add_column("", width=2)
        obj.add_column("client")
        obj.add_column("manager's answer")
        for o in data["objections"]:
            resp = o["response"]["text"][:70] if o["response"] else (o.get("note") or "none")
            obj.add_row(escape(o["title"]), f"[{_STATUS_STYLE[o['status']]}]{_STATUS_MARK[o['status']]}[/]", escape(o["client"]["text"][:60]), escape(resp))
        parts.append(obj)
    m = data["metrics"]
    share = m["manager_talk_share"]
    line = f"manager talk {share:.0%}" if share is not None else "manager talk -"
    line += f" · questions {m['manager_questions']} · interruptions {m['interruptions']}"
    if m["silence_share"] is not None:
        line += f" · silence {m['silence_share']:.0%}"
    if data["fillers"]:
        line += " · fillers " + escape(", ".join(f"{f['phrase']}×{f['count']} ({f['speaker']})" for f in data["fillers"][:5]))
    parts.append(line)
    for w in data.get("warnings") or []:
        parts.append(f"[yellow]! {escape(w)}[/yellow]")
    return Panel(Group(*parts), title=escape(title), border_style="cyan")


def _each(
    files: list[Path], one: Callable[[Path], CallReport], *, words: bool = False
) -> Iterator[tuple[Path, dict[str, Any], CallReport | None]]:
    """Run ``one`` on every file; a file that fails gets an error report and the batch goes on."""
    for f in files:
        try:
            report = one(f)
            yield f, report.to_dict(words=words), report
        except AnalyzerError as exc:
            yield f, error_report(str(f), exc), None
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            logging.getLogger("callqa").exception("unexpected error on %s", f)
            yield f, error_report(str(f), exc), None


def _check_language(language: str) -> None:
    from analyzer.transcription import WHISPER_LANGUAGES

    if language not in WHISPER_LANGUAGES:
        raise typer.BadParameter(
            f"{language!r} is not a language Whisper knows; use a code such as ru, en, de, uk, kk",
            param_hint="--language",
        )


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@app.command()
def analyze(
    paths: list[Path] = typer.Argument(..., help="recordings or folders of recordings"),
    script: str | None = typer.Option(None, "--script", "-s", help="script id or YAML path (default: by language)"),
    manager_channel: str | None = typer.Option(None, "--manager-channel", help="left or right (stereo)"),
    language: str | None = typer.Option(None, "--language", "-l", help="ru, en... (default: detected)"),
    as_json: bool = typer.Option(False, "--json", help="JSON report per call (JSON Lines on stdout unless --out)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write one JSON report per call into this folder"),
    words: bool = typer.Option(False, "--words", help="include word timings and probabilities"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Transcribe and score recordings."""
    _setup_logging(verbose)
    if manager_channel not in (None, "left", "right"):
        raise typer.BadParameter("use left or right", param_hint="--manager-channel")
    from analyzer.pipeline import Analyzer

    if language is not None:
        _check_language(language)
    files = _expand(paths, AUDIO_EXTENSIONS, skip=out)
    if not files:
        err_console.print("no recordings found")
        raise typer.Exit(2)
    _check_out(out, files)
    analyzer = Analyzer()

    def one(f: Path) -> CallReport:
        return analyzer.analyze(f, script=script, language=language, manager_channel=manager_channel)

    raise typer.Exit(_emit(_each(files, one, words=words), as_json=as_json or out is not None, out=out, total=len(files)))


@app.command()
def score(
    paths: list[Path] = typer.Argument(..., help="transcript JSON files or folders of them"),
    script: str | None = typer.Option(None, "--script", "-s", help="script id or YAML path (default: by language)"),
    as_json: bool = typer.Option(False, "--json"),
    out: Path | None = typer.Option(None, "--out", "-o"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Score transcripts without audio: {"language": "ru", "turns": [{"speaker", "text", "start", "end"}]}."""
    _setup_logging(verbose)
    from analyzer.pipeline import Analyzer
    from analyzer.settings import get_settings

    files = _expand(paths, {".json"}, skip=out)
    if not files:
        err_console.print("no transcripts found")
        raise typer.Exit(2)
    _check_out(out, files)
    analyzer = Analyzer(get_settings())

    def one(f: Path) -> CallReport:
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TranscriptFormatError(f"{f}: no such file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TranscriptFormatError(f"{f}: not valid JSON ({exc})") from None
        try:
            transcript = Transcript.from_dict(data, source=str(f))
        except TranscriptFormatError as exc:
            raise TranscriptFormatError(f"{f}: {exc}") from None
        return analyzer.score(transcript, script=script)

    raise typer.Exit(_emit(_each(files, one), as_json=as_json or out is not None, out=out, total=len(files)))


@app.command()
def scripts(
    check: Path | None = typer.Option(None, "--check", help="validate a script file and exit"),
) -> None:
    """List the scripts in the library, or check a script file."""
    from analyzer.scripts import list_scripts, load_script_file
    from analyzer.settings import get_settings

    try:
        if check is not None:
            s = load_script_file(check)
            out_console.print(f"[green]ok[/green] {s.id} v{s.version}: {len(s.stages)} stages, {len(s.objections)} objections")
            return
        table = Table("id", "version", "language", "title", "stages", "objections")
        for s in list_scripts(get_settings().scripts_dirs):
            table.add_row(s.id, s.version, s.language, s.title, str(len(s.stages)), str(len(s.objections)))
        out_console.print(table)
    except AnalyzerError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None


@app.command()
def model() -> None:
    """Check that the Whisper model can be found (assembling the embedded one if needed)."""
    from analyzer.model import resolve_model
    from analyzer.settings import get_settings

    s = get_settings()
    try:
        where = resolve_model(s.model, cache_dir=s.model_cache_dir, allow_download=s.allow_download)
    except AnalyzerError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    out_console.print(f"model {s.model!r}: {where} (device {s.device}, compute {s.compute_type}, beam {s.beam_size})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
