"""The API under a department's load, on this machine: open loop, the whole mix, a large database.

    python -m benchmarks.api_latency --db sqlite|postgresql [--calls 100000] [--rate 20] [--seconds 60]
                                     [--burst-every 30] [--burst-size 100] [--server-workers 2] [--reuse] [--json]

1. A fresh database (SQLite file under build/bench_api, or the PostgreSQL database ``callqa_bench``
   on 127.0.0.1, created when missing) migrated with Alembic and seeded in bulk with ``--calls``
   calls as the worker stores them: 60 managers in 6 teams, started_at spread over a quarter
   (working hours, weekdays), 97% done, the rest failed or queued; every done call has its
   transcript (with word timings) and report, per-stage and per-objection rows, a recording row and
   a run row. The reports are real: each of the labelled dialogues in sample_calls/dialogues is
   given speech-like timings and scored with the active script (``score_transcript``), and the
   calls cycle through them (80% Russian), so scores, missed stages and unhandled objections vary
   as they would. ``--reuse`` keeps a database that already holds ``--calls`` calls (migrations
   still run).
2. The app as a department runs it: ``callqa serve --workers 0 --api-processes N --no-access-log``
   (uvicorn's own worker processes) on a free loopback port, warmed up for ``--warmup-seconds``.
3. Open loop, as people use it: requests arrive at ``--rate`` a second (Poisson), whatever the
   answers do, plus a burst of ``--burst-size`` requests within one second every ``--burst-every``
   seconds (a meeting where everyone opens the dashboard); each request's latency counts from when
   it was due, so waiting for a connection or the server counts too. The mix (``MIX``), as a head of
   sales heading 3 of the 6 teams: call lists with filters (a fifth of them a next page by cursor),
   call pages, the dashboard web page and the KPI table of a month.
4. For the record, not as a target: the closed-loop maximum, ``--closed-loop-clients`` clients each
   sending the next request as soon as the last is answered.

Reports p50/p95/p99 latency per kind, errors, the load average and the cores the server used.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from api.calls.results import call_metrics
from api.web.auth import SESSION_COOKIE
from benchmarks.common import ROOT, load_dialogues, machine

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/callqa_bench"
ADMIN_PASSWORD = "orange-harbor-lantern"
HEAD_PASSWORD = "silver-raven-tundra"
TEAMS, MANAGERS_PER_TEAM, HEAD_TEAMS = 6, 10, 3
QUARTER_DAYS = 92
QUARTER_START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=QUARTER_DAYS)
"""The calls are of the last quarter, so the dashboard's week, month and quarter hold what they would."""
BATCH = 2000


# -- realistic reports -------------------------------------------------------------------------


@dataclass
class Template:
    """One scored dialogue, serialised once; a call copies it with its own id."""

    language: str
    duration: float
    report_json: str  # with the placeholder source "@SOURCE@"
    transcript_json: str
    script_id: str
    script_version: str
    score: float | None
    uncertain: int
    metrics: dict[str, float | None]  # the call's talk_time and manager_fillers columns
    stages: list[tuple[str, int, str]]  # stage id, position, status
    objections: list[tuple[int, str, str, bool]]  # position, type, status, handled


def _timed_transcript(dialogue: dict[str, Any], rng: random.Random) -> Any:
    """The dialogue as the recogniser gives it: utterances and words with times and probabilities."""
    from analyzer.results import Transcript, Utterance, Word

    t = 0.6
    utterances = []
    for turn in dialogue["turns"]:
        words = []
        for w in turn["text"].split():
            length = 0.12 + 0.055 * len(w.strip(".,!?")) * rng.uniform(0.8, 1.25)
            words.append(Word(text=w, start=t, end=t + length, probability=round(rng.uniform(0.55, 0.99), 3)))
            t += length + rng.uniform(0.02, 0.12)
        conf = sum(w.probability for w in words) / len(words) if words else None
        utterances.append(Utterance(speaker=turn["speaker"], text=turn["text"], start=words[0].start if words else t,
                                    end=words[-1].end if words else t, words=tuple(words), confidence=conf))
        t += rng.uniform(0.3, 1.2)
    return Transcript(language=dialogue["language"], utterances=tuple(utterances), duration=round(t + 0.8, 2),
                      roles_inferred=False, source="recording.wav", channels=2)


