"""The queue never loses a call and never reports one twice: leases, fencing, kill -9, retries.

These tests run real worker processes (``callqa worker``) with the real model against both
databases, and kill them the way an operating system does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.calls.schemas import CallMetadataCreate
from api.calls.service import ingest_stream
from api.models import Call, CallRun, CallStage, CallStatus
from api.processing import queue
from benchmarks.api_latency import running, spawned_children
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
LONG_CALL = ROOT / "sample_calls" / "audio" / "ru_21_printing_have_supplier_handled.mp3"
CLIP = ROOT / "tests" / "data" / "clip_ru.wav"


def _ingest(db, settings, path: Path, **meta) -> int:
    from api.core.storage import RecordingStore

    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    with db.sessions() as s, path.open("rb") as f:
        return ingest_stream(s, store, stream=f, filename=path.name, content_type=None, meta=CallMetadataCreate(**meta)).call.id


def _worker(settings, log: Path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "CALLQA_DATABASE_URL": settings.db_url,
        "CALLQA_DATA_DIR": str(settings.data_dir),
        "CALLQA_LEASE_SECONDS": str(settings.lease_seconds),
        "CALLQA_POLL_SECONDS": "0.2",
        "CALLQA_RETRY_BACKOFF_SECONDS": "0",
        "CALLQA_ADMIN_PASSWORD": "unused-cobalt-lantern",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api", "worker", *args], env=env, cwd=ROOT, start_new_session=True,
        stdout=log.open("a"), stderr=subprocess.STDOUT,
    )


def _status(db, call_id: int) -> CallStatus:
    with db.sessions() as s:
        return s.get(Call, call_id).status


def _lease(db, call_id: int) -> datetime | None:
    """When the call's lease runs out (None: nobody holds it)."""
    with db.sessions() as s:
        return s.get(Call, call_id).lease_expires_at


@pytest.mark.model
def test_kill_9_mid_call_and_the_call_still_completes_exactly_once(db, settings, tmp_path):
    settings.lease_seconds = 3
    call_id = _ingest(db, settings, LONG_CALL)
    log = tmp_path / "worker.log"
    first = _worker(settings, log, "--processes", "1")
    try:
        wait_for(lambda: _status(db, call_id) == CallStatus.transcribing, 60, "the first worker to claim the call", log=log)
        # the worker renews its lease while it works on the call: once it has, it is in the middle of it
        claimed_until = _lease(db, call_id)
        wait_for(lambda: (until := _lease(db, call_id)) is None or until > claimed_until, 60,
                 "the first worker to renew its lease", log=log)
        assert _status(db, call_id) in (CallStatus.transcribing, CallStatus.scoring)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    second = _worker(settings, log, "--processes", "1")
    try:
        wait_for(lambda: _status(db, call_id) == CallStatus.done, 180, "the second worker to finish the call", log=log)
    finally:
        second.send_signal(signal.SIGTERM)  # a graceful stop
        second.wait(timeout=60)
    assert second.returncode == 0, log.read_text()

    with db.sessions() as s:
        call = s.get(Call, call_id)
        report = call.report
        runs = s.scalars(select(CallRun).where(CallRun.call_id == call_id).order_by(CallRun.id)).all()
        stage_rows = s.scalar(select(func.count()).select_from(CallStage).where(CallStage.call_id == call_id))
    assert [r.outcome for r in runs] == ["lost", "done"]
    assert call.attempts == 2 and report is not None
    assert stage_rows == len(report["stages"])  # written once, not twice
    assert {s["id"]: s["status"] for s in report["stages"]}["greeting"] == "passed"


@pytest.mark.slow
def test_worker_processes_stop_when_their_parent_is_killed_and_claim_nothing_after(db, settings, tmp_path):
    """``kill -9`` of ``callqa worker`` takes its worker processes with it: orphans would go on claiming
    calls beside the worker started again in its place."""
    log = tmp_path / "worker.log"
    parent = _worker(settings, log, "--processes", "2")
    try:
        children = wait_for(lambda: pids if len(pids := spawned_children(parent.pid)) == 2 else None, 60,
                            "two worker processes", log=log)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        call_id = _ingest(db, settings, CLIP)  # due from now on
        wait_for(lambda: not any(running(pid) for pid in children), 60, "the orphaned worker processes to exit", log=log)
        with db.sessions() as s:
            assert s.get(Call, call_id).status == CallStatus.queued
            assert not s.scalars(select(CallRun).where(CallRun.call_id == call_id)).all()
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # orphans stay in the parent's process group


