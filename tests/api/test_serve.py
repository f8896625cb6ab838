"""`callqa serve` on a fresh data folder: migrates, creates the admin, queues a folder, serves the
API over real HTTP and processes the calls with its own local worker; killed with ``kill -9``, it
leaves nothing running and its next start cleans the store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.core.storage import RecordingStore
from benchmarks.api_latency import connections_by_process, running, spawned_children

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


@contextmanager
def _connections(port: int, n: int) -> Iterator[None]:
    """``n`` keep-alive connections opened one right after another, as a burst of clients does, each
    answered once (so every one has been accepted by a process); closed on leaving."""
    with ExitStack() as stack:
        conns = [stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=60)) for _ in range(n)]
        for c in conns:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for c in conns:
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = c.recv(65536)
                assert chunk, "the server closed the connection without answering"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        yield


def _two(pids: set[int]) -> set[int] | None:
    return pids if len(pids) == 2 else None


def test_api_processes_share_a_burst_of_connections_and_one_killed_is_replaced(callqa_serve):
    """With several API processes, a burst of new keep-alive connections is shared between them
    (a process holding most of them would keep its clients waiting while the other idles), and a
    process killed is replaced without a connection refused meanwhile."""
    with callqa_serve("--workers", "0", "--api-processes", "2", "--no-access-log") as served:
        port = int(served.base.rsplit(":", 1)[1])
        pids = _wait(lambda: _two(spawned_children(served.proc.pid)), 30, served.log)
        for _ in range(3):
            with _connections(port, 100):
                held = connections_by_process(port, pids)
            assert sum(held.values()) == 100 and all(30 <= n <= 70 for n in held.values()), held

        killed = min(pids)
        os.kill(killed, signal.SIGKILL)
        with _connections(port, 40):  # those the kernel gives the dead process's socket wait for its successor
            pass
        survivors = _wait(lambda: _two(spawned_children(served.proc.pid)), 30, served.log)
        assert killed not in survivors
        assert f"API process {killed} exited with -{signal.SIGKILL.value}; starting another" in served.log.read_text()
        with _connections(port, 100):
            assert all(n > 0 for n in connections_by_process(port, survivors).values())


def test_serve_killed_takes_its_api_and_worker_processes_with_it(callqa_serve):
    """After ``kill -9`` of ``callqa serve`` nothing of it runs on: no worker claims calls and no API
    process holds the port (a new start would share it with them)."""
    with callqa_serve("--api-processes", "2", "--workers", "1", env={"CALLQA_POLL_SECONDS": "0.2"}) as served:
        children = _wait(lambda: pids if len(pids := spawned_children(served.proc.pid)) == 3 else None, 60, served.log)
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
