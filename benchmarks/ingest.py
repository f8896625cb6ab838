"""Ingestion throughput of the service with N local worker processes, on this machine.

    python -m benchmarks.ingest [--calls 8] [--workers 1 2] [--cpu-threads auto]

For each N: a fresh SQLite database, the same ``--calls`` rendered sample calls imported
(``callqa import``), then ``callqa worker --drain --processes N`` timed until every call is done.
Reports calls per hour and audio hours per hour over the whole run (starting the processes and
loading the model in each included), and over the processing window alone (the first claim to the
last finished call, from the run history), with the speed-up over the first N. ``--cpu-threads
auto`` leaves the CTranslate2 threads to the worker, which shares the cores out (cores/N threads
each, all cores for one process) so that N workers do not fight over them. The load average is
recorded beside each N: other jobs on the machine slow it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

from benchmarks.common import ROOT, load_dialogues, machine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cpu-threads", default="auto", help="'auto' (cores / N) or a number per worker (0: one per core)")
    ap.add_argument("--audio-dir", type=Path, default=ROOT / "build" / "sample_audio")
    ap.add_argument("--work-dir", type=Path, default=ROOT / "build" / "bench_ingest")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    dialogues = [d for d in load_dialogues() if d["language"] == "ru"][: args.calls]
    files = [args.audio_dir / f"{d['id']}.wav" for d in dialogues]
    missing = [d["id"] for d, f in zip(dialogues, files, strict=True) if not f.is_file()]
    if missing:
        subprocess.run([sys.executable, "-m", "sample_calls.render", *missing, "--out", str(args.audio_dir)], check=True)
    calls_dir = args.work_dir / "calls"
    shutil.rmtree(args.work_dir, ignore_errors=True)
    calls_dir.mkdir(parents=True)
    for f in files:
        shutil.copy(f, calls_dir / f.name)

    from api.models import Call, CallRun, CallStatus
    from api.processing.pipeline import threads_each

    cores = os.cpu_count() or 1
    results = []
    for n in args.workers:
        data = args.work_dir / f"data-{n}"
        env = {**os.environ, "CALLQA_DATA_DIR": str(data), "CALLQA_ADMIN_PASSWORD": "orange-harbor-lantern",
               "CALLQA_POLL_SECONDS": "0.2"}
        env.pop("CALLQA_DATABASE_URL", None)
        if args.cpu_threads == "auto":  # what the worker does by itself: the cores shared out
            env.pop("CALLQA_CPU_THREADS", None)
            threads = threads_each(n) or cores
        else:
            threads = int(args.cpu_threads) or cores
            env["CALLQA_CPU_THREADS"] = str(threads)
        subprocess.run([sys.executable, "-m", "api", "import", str(calls_dir), "--language", "ru"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "api", "worker", "--drain", "--processes", str(n)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        engine = create_engine(f"sqlite:///{data / 'callqa.db'}")
        with engine.connect() as c:
            done = c.scalar(select(func.count()).select_from(Call).where(Call.status == CallStatus.done)) or 0
            audio = c.scalar(select(func.sum(Call.duration))) or 0.0
            first, last = c.execute(select(func.min(CallRun.started_at), func.max(CallRun.finished_at))).one()
        engine.dispose()
        window = (last - first).total_seconds() if first is not None and last is not None else wall
        results.append({
            "workers": n, "cpu_threads_each": threads, "calls": len(files), "done": done, "wall_seconds": round(wall, 1),
            "calls_per_hour": round(done * 3600 / wall), "audio_hours_per_hour": round(audio / wall, 1),
            "processing_seconds": round(window, 1), "calls_per_hour_processing": round(done * 3600 / window) if window else None,
            "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        })
    for r in results:
        base = results[0]
        r["speedup"] = round(r["calls_per_hour_processing"] / base["calls_per_hour_processing"], 2) \
            if r["calls_per_hour_processing"] and base["calls_per_hour_processing"] else None
    out = {"machine": machine(), "model": os.environ.get("CALLQA_MODEL", "embedded"), "results": results,
           "note": "wall time includes starting the worker processes and loading the model in each"}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(out["machine"])
        for r in results:
            print("  ".join(f"{k} {v}" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
