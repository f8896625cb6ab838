"""The distributed executor against real brokers (Redis, RabbitMQ) and PostgreSQL: a call uploaded
through the API is processed by a Celery worker process, and still exactly once when that worker
is killed with -9 in the middle of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.models import Call, CallRun, CallStatus
from api.processing.celery_app import QUEUE, TASK, CeleryExecutor
from tests.helpers import wait_for

pytestmark = [pytest.mark.model, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]
LONG_CALL = ROOT / "sample_calls" / "audio" / "ru_21_printing_have_supplier_handled.mp3"
BROKERS = {
    "redis": os.environ.get("CALLQA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "rabbitmq": os.environ.get("CALLQA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}


def _celery_worker(settings, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "CALLQA_EXECUTOR": "celery",
        "CALLQA_BROKER_URL": settings.broker_url,
        "CALLQA_DATABASE_URL": settings.db_url,
        "CALLQA_DATA_DIR": str(settings.data_dir),
        "CALLQA_LEASE_SECONDS": str(settings.lease_seconds),
        "CALLQA_POLL_SECONDS": "0.2",
        "CALLQA_ADMIN_PASSWORD": "unused-cobalt-lantern",
    }
    return subprocess.Popen([sys.executable, "-m", "api", "worker", "--processes", "1"], env=env, cwd=ROOT,
                            start_new_session=True, stdout=log.open("a"), stderr=subprocess.STDOUT)


def _idle(executor: CeleryExecutor, log: Path) -> bool:
    """The worker has finished every task it received, and no message waits for it at the broker."""
    said = re.findall(rf"Task {re.escape(TASK)}\[[^\]]+\] (\w+)", log.read_text())  # received, succeeded, raised...
    if said.count("received") * 2 != len(said):
        return False
    with executor.app.connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue=QUEUE, passive=True).message_count == 0
        except conn.channel_errors:  # Redis keeps no empty queue: nothing waits
            return True


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_celery_worker_processes_uploads_exactly_once_through_a_kill_9(broker, db, settings, people, tmp_path):
    settings.executor = "celery"
    settings.broker_url = BROKERS[broker]
    settings.lease_seconds = 3
    executor = CeleryExecutor(settings, db=db)
    executor.app.control.purge()  # messages left by an earlier run
    with TestClient(create_app(settings, db=db, executor=executor)) as client:
        r = client.post("/api/v1/calls", headers=people.h("admin"),
                        files=[("files", (LONG_CALL.name, LONG_CALL.read_bytes(), "audio/mpeg"))])
        assert r.status_code == 201, r.text
        call_id = r.json()["items"][0]["call_id"]

        def status() -> CallStatus:
            with db.sessions() as s:
                return s.get(Call, call_id).status

        def lease() -> datetime | None:
            with db.sessions() as s:
                return s.get(Call, call_id).lease_expires_at

        log = tmp_path / "first-worker.log"
        first = _celery_worker(settings, log)
        try:
            wait_for(lambda: status() == CallStatus.transcribing, 90, "the Celery worker to claim the call", log=log)
            # the worker renews its lease while it works on the call: once it has, it is in the middle of it
            claimed_until = lease()
            wait_for(lambda: (until := lease()) is None or until > claimed_until, 60, "the worker to renew its lease", log=log)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        assert status() in (CallStatus.transcribing, CallStatus.scoring)

        log = tmp_path / "second-worker.log"
        second = _celery_worker(settings, log)
        try:
            wait_for(lambda: status() == CallStatus.done, 180, "a second Celery worker to finish the call", log=log)
            # the messages sent for the call meanwhile (redelivered, swept) are handled too: none may process it again
            wait_for(lambda: _idle(executor, log), 60, "the Celery worker to handle every message it was sent", log=log)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(60)

        detail = client.get(f"/api/v1/calls/{call_id}", headers=people.h("quality_controller")).json()
    assert detail["status"] == "done" and detail["score"] is not None
    with db.sessions() as s:
        outcomes = s.scalars(select(CallRun.outcome).where(CallRun.call_id == call_id).order_by(CallRun.id)).all()
    assert outcomes == ["lost", "done"]
