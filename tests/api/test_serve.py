"""`callqa serve` on a fresh data folder: migrates, creates the admin, queues a folder, serves the
API over real HTTP and processes the calls with its own local worker; killed with ``kill -9``, it
leaves nothing running and its next start cleans the store."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.core.storage import RecordingStore
from benchmarks.api_latency import running, spawned_children

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
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "cobalt-harbor-lantern"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        page = _wait(lambda: (p := httpx.get(f"{base}/api/v1/calls", headers=headers).json())["total"] == 1
                     and p["items"][0]["status"] == "done" and p, 120, log)
        call = httpx.get(f"{base}/api/v1/calls/{page['items'][0]['id']}", headers=headers).json()
        assert {s["id"]: s["status"] for s in call["stages"]}["greeting"] == "passed"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "callqa"


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
        (first,) = _wait(lambda: spawned_children(proc.pid), 30, log)
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
        (second,) = _wait(lambda: (pids := spawned_children(proc.pid)) and first not in pids and pids, 30, log)
        assert second != first

        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "cobalt-harbor-lantern"}).json()
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
    assert not spawned_children(proc.pid)


def test_serve_killed_takes_its_worker_processes_with_it(callqa_serve):
    """After ``kill -9`` of ``callqa serve`` nothing of it runs on: no worker claims calls and nothing
    holds the port. (With several API processes, uvicorn's workers are left to the service manager:
    systemd and Docker stop a service's whole process group; README, "Service".)"""
    with callqa_serve("--workers", "2", env={"CALLQA_POLL_SECONDS": "0.2"}) as served:
        children = _wait(lambda: pids if len(pids := spawned_children(served.proc.pid)) == 2 else None, 60, served.log)
        os.kill(served.proc.pid, signal.SIGKILL)
        served.killed = True
        served.proc.wait()
        _wait(lambda: not any(running(pid) for pid in children), 60, served.log)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.base}/healthz")


class _SlowRecording(BaseHTTPRequestHandler):
    """A large recording whose first 2 MB come at once and the rest only when the test lets them
    (``server.go``), as from a slow PBX."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(8 << 20))
        self.end_headers()
        try:
            self.wfile.write(b"\1" * (2 << 20))
            self.wfile.flush()
            if self.server.go.wait(120):  # type: ignore[attr-defined]
                self.wfile.write(b"\1" * (6 << 20))
        except OSError:  # the downloader was killed
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_pbx() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowRecording)
    server.go = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.go.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def _temporaries(recordings: Path) -> list[Path]:
    """The store's temporary files that have bytes in them."""
    found = []
    for p in recordings.glob(".upload-*"):
        try:
            if p.stat().st_size > 0:
                found.append(p)
        except FileNotFoundError:
            pass
    return found


def test_a_server_killed_mid_download_leaves_a_temporary_file_the_next_start_removes(tmp_path, callqa_serve, slow_pbx):
    """``kill -9`` while a recording streams in leaves its temporary file in the store; the next start
    removes it, but not the temporary file of an upload another process is still writing.

    The recording comes by the webhook: the worker writes the download into the store as it arrives,
    so the test can kill it halfway. (An upload to the API is spooled by the server first and reaches
    the store only as a copy at the end, a window too short to aim at.)"""
    recordings = tmp_path / "data" / "recordings"
    env = {"CALLQA_POLL_SECONDS": "0.2", "CALLQA_WEBHOOK_SECRET": "pbx-secret",
           "CALLQA_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}  # the PBX here is on loopback
    with callqa_serve(env=env) as served:
        (worker,) = _wait(lambda: spawned_children(served.proc.pid), 30, served.log)
        r = httpx.post(f"{served.base}/api/v1/webhooks/pbx", json={"recording_url": f"{slow_pbx}/long.wav"},
                       headers={"X-Callqa-Secret": "pbx-secret"})
        assert r.status_code == 202, r.text
        (orphan,) = _wait(lambda: _temporaries(recordings), 60, served.log)
        os.killpg(served.proc.pid, signal.SIGKILL)  # every process of it, as a power cut or the OOM killer would
        served.killed = True
        served.proc.wait()
        _wait(lambda: not running(worker), 30, served.log)
    assert orphan.exists()

    # another process, as another machine on the same store would be, is in the middle of an upload
    store = RecordingStore(recordings, max_bytes=16 << 20)
    go, stored = threading.Event(), []

    def chunks() -> Iterator[bytes]:
        yield b"the first part of a live upload " * 4096  # past the file object's buffer, so on disk
        go.wait(120)
        yield b"and the rest"

    writer = threading.Thread(target=lambda: stored.append(_receive(store, chunks())))
    writer.start()
    try:
        (live,) = _wait(lambda: [p for p in _temporaries(recordings) if p != orphan], 30, served.log)
        with callqa_serve(env=env):  # the API and a worker start
            assert not orphan.exists(), "the temporary file of the killed download is still in the store"
            assert live.exists(), "the temporary file of a live upload was removed"
    finally:
        go.set()
        writer.join()
    assert stored and stored[0].path.read_bytes() == b"the first part of a live upload " * 4096 + b"and the rest"
    assert not list(recordings.glob(".upload-*"))


def _receive(store: RecordingStore, chunks: Iterator[bytes]):
    with store.receive(chunks) as stored:
        return stored
