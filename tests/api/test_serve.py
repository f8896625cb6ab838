"""`callqa serve` on a fresh data folder: migrates, creates the admin, queues a folder, serves the
API over real HTTP and processes the calls with its own local worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_api_and_worker_on_a_fresh_machine(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "clip_ru.wav", calls / "first call.wav")
    (calls / "notes.txt").write_text("not a recording")
    port = _free_port()
    env = {**os.environ, "CALLQA_DATA_DIR": str(tmp_path / "data"), "CALLQA_ADMIN_PASSWORD": "first-admin-pass",
           "CALLQA_POLL_SECONDS": "0.2"}
    env.pop("CALLQA_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port), "--import", str(calls)],
                            env=env, cwd=ROOT, start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "wrong"}).status_code == 401
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "first-admin-pass"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        deadline = time.monotonic() + 120
        while True:
            page = httpx.get(f"{base}/api/v1/calls", headers=headers).json()
            if page["total"] == 1 and page["items"][0]["status"] == "done":
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        call = httpx.get(f"{base}/api/v1/calls/{page['items'][0]['id']}", headers=headers).json()
        assert {s["id"]: s["status"] for s in call["stages"]}["greeting"] == "passed"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "callqa"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]


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


def test_serve_restarts_a_killed_worker_and_the_new_one_takes_the_next_call(tmp_path):
    port = _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "CALLQA_DATA_DIR": str(data), "CALLQA_ADMIN_PASSWORD": "first-admin-pass",
           "CALLQA_POLL_SECONDS": "0.2", "CALLQA_WORKERS": "1"}
    env.pop("CALLQA_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        _wait(healthy, 60, log)
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
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert not _worker_pids(proc.pid)