def build_templates(db_url: str) -> list[Template]:
    from analyzer.scoring import score_transcript
    from api.core.db import make_engine, make_sessionmaker
    from api.scripts.service import active_version, script_of

    rng = random.Random(7)
    engine = make_engine(db_url)
    scripts = {}
    with make_sessionmaker(engine)() as s:
        for lang in ("ru", "en"):
            scripts[lang] = script_of(active_version(s, language=lang))
    engine.dispose()
    out = []
    for d in load_dialogues():
        transcript = _timed_transcript(d, rng)
        report = score_transcript(transcript, scripts[d["language"]]).to_dict()
        report["source"] = "@SOURCE@"
        stages = [(st["id"], i, st["status"]) for i, st in enumerate(report["stages"])]
        objections = [(i, o["type"], o["status"], bool(o.get("handled"))) for i, o in enumerate(report["objections"])]
        out.append(Template(
            language=d["language"], duration=float(transcript.duration), report_json=json.dumps(report, ensure_ascii=False),
            transcript_json=json.dumps(transcript.to_dict(words=True), ensure_ascii=False),
            script_id=report["script"]["id"], script_version=report["script"]["version"], score=report["score"],
            uncertain=sum(st[2] == "uncertain" for st in stages) + sum(o[2] == "uncertain" for o in objections),
            metrics=call_metrics(report),
            stages=stages, objections=objections,
        ))
    return out


# -- seeding -----------------------------------------------------------------------------------


@dataclass
class Seeded:
    head_manager_ids: list[int]
    head_team_ids: list[int]
    head_call_ids: list[int]
    stage_ids: list[str]
    objection_types: list[str]
    seconds: float = 0.0
    sizes: dict[str, float] = field(default_factory=dict)


CALL_COLS = ("id", "recording_sha256", "source", "manager_id", "client_phone", "direction", "started_at", "duration",
             "crm_lead_id", "crm_deal_id", "external_id", "language", "status", "error_code", "error_message", "attempts",
             "next_attempt_at", "lease_token", "created_at", "updated_at", "processed_at",
             "script_id", "script_version", "machine_score", "score", "uncertain", "talk_time", "manager_fillers")
CONTENT_COLS = ("call_id", "transcript", "report")
REC_COLS = ("sha256", "size", "original_name", "content_type", "created_at")
STAGE_COLS = ("call_id", "stage_id", "position", "machine_status", "status", "reviewed")
OBJ_COLS = ("call_id", "position", "type", "machine_status", "machine_handled", "handled", "status", "reviewed")
RUN_COLS = ("id", "call_id", "lease_token", "worker", "started_at", "finished_at", "outcome", "error")


def _start_times(n: int, rng: random.Random) -> list[datetime]:
    """Weekdays, 9:00-19:00 Moscow (6-16 UTC), a little on Saturdays; sorted, as ids follow ingestion."""
    days = [d for d in range(QUARTER_DAYS) if (QUARTER_START + timedelta(days=d)).weekday() < 6]
    weights = [0.25 if (QUARTER_START + timedelta(days=d)).weekday() == 5 else 1.0 for d in days]
    out = []
    for day in rng.choices(days, weights, k=n):
        seconds = rng.uniform(6 * 3600, 16 * 3600)
        out.append(QUARTER_START + timedelta(days=day, seconds=seconds))
    out.sort()
    return out


