"""The distributed executor: Celery over Redis or RabbitMQ, any number of worker machines sharing
PostgreSQL and the recordings store.

The broker only says "look at call N"; the database lease decides who processes it, so a message
delivered twice, or redelivered after a worker died, is harmless. Late acknowledgement gives a
killed worker's message back to the broker, and a sweeper in every worker re-sends calls whose
message was lost or whose lease expired, so no call depends on the broker keeping a message.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import and_, or_, select, update

from api.core.config import ServiceSettings, get_service_settings
from api.core.db import Database, utcnow
from api.models import Call
from api.processing.queue import claimable

log = logging.getLogger("callqa.worker")
TASK = "callqa.process_call"
QUEUE = "callqa"


def make_celery(settings: ServiceSettings) -> Celery:
    app = Celery("callqa", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": int(settings.lease_seconds * 3)},
        worker_hijack_root_logger=False,
    )

    @app.task(name=TASK)
    def process_call(call_id: int) -> None:  # runs in a worker process
        processor = _processor()
        processor.process_call(call_id)

    return app


_state: dict[str, Any] = {}
_pool = {"processes": 1}  # set by CeleryExecutor.run before the pool's processes are forked


def _processor() -> Any:
    if "processor" not in _state:
        from api.processing.pipeline import CallProcessor, threads_each

        _state["processor"] = CallProcessor(get_service_settings(), cpu_threads=threads_each(_pool["processes"]))
    return _state["processor"]


@worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    _state.clear()  # a forked child opens its own database connections


class CeleryExecutor:
    def __init__(self, settings: ServiceSettings, *, db: Database | None = None):
        self.settings = settings
        self.app = make_celery(settings)
        self.db = db or Database(settings)

    def submit(self, call_id: int) -> None:
        self.app.send_task(TASK, args=[call_id], queue=QUEUE)

    def sweep(self) -> int:
        """Send every due call that was never sent, or sent long enough ago that its message may be lost."""
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.lease_seconds)
        with self.db.sessions() as session:
            ids = list(
                session.scalars(
                    select(Call.id)
                    .where(claimable(now), or_(Call.enqueued_at.is_(None), Call.enqueued_at < stale))
                    .order_by(Call.next_attempt_at, Call.id)
                    .limit(1000)
                )
            )
            for call_id in ids:
                self.submit(call_id)
            if ids:
                session.execute(
                    update(Call).where(and_(Call.id.in_(ids))).values(enqueued_at=now).execution_options(synchronize_session=False)
                )
                session.commit()
        return len(ids)

    def run(self, *, concurrency: int = 1) -> None:
        """Run a Celery worker here, with a sweeper thread."""
        stop = threading.Event()

        def sweeper() -> None:
            while not stop.wait(max(1.0, self.settings.poll_seconds * 5)):
                try:
                    from api.processing.queue import release_dead

                    release_dead(self.db.sessions, max_attempts=self.settings.max_attempts)
                    self.sweep()
                except Exception:
                    log.exception("sweep failed")

        _pool["processes"] = max(1, concurrency)
        self.sweep()
        thread = threading.Thread(target=sweeper, daemon=True, name="callqa-sweeper")
        thread.start()
        try:
            self.app.worker_main(
                ["worker", "--pool=prefork", f"--concurrency={max(1, concurrency)}", "-Q", QUEUE, "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"]
            )
        finally:
            stop.set()
