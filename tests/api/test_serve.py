"""`callqa serve` on a fresh data folder: migrates, creates the admin, queues a folder, serves the
API over real HTTP and processes the calls with its own local worker."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]


def test_serve_runs_api_and_worker_on_a_fresh_machine(tmp_path, callqa_serve):
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "clip_ru.wav", calls / "first call.wav")
    (calls / "notes.txt").write_text("not a recording")
    with callqa_serve("--import", str(calls), env={"CALLQA_POLL_SECONDS": "0.2"}) as served:
        base, log = served.base, served.log
        assert httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "wrong"}).status_code == 401
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "first-admin-pass"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        page = _wait(lambda: (p := httpx.get(f"{base}/api/v1/calls", headers=headers).json())["total"] == 1
                     and p["items"][0]["status"] == "done" and p, 120, log)
        call = httpx.get(f"{base}/api/v1/calls/{page['items'][0]['id']}", headers=headers).json()
        assert {s["id"]: s["status"] for s in call["stages"]}["greeting"] == "passed"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "callqa"


def _worker_pids(parent: int) -> set[int]:
    """The local worker processes `callqa serve` started (spawned children, not the resource tracker)."""
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


def _wait(predicate, timeout: float, log: Path):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_serve_restarts_a_killed_worker_and_the_new_one_takes_the_next_call(tmp_path, callqa_serve):
    data = tmp_path / "data"
    with callqa_serve(env={"CALLQA_POLL_SECONDS": "0.2", "CALLQA_WORKERS": "1"}) as served:
        proc, base, log = served.proc, served.base, served.log
        (first,) = _wait(lambda: _worker_pids(proc.pid), 30, log)
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
        (second,) = _wait(lambda: (pids := _worker_pids(proc.pid)) and first not in pids and pids, 30, log)
        assert second != first

        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "first-admin-pass"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        clip = (ROOT / "tests" / "data" / "clip_ru.wav").read_bytes()
        r = httpx.post(f"{base}/api/v1/calls", files=[("files", ("after the crash.wav", clip, "audio/wav"))], headers=headers)
        assert r.status_code == 201, r.text
        call_id = r.json()["items"][0]["call_id"]
        _wait(lambda: httpx.get(f"{base}/api/v1/calls/{call_id}", headers=headers).json()["status"] == "done", 180, log)
        engine = create_engine(f"sqlite:///{data / 'callqa.db'}")
        with engine.connect() as c:
            workers = c.execute(text("select worker from call_runs where call_id = :id"), {"id": call_id}).scalars().all()
        engine.dispose()
        assert [w.rsplit(":", 1)[1] for w in workers] == [str(second)]  # the new worker took it
        assert f"exited with -{signal.SIGKILL.value}; starting it again" in log.read_text()
    assert not _worker_pids(proc.pid)