def test_a_lease_kept_renewed_keeps_the_call_and_one_that_runs_out_passes_it_on(db, settings, clock):
    call_id = _ingest(db, settings, CLIP)
    first = queue.claim(db.sessions, worker="first", lease_seconds=30, now=clock())
    assert first is not None and first.call_id == call_id
    clock.advance(20)
    assert queue.claim(db.sessions, worker="second", lease_seconds=30, now=clock()) is None  # held: nobody else takes it
    assert queue.renew(db.sessions, first, lease_seconds=30, now=clock())  # the worker is alive: 30 s more from now
    clock.advance(20)  # past the first lease, inside the renewed one
    assert queue.claim(db.sessions, worker="second", lease_seconds=30, now=clock()) is None
    clock.advance(11)  # 31 s without a renewal: the worker is taken for dead
    second = queue.claim(db.sessions, worker="second", lease_seconds=30, now=clock())
    assert second is not None and second.call_id == call_id and second.token > first.token
    with db.sessions() as s:
        call = s.get(Call, call_id)
        assert (call.status, call.lease_owner, call.attempts) == (CallStatus.transcribing, "second", 2)


def test_a_worker_that_lost_its_lease_cannot_write(db, settings, clock):
    call_id = _ingest(db, settings, CLIP)
    slow = queue.claim(db.sessions, worker="slow", lease_seconds=30, now=clock())
    clock.advance(31)  # it went quiet for longer than its lease
    fast = queue.claim(db.sessions, worker="fast", lease_seconds=30, now=clock())
    assert slow is not None and fast is not None and fast.call_id == slow.call_id == call_id
    assert fast.token > slow.token

    assert not queue.renew(db.sessions, slow, lease_seconds=30, now=clock())
    with db.sessions() as s:
        assert not queue.finish(s, slow, report={"by": "slow"}, score=1.0)
        s.rollback()
    assert queue.fail(db.sessions, slow, code="x", message="late", permanent=True, max_attempts=3, backoff_seconds=0) is None
    with db.sessions() as s:
        assert queue.finish(s, fast, report={"by": "fast"}, score=2.0)
        s.commit()
        call = s.get(Call, call_id)
        assert (call.status, call.report, call.score) == (CallStatus.done, {"by": "fast"}, 2.0)
        outcomes = s.scalars(select(CallRun.outcome).where(CallRun.call_id == call_id).order_by(CallRun.id)).all()
    assert outcomes == ["lost", "done"]
    assert queue.claim(db.sessions, worker="late", lease_seconds=30, now=clock.advance(31)) is None  # done is done


def test_concurrent_claims_never_share_a_call(db, settings):
    ids = {_ingest(db, settings, p) for p in (ROOT / "tests" / "data").glob("clip_ru*.*") if p.suffix not in (".json", ".yaml")}
    claimed: list[int] = []
    lock = threading.Lock()

    def grab(n: int) -> None:
        while True:
            c = queue.claim(db.sessions, worker=f"w{n}", lease_seconds=60)
            if c is None:
                return
            with lock:
                claimed.append(c.call_id)

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_a_call_that_kills_its_workers_ends_failed_with_a_reason(db, settings, clock):
    settings.max_attempts = 2
    call_id = _ingest(db, settings, CLIP)
    for _ in range(2):  # two workers die in the middle of it
        assert queue.claim(db.sessions, worker="doomed", lease_seconds=30, now=clock()) is not None
        # while its lease runs, a worker is taken to be working on the call, the last attempt too
        assert queue.release_dead(db.sessions, max_attempts=settings.max_attempts, now=clock()) == 0
        clock.advance(31)
    assert queue.release_dead(db.sessions, max_attempts=settings.max_attempts, now=clock()) == 1
    with db.sessions() as s:
        call = s.get(Call, call_id)
        assert call.status == CallStatus.failed and call.error_code == "worker_lost"
        assert "stopped in the middle" in call.error_message
        runs = s.scalars(select(CallRun).where(CallRun.call_id == call_id).order_by(CallRun.id)).all()
        assert [r.outcome for r in runs] == ["lost", "lost"]  # no run is left looking as if it still ran
        assert all(r.finished_at is not None for r in runs) and "worker_lost" in runs[-1].error
    assert queue.claim(db.sessions, worker="next", lease_seconds=30, now=clock()) is None
    assert queue.release_dead(db.sessions, max_attempts=settings.max_attempts, now=clock()) == 0


@pytest.mark.parametrize(("processes", "set_by_user", "expected"), [
    (1, None, 0),  # one process: CTranslate2 takes one thread a core
    (2, None, max(1, (os.cpu_count() or 1) // 2)),  # two share the cores instead of fighting over them
    (2, "3", 3),  # CALLQA_CPU_THREADS is the user's word
], ids=["one-process", "two-processes", "set-by-user"])
def test_worker_processes_share_the_cores_unless_the_threads_are_set(settings, monkeypatch, processes, set_by_user, expected):
    from api.processing.pipeline import CallProcessor, threads_each

    if set_by_user is None:
        monkeypatch.delenv("CALLQA_CPU_THREADS", raising=False)
    else:
        monkeypatch.setenv("CALLQA_CPU_THREADS", set_by_user)
    processor = CallProcessor(settings, cpu_threads=threads_each(processes))
    assert processor.analyzer.transcriber.settings.cpu_threads == expected
    processor.db.dispose()
