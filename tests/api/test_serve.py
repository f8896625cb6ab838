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