def _rows(n: int, templates: list[Template], manager_ids: list[int], rng: random.Random) -> Iterator[tuple[dict, list, list, dict, dict | None]]:
    ru = [t for t in templates if t.language == "ru"]
    en = [t for t in templates if t.language == "en"]
    activity = [rng.uniform(0.4, 1.6) for _ in manager_ids]
    managers = rng.choices(manager_ids, activity, k=n)
    for i, started in enumerate(_start_times(n, rng)):
        cid = i + 1
        t = rng.choice(ru if rng.random() < 0.8 else en)
        roll = rng.random()
        status = "done" if roll < 0.97 else "failed" if roll < 0.99 else "queued"
        created = started + timedelta(seconds=t.duration + rng.uniform(20, 600))
        processed = created + timedelta(seconds=rng.uniform(30, 240)) if status != "queued" else None
        source = rng.choices(["webhook", "upload", "import"], [0.7, 0.2, 0.1])[0]
        sha = hashlib.sha256(f"recording {cid}".encode()).hexdigest()
        done = status == "done"
        call = {
            "id": cid, "recording_sha256": sha, "source": source, "manager_id": managers[i],
            "client_phone": f"+79{rng.randrange(10**9):09d}", "direction": "outbound" if rng.random() < 0.75 else "inbound",
            "started_at": started, "duration": t.duration,
            "crm_lead_id": f"L{rng.randrange(10**6)}" if rng.random() < 0.6 else None,
            "crm_deal_id": f"D{rng.randrange(10**6)}" if rng.random() < 0.3 else None,
            "external_id": f"pbx-{cid:08d}" if source == "webhook" else None,
            "language": t.language if status != "queued" else None, "status": status,
            "error_code": "audio_decode_error" if status == "failed" else None,
            "error_message": "the recording could not be decoded: it is empty or damaged; upload it again" if status == "failed" else None,
            "attempts": 0 if status == "queued" else 1 if done else 3,
            "next_attempt_at": created, "lease_token": 0 if status == "queued" else (1 if done else 3),
            "created_at": created, "updated_at": processed or created, "processed_at": processed,
            "transcript": t.transcript_json if done else None,  # to call_contents
            "report": t.report_json.replace('"@SOURCE@"', f'"call {cid}"') if done else None,
            "script_id": t.script_id if done else None, "script_version": t.script_version if done else None,
            "machine_score": t.score if done else None, "score": t.score if done else None,
            "uncertain": t.uncertain if done else 0,
            **(t.metrics if done else {"talk_time": None, "manager_fillers": None}),
        }
        rec = {"sha256": sha, "size": int(t.duration * 16000), "original_name": f"{cid}.mp3", "content_type": "audio/mpeg",
               "created_at": created}
        stages = [(cid, sid, pos, st, st, False) for sid, pos, st in t.stages] if done else []
        objections = [(cid, pos, typ, st, handled, st == "passed", st, False) for pos, typ, st, handled in t.objections] if done else []
        run = None if status == "queued" else {
            "id": cid, "call_id": cid, "lease_token": call["lease_token"], "worker": "worker-0@bench",
            "started_at": created, "finished_at": processed, "outcome": "done" if done else "failed",
            "error": None if done else "audio_decode_error"}
        yield call, stages, objections, rec, run


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
    if isinstance(v, bool):
        return int(v)
    return v


