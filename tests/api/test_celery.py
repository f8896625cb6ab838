"""The distributed executor against real brokers (Redis, RabbitMQ) and PostgreSQL: a call uploaded
through the API is processed by a Celery worker process, and still exactly once when that worker
is killed with -9 in the middle of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.models import Call, CallRun, CallStatus
from api.processing.celery_app import CeleryExecutor

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


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_celery_worker_processes_uploads_exactly_once_through_a_kill_9(broker, db, settings, people, tmp_path):
    settings.executor = "celery"
    settings.broker_url = BROKERS[broker]
    settings.lease_seconds = 3
    executor = CeleryExecutor(settings, db=db)
    executor.app.control.purge()  # messages left by an earlier run
    log = tmp_path / "celery.log"
    with TestClient(create_app(settings, db=db, executor=executor)) as client:
        r = client.post("/api/v1/calls", headers=people.h("admin"),
                        files=[("files", (LONG_CALL.name, LONG_CALL.read_bytes(), "audio/mpeg"))])
        assert r.status_code == 201, r.text
        call_id = r.json()["items"][0]["call_id"]

        def status() -> CallStatus:
            with db.sessions() as s:
                return s.get(Call, call_id).status

        first = _celery_worker(settings, log)
        try:
            _wait(lambda: status() == CallStatus.transcribing, 90, "the Celery worker to claim the call", log)
            time.sleep(1.5)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        assert status() in (CallStatus.transcribing, CallStatus.scoring)

        second = _celery_worker(settings, log)
        try:
            _wait(lambda: status() == CallStatus.done, 180, "a second Celery worker to finish the call", log)
            time.sleep(2)  # let a redelivered message arrive: it must not process the call again
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(60)

        detail = client.get(f"/api/v1/calls/{call_id}", headers=people.h("quality_controller")).json()
    assert detail["status"] == "done" and detail["score"] is not None
    with db.sessions() as s:
        outcomes = s.scalars(select(CallRun.outcome).where(CallRun.call_id == call_id).order_by(CallRun.id)).all()
    assert outcomes == ["lost", "done"]
