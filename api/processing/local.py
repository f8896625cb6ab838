"""The local executor: N worker processes on this machine, each with its own model, polling the
database for due calls. No other services needed. A crashed process is started again, under
``callqa worker`` and ``callqa serve`` alike; the processes end with their parent, even one killed
with ``kill -9`` (:mod:`api.core.children`)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.synchronize import Event as EventType
from typing import Any

from api.core.children import die_with_parent, orphaned
from api.core.config import ServiceSettings
from api.processing.pipeline import threads_each

log = logging.getLogger("callqa.worker")


def _worker_main(settings_data: dict[str, Any], stop: EventType, drain: bool, index: int, cpu_threads: int,
                 parent: int) -> None:
    """One worker process: claim, process, repeat; with ``drain`` stop when the queue is empty; stop
    too when the parent (pid ``parent``) dies."""
    from api.processing.pipeline import CallProcessor

    stopping: list[int] = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which decides
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))  # finish the call in hand, then stop
    die_with_parent(parent)  # as a SIGTERM

    def may_claim() -> bool:
        return not stopping and not stop.is_set() and not orphaned(parent)

    settings = ServiceSettings(**settings_data)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker-{index} %(levelname)s %(message)s")
    for noisy in ("faster_whisper", "spacy", "pymorphy3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    processor = CallProcessor(settings, cpu_threads=cpu_threads)
    try:
        while may_claim():
            if processor.process_next(may_claim=may_claim) is None:
                if drain:
                    return
                stop.wait(settings.poll_seconds)
    finally:
        processor.db.dispose()


class LocalExecutor:
    """Runs ``processes`` worker processes until stopped (SIGTERM/SIGINT) or, with ``drain``, until idle.

    From :meth:`start` on, a supervisor thread starts again any worker that died (killed, out of
    memory, a crash in native code), so ``callqa serve``, whose main thread runs the API, keeps its
    workers as ``callqa worker`` does; a call a dead worker held is taken over when its lease expires.
    A worker is sent SIGTERM when the thread that started it ends: call :meth:`start` from a thread
    that lives as long as the workers (the main thread); the supervisor ends only in :meth:`stop`.
    """

    def __init__(self, settings: ServiceSettings, *, processes: int = 1, drain: bool = False,
                 supervise_seconds: float = 0.5):
        self.settings = settings
        self.processes = max(1, processes)
        self.drain = drain
        self.supervise_seconds = supervise_seconds
        self._ctx = mp.get_context("spawn")
        self._stop_event: EventType | None = None  # made when workers start: an API process that only submits needs none
        self._procs: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def stop_event(self) -> EventType:
        """Set to stop the workers after their calls in hand (a multiprocessing event: semaphores the
        operating system keeps until it is released)."""
        if self._stop_event is None:
            self._stop_event = self._ctx.Event()
        return self._stop_event

    def submit(self, call_id: int) -> None:
        """Local workers poll the database; nothing to send."""

    def _spawn(self, index: int) -> None:
        p = self._ctx.Process(
            target=_worker_main, args=(self.settings.model_dump(), self.stop_event, self.drain, index,
                                       threads_each(self.processes), os.getpid()),
            name=f"callqa-worker-{index}", daemon=False,
        )
        p.start()
        self._procs[index] = p

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids, for logs and tests."""
        with self._lock:
            return [p.pid for p in self._procs.values() if p.pid is not None]

    def start(self) -> None:
        """Start the workers and the supervisor thread that restarts crashed ones."""
        with self._lock:
            for i in range(self.processes):
                self._spawn(i)
        self._supervisor = threading.Thread(target=self._supervise, name="callqa-worker-supervisor", daemon=True)
        self._supervisor.start()

    def restart_crashed(self) -> bool:
        """Start again every worker that exited when it should not have; True while any worker runs."""
        with self._lock:
            alive = False
            for i, p in list(self._procs.items()):
                if p.is_alive():
                    alive = True
                elif not self._stopping.is_set() and not self.stop_event.is_set() and not (self.drain and p.exitcode == 0):
                    log.warning("worker %s (pid %s) exited with %s; starting it again", i, p.pid, p.exitcode)
                    p.join(0)  # reap it
                    self._spawn(i)
                    alive = True
            return alive

    def _supervise(self) -> None:
        while not self._stopping.wait(self.supervise_seconds):
            try:
                self.restart_crashed()
            except Exception:  # e.g. no memory to start a process now: try again next round
                log.exception("restarting a worker failed")

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join()
        if self._stop_event is not None:
            self._stop_event.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(5)
            if p.is_alive():  # its call's lease will expire and another worker takes the call over
                p.kill()
                p.join(5)

    def run(self) -> None:
        """Block, restarting crashed workers, until stopped or (drain) all workers are done."""
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        stopping: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            # only a flag here: setting the multiprocessing event inside a handler can deadlock
            # with the main thread waiting on the same event's lock
            stopping.append(signum)

        for s in previous:
            signal.signal(s, on_signal)
        try:
            self.start()
            while True:
                if not self.restart_crashed():
                    self.stop()
                    return
                time.sleep(0.5)
                if stopping:
                    log.info("stopping workers (signal %s); calls in progress finish first", stopping[0])
                    self.stop()
                    return
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