class _Writer:
    """Bulk inserts: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, url: str):
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            import sqlite3

            self.conn: Any = sqlite3.connect(url.split("///", 1)[1])
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def write(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ",".join("?" * len(cols))
            self.conn.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})",
                                  [tuple(_sqlite_value(v) for v in r) for r in rows])
        else:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({','.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)

    def commit(self) -> None:
        self.conn.commit()

    def finish(self) -> None:
        if self.sqlite:
            self.conn.commit()
        else:
            with self.conn.cursor() as cur:
                for table in ("calls", "call_runs"):
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            self.conn.commit()
            # what autovacuum does soon after a bulk load: statistics for the planner, and the visibility
            # map that lets a count be answered from an index alone
            self.conn.autocommit = True
            self.conn.execute("VACUUM (ANALYZE)")
        self.conn.close()


def seed(url: str, calls: int, *, progress: bool = True) -> Seeded:
    from sqlalchemy import select

    from api.core.db import make_engine, make_sessionmaker
    from api.core.security import hash_password
    from api.models import Manager, Role, Team, User

    t0 = time.perf_counter()
    rng = random.Random(42)
    templates = build_templates(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        head = User(username="head", full_name="Head of sales", password_hash=hash_password(HEAD_PASSWORD), role=Role.head_of_sales)
        qc = User(username="qc", full_name="Quality controller", password_hash=hash_password("benchmark-qc"), role=Role.quality_controller)
        s.add_all([head, qc])
        s.flush()
        teams = []
        for t in range(TEAMS):
            team = Team(name=f"Team {t + 1}", head_user_id=head.id if t < HEAD_TEAMS else None)
            s.add(team)
            s.flush()
            teams.append(team)
            for m in range(MANAGERS_PER_TEAM):
                s.add(Manager(name=f"Manager {t + 1}.{m + 1}", external_id=f"ext-{t + 1}{m + 1:02d}", team_id=team.id))
        s.commit()
        manager_ids = list(s.scalars(select(Manager.id).order_by(Manager.id)))
        head_teams = [t.id for t in teams[:HEAD_TEAMS]]
        head_managers = set(s.scalars(select(Manager.id).where(Manager.team_id.in_(head_teams))))
    engine.dispose()

    w = _Writer(url)
    head_calls: list[int] = []
    batch: dict[str, list[tuple]] = {"calls": [], "call_contents": [], "recordings": [], "call_stages": [], "call_objections": [],
                                     "call_runs": []}

    def flush() -> None:
        w.write("recordings", REC_COLS, batch["recordings"])
        w.write("calls", CALL_COLS, batch["calls"])
        w.write("call_contents", CONTENT_COLS, batch["call_contents"])
        w.write("call_stages", STAGE_COLS, batch["call_stages"])
        w.write("call_objections", OBJ_COLS, batch["call_objections"])
        w.write("call_runs", RUN_COLS, batch["call_runs"])
        w.commit()
        for v in batch.values():
            v.clear()

    for n, (call, stages, objections, rec, run) in enumerate(_rows(calls, templates, manager_ids, rng), 1):
        batch["calls"].append(tuple(call[c] for c in CALL_COLS))
        if call["transcript"] is not None:
            batch["call_contents"].append((call["id"], call["transcript"], call["report"]))
        batch["recordings"].append(tuple(rec[c] for c in REC_COLS))
        batch["call_stages"].extend(stages)
        batch["call_objections"].extend(objections)
        if run is not None:
            batch["call_runs"].append(tuple(run[c] for c in RUN_COLS))
        if call["manager_id"] in head_managers and call["status"] == "done":
            head_calls.append(call["id"])
        if n % BATCH == 0:
            flush()
            if progress:
                print(f"\r  seeded {n}/{calls} calls ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    flush()
    w.finish()
    if progress:
        print(file=sys.stderr)
    stage_ids = sorted({sid for t in templates for sid, _, _ in t.stages})
    objection_types = sorted({typ for t in templates for _, typ, _, _ in t.objections})
    sizes = {"report_kb_mean": round(sum(len(t.report_json.encode()) for t in templates) / len(templates) / 1024, 1),
             "transcript_kb_mean": round(sum(len(t.transcript_json.encode()) for t in templates) / len(templates) / 1024, 1)}
    return Seeded(sorted(head_managers), head_teams, head_calls, stage_ids, objection_types, time.perf_counter() - t0, sizes)


def existing(url: str) -> Seeded | None:
    """What the load needs from a database seeded earlier (``--reuse``)."""
    from sqlalchemy import func, select

    from api.core.db import make_engine, make_sessionmaker
    from api.models import Call, CallObjection, CallStage, CallStatus, Manager, Team, User

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            head = s.scalar(select(User).where(User.username == "head"))
            if head is None:
                return None
            teams = list(s.scalars(select(Team.id).where(Team.head_user_id == head.id).order_by(Team.id)))
            managers = list(s.scalars(select(Manager.id).where(Manager.team_id.in_(teams)).order_by(Manager.id)))
            calls = list(s.scalars(select(Call.id).where(Call.manager_id.in_(managers), Call.status == CallStatus.done)))
            stages = list(s.scalars(select(CallStage.stage_id).distinct().order_by(CallStage.stage_id)))
            objections = list(s.scalars(select(CallObjection.type).distinct().order_by(CallObjection.type)))
            total = s.scalar(select(func.count()).select_from(Call)) or 0
    finally:
        engine.dispose()
    seeded = Seeded(managers, teams, calls, stages, objections)
    seeded.sizes = {"calls": total}
    return seeded


def prepare(db: str, calls: int, *, reuse: bool, work_dir: Path) -> tuple[str, Seeded, bool]:
    """Returns the database URL, what was seeded, and whether it was seeded now."""
    from api.bootstrap import bootstrap
    from api.core.config import get_service_settings

    if db == "sqlite":
        path = work_dir / "sqlite" / "callqa.db"
        url = f"sqlite:///{path}"
        if not reuse:
            shutil.rmtree(path.parent, ignore_errors=True)
    else:
        import psycopg

        url = PG_URL
        with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
            present = c.execute("SELECT 1 FROM pg_database WHERE datname = 'callqa_bench'").fetchone()
            if present and not reuse:
                c.execute("DROP DATABASE callqa_bench WITH (FORCE)")
                present = None
            if not present:
                c.execute("CREATE DATABASE callqa_bench")
    settings = get_service_settings(database_url=url, data_dir=work_dir / db, admin_password=ADMIN_PASSWORD)
    bootstrap(settings)  # Alembic upgrade to head, the bundled scripts, the first admin
    if reuse:
        found = existing(url)
        if found is not None and found.sizes.get("calls") == calls:
            return url, found, False
        return prepare(db, calls, reuse=False, work_dir=work_dir)
    return url, seed(url, calls), True


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, *, port: int, workers: int, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The API as a department runs it on one machine: ``callqa serve`` with ``workers`` API processes
    (each on its own listening socket) and no local worker, without the per-request access log;
    ``env``: more settings."""
    env = {**os.environ, "CALLQA_DATABASE_URL": url, "CALLQA_DATA_DIR": str(data_dir), "CALLQA_ADMIN_PASSWORD": ADMIN_PASSWORD,
           **(env or {})}
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 (the server's lifetime)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "0",
         "--api-processes", str(workers), "--no-access-log"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {data_dir / 'serve.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("the server did not answer /healthz within 120 s")


def spawned_children(parent: int) -> set[int]:
    """The processes ``parent`` started with multiprocessing's spawn (``callqa serve``'s API processes
    or local workers), not its resource tracker; from /proc."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == parent and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            pids.add(int(stat.parent.name))
    return pids


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie nobody has reaped yet has); from /proc."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- the load ----------------------------------------------------------------------------------

KINDS = ("list", "detail", "dashboard", "kpi")
MIX = {"list": 0.40, "detail": 0.35, "dashboard": 0.10, "kpi": 0.15}
"""What a department asks for: lists with filters (the quality controllers' day), call pages, the
head of sales's dashboard (a web page: heatmap, trend, KPI table) and the KPI table of the API."""


def list_query(rng: random.Random, s: Seeded) -> dict[str, Any]:
    """One list request as the UI sends it: a filter or two, a sort, the first page."""
    q: dict[str, Any] = {"limit": 50}
    day = QUARTER_START + timedelta(days=rng.randrange(QUARTER_DAYS - 30))
    kind = rng.choice(["plain", "manager", "team_month", "week_status", "score", "stage", "objection", "manager_stage"])
    if kind == "manager":
        q["manager_id"] = rng.choice(s.head_manager_ids)
    elif kind == "team_month":
        q.update(team_id=rng.choice(s.head_team_ids), date_from=day.isoformat(), date_to=(day + timedelta(days=30)).isoformat())
    elif kind == "week_status":
        q.update(date_from=day.isoformat(), date_to=(day + timedelta(days=7)).isoformat(), status=rng.choice(["done", "done", "failed"]))
    elif kind == "score":
        lo = rng.choice([0, 20, 40, 60])
        q.update(score_min=lo, score_max=lo + 30)
    elif kind == "stage":
        q.update(stage_missed=rng.choice(s.stage_ids), date_from=day.isoformat())
    elif kind == "objection":
        q["objection_unhandled"] = rng.choice(s.objection_types)
    elif kind == "manager_stage":
        q.update(manager_id=rng.choice(s.head_manager_ids), stage_missed=rng.choice(s.stage_ids))
    q["order"] = rng.choices(["-started_at", "started_at", "-score", "score"], [0.7, 0.1, 0.1, 0.1])[0]
    return q


class Requests:
    """The next request of the mix: a path and its kind. A fifth of the lists are a next page, with the
    cursor of a list answered before."""

    def __init__(self, seeded: Seeded, seed_: int):
        self.rng = random.Random(seed_)
        self.seeded = seeded
        self.cursors: list[dict[str, Any]] = []  # queries with the cursor of their next page

    def next(self) -> tuple[str, str]:
        kind = self.rng.choices(KINDS, [MIX.get(k, 0.0) for k in KINDS])[0]
        if kind == "detail":
            return kind, f"/api/v1/calls/{self.rng.choice(self.seeded.head_call_ids)}"
        if kind == "dashboard":
            return kind, "/dashboard?" + urlencode({"period": self.rng.choices(["week", "month", "quarter"], [3, 5, 2])[0]})
        if kind == "kpi":
            month = (datetime.now(UTC).replace(day=1) - timedelta(days=1) * self.rng.choice([0, 0, 20, 50])).strftime("%Y-%m")
            return kind, "/api/v1/kpi?" + urlencode({"period": month})
        if self.cursors and self.rng.random() < 0.2:
            return kind, "/api/v1/calls?" + urlencode(self.cursors.pop(self.rng.randrange(len(self.cursors))))
        return kind, "/api/v1/calls?" + urlencode(list_query(self.rng, self.seeded))

    def answered(self, path: str, body: bytes) -> None:
        if path.startswith("/api/v1/calls?") and len(self.cursors) < 1000:
            cursor = json.loads(body).get("next_cursor")
            if cursor:
                query = dict(parse_qsl(path.split("?", 1)[1]))
                self.cursors.append({**query, "cursor": cursor})


def arrivals(rate: float, seconds: float, *, bursts: list[float], burst_size: int, rng: random.Random) -> list[float]:
    """When each request is sent, in seconds from the start: a Poisson stream at ``rate`` a second,
    plus ``burst_size`` more spread over the second after each moment in ``bursts``."""
    times, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            break
        times.append(t)
    for b in bursts:
        times += [b + rng.random() for _ in range(burst_size)]
    return sorted(times)


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, seconds: float, ok: bool) -> None:
        self.latency[kind].append(seconds)
        if not ok:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self, wall: float) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": sum(len(v) for v in self.latency.values()), "errors": self.errors,
                               "requests_per_second": round(sum(len(v) for v in self.latency.values()) / wall, 1)}
        for kind, lat in self.latency.items():
            out[kind] = {"requests": len(lat), **{f"p{p}_ms": round(_pct(lat, p) * 1000, 1) for p in (50, 95, 99)}}
        return out


