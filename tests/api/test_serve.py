"""`callqa serve` on a fresh data folder: migrates, creates the admin, queues a folder, serves the
API over real HTTP and processes the calls with its own local worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from benchmarks.api_latency import connections_by_process, spawned_children

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