def _pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def _client(port: int, token: str, connections: int) -> Any:
    import httpx

    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                             cookies={SESSION_COOKIE: token}, timeout=60,
                             limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


async def _send(client: Any, requests: Requests, tally: Tally, kind: str, path: str, t0: float) -> None:
    """One request; its latency counts from ``t0``, when it was due (so waiting for a connection counts)."""
    try:
        r = await client.get(path)
        ok = r.status_code == 200
        if ok:
            requests.answered(path, r.content)
    except Exception:  # noqa: BLE001 (a refused or broken connection is an error of the run, counted)
        ok = False
    tally.add(kind, time.perf_counter() - t0, ok)


async def open_loop(port: int, token: str, seeded: Seeded, *, rate: float, seconds: float, bursts: list[float],
                    burst_size: int, seed_: int = 1) -> dict[str, Any]:
    """Requests sent when they are due, whatever the answers do (a department does not wait for the
    server before it clicks); each one's latency from when it was due."""
    requests, tally = Requests(seeded, seed_), Tally()
    schedule = arrivals(rate, seconds, bursts=bursts, burst_size=burst_size, rng=random.Random(seed_))
    async with _client(port, token, connections=200) as client:
        start = time.perf_counter()
        pending = []
        for due in schedule:
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, path = requests.next()
            pending.append(asyncio.create_task(_send(client, requests, tally, kind, path, start + due)))
        await asyncio.gather(*pending)
        wall = time.perf_counter() - start
    return {"rate": rate, "seconds": seconds, "bursts": bursts, "burst_size": burst_size, "wall_seconds": round(wall, 1),
            **tally.summary(wall)}


async def closed_loop(port: int, token: str, seeded: Seeded, *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` sending their next request as soon as the last is answered: the most the server
    answers a second (for the record; nobody uses a service like this)."""
    tally = Tally()
    async with _client(port, token, connections=clients) as client:
        start = time.perf_counter()

        async def one(i: int) -> None:
            requests = Requests(seeded, 100 + i)
            while time.perf_counter() - start < seconds:
                kind, path = requests.next()
                await _send(client, requests, tally, kind, path, time.perf_counter())

        await asyncio.gather(*(one(i) for i in range(clients)))
        wall = time.perf_counter() - start
    return {"clients": clients, **tally.summary(wall)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the API processes), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            total += _proc_cpu(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def _proc_cpu(p: int | str) -> float:
    fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sign_in(port: int) -> str:
    import httpx

    r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/token", data={"username": "head", "password": HEAD_PASSWORD}, timeout=30)
    r.raise_for_status()
    return str(r.json()["access_token"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=20, help="requests a second, open loop (Poisson arrivals)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst-every", type=float, default=30, help="a burst every this many seconds (first at half of it)")
    ap.add_argument("--burst-size", type=int, default=100, help="requests in a burst's one second, beside the steady rate")
    ap.add_argument("--closed-loop-clients", type=int, default=8, help="the closed-loop maximum for the record (0: skip)")
    ap.add_argument("--closed-loop-seconds", type=float, default=20)
    ap.add_argument("--server-workers", type=int, default=2, help="API processes, callqa serve --api-processes (one per core)")
    ap.add_argument("--warmup-seconds", type=float, default=10, help="load at the steady rate before measuring")
    ap.add_argument("--mix", type=str, default=None, help="shares of the kinds instead of MIX, e.g. list=0.5,detail=0.5")
    ap.add_argument("--reuse", action="store_true", help="keep a database that already has --calls calls")
    ap.add_argument("--work-dir", type=Path, default=ROOT / "build" / "bench_api")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.mix:
        MIX.clear()
        MIX.update({k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))})

    args.work_dir.mkdir(parents=True, exist_ok=True)
    url, seeded, fresh = prepare(args.db, args.calls, reuse=args.reuse, work_dir=args.work_dir)
    if not fresh:
        print("  reusing the seeded database", file=sys.stderr)
    data_dir = args.work_dir / args.db
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(url, port=port, workers=args.server_workers, data_dir=data_dir)
    bursts = [args.burst_every / 2 + i * args.burst_every for i in range(int(args.seconds // args.burst_every))]
    try:
        token = sign_in(port)
        if args.warmup_seconds > 0:  # every API process: imports, first queries, the database's caches
            asyncio.run(open_loop(port, token, seeded, rate=args.rate, seconds=args.warmup_seconds, bursts=[], burst_size=0,
                                  seed_=99))
        load_before = os.getloadavg()
        server_cpu = cpu_seconds(server.pid)
        run = asyncio.run(open_loop(port, token, seeded, rate=args.rate, seconds=args.seconds, bursts=bursts,
                                    burst_size=args.burst_size))
        server_cpu = cpu_seconds(server.pid) - server_cpu
        load_after = os.getloadavg()
        closed = asyncio.run(closed_loop(port, token, seeded, clients=args.closed_loop_clients,
                                         seconds=args.closed_loop_seconds)) if args.closed_loop_clients else None
    finally:
        stop_server(server)
    out = {
        "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "db": args.db, "calls": args.calls,
        "server_workers": args.server_workers, "mix": dict(MIX), "seed_seconds": round(seeded.seconds, 1) if fresh else None,
        "data": seeded.sizes, "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after], "open_loop": run,
        "server_cpu_cores_used": round(server_cpu / run["wall_seconds"], 2), "closed_loop": closed,
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"{out['machine']}; {args.db}, {args.calls} calls, {args.server_workers} API processes; open loop "
              f"{args.rate:g}/s for {args.seconds:g} s with bursts of {args.burst_size} at {bursts} s; "
              f"load average {out['load_average_before']} -> {out['load_average_after']}")
        for kind in KINDS:
            r = run[kind]
            if not r["requests"]:
                continue
            print(f"  {kind:9} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                  f"({r['requests']} requests)")
        print(f"  {run['requests']} requests, errors {run['errors'] or 'none'}; the server used "
              f"{out['server_cpu_cores_used']} cores")
        if closed:
            print(f"  closed loop, {closed['clients']} clients: {closed['requests_per_second']} requests a second "
                  f"(errors {closed['errors'] or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
