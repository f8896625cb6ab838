"""Processing one claimed call: fetch the recording if a webhook gave a URL (from the addresses
:mod:`api.core.netguard` allows), transcribe, score, write the result, fenced by the lease. Runs
inside any executor (local processes or Celery)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select

from analyzer.errors import AnalyzerError
from api.calls.results import result_values
from api.core.config import ServiceSettings
from api.core.db import Database
from api.core.errors import PayloadTooLarge, ServiceError
from api.core.netguard import MAX_REDIRECTS, GuardedTransport
from api.core.storage import RecordingStore, Stored
from api.models import Call, CallStatus, Recording
from api.processing import queue
from api.processing.queue import Claim
from api.scripts.service import active_languages, active_version, script_of

if TYPE_CHECKING:
    from analyzer.pipeline import Analyzer

log = logging.getLogger("callqa.worker")


class Transient(Exception):
    """A failure worth retrying (network, a busy database)."""


def worker_name(suffix: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


def threads_each(processes: int) -> int:
    """CTranslate2 threads for each of ``processes`` worker processes on this machine: the cores
    shared out (0, one a core, for a single process). One process a core with one thread each
    transcribed 645 calls an hour on 2 cores, against 482-490 for one process with two threads and
    588 for two processes with two threads each, which fight over the cores (README, "Service")."""
    return max(1, (os.cpu_count() or 1) // processes) if processes > 1 else 0


class CallProcessor:
    """Holds the loaded model; ``process_next`` / ``process_call`` do one call each.

    ``cpu_threads`` is used when the analyzer's settings leave the threads to the machine
    (``CALLQA_CPU_THREADS`` unset or 0): see :func:`threads_each`. ``sleep`` waits between the tries
    of a download (tests record the waits instead)."""

    def __init__(self, settings: ServiceSettings, *, db: Database | None = None, analyzer: Analyzer | None = None,
                 cpu_threads: int = 0, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.db = db or Database(settings)
        self.store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
        self.store.remove_abandoned()  # temporary files of downloads a killed worker was receiving
        self._analyzer = analyzer
        self.cpu_threads = cpu_threads
        self.sleep = sleep
        self.name = worker_name()

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            from analyzer.pipeline import Analyzer
            from analyzer.settings import get_settings

            analyzer_settings = get_settings()
            if analyzer_settings.cpu_threads == 0 and self.cpu_threads:
                analyzer_settings = analyzer_settings.model_copy(update={"cpu_threads": self.cpu_threads})
            self._analyzer = Analyzer(analyzer_settings)
        return self._analyzer

    def process_next(self, *, may_claim: Callable[[], bool] | None = None) -> int | None:
        """Claim and process the next due call; returns its id, None when the queue is empty or
        ``may_claim``, asked right before claiming, says no (the worker is stopping)."""
        queue.release_dead(self.db.sessions, max_attempts=self.settings.max_attempts)
        if may_claim is not None and not may_claim():
            return None
        c = queue.claim(self.db.sessions, worker=self.name, lease_seconds=self.settings.lease_seconds)
        if c is None:
            return None
        self.run(c)
        return c.call_id

    def process_call(self, call_id: int) -> bool:
        """Process this call if it is due and nobody else holds it (Celery tasks); False otherwise."""
        c = queue.claim(self.db.sessions, worker=self.name, lease_seconds=self.settings.lease_seconds, call_id=call_id)
        if c is None:
            return False
        self.run(c)
        return True

    def run(self, c: Claim) -> None:
        log.info("call %s: attempt %s (lease %s)", c.call_id, c.attempts, c.token)
        with self._heartbeat(c):
            try:
                self._run(c)
            except AnalyzerError as e:
                self._fail(c, e.code, str(e), permanent=True)
            except ServiceError as e:
                self._fail(c, e.code, e.message, permanent=e.code != "download_failed")
            except Transient as e:
                self._fail(c, "transient_error", str(e), permanent=False)
            except Exception as e:  # a bug or a resource problem: retried, then failed with the reason
                log.exception("call %s failed", c.call_id)
                self._fail(c, "internal_error", f"{type(e).__name__}: {e}", permanent=False)

    def _fail(self, c: Claim, code: str, message: str, *, permanent: bool) -> None:
        status = queue.fail(
            self.db.sessions, c, code=code, message=message, permanent=permanent,
            max_attempts=self.settings.max_attempts, backoff_seconds=self.settings.retry_backoff_seconds,
        )
        log.warning("call %s: %s (%s) -> %s", c.call_id, code, message, status or "lease lost")

    @contextmanager
    def _heartbeat(self, c: Claim) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.heartbeat):
                try:
                    if not queue.renew(self.db.sessions, c, lease_seconds=self.settings.lease_seconds):
                        log.warning("call %s: lease lost; its result will not be written", c.call_id)
                        return
                except Exception:  # the database blipped: try again next beat
                    log.exception("call %s: lease renewal failed", c.call_id)

        thread = threading.Thread(target=beat, name=f"lease-{c.call_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _run(self, c: Claim) -> None:
        with self.db.sessions() as session:
            call = session.get(Call, c.call_id)
            assert call is not None
            sha, url = call.recording_sha256, call.recording_url
            language, channel = call.language, call.manager_channel
        if sha is None:
            if not url:
                raise ServiceError("the call has neither a recording nor a recording URL", code="recording_missing")
            sha = self._download(c, url)
            if sha is None:
                return
        path = self.store.path(sha)
        if not path.is_file():
            raise ServiceError(f"the recording {sha} is missing from the store {self.store.root}", code="recording_missing")

        with self.db.sessions() as session:
            chosen = active_version(session, language=language) if language else None
            script = script_of(chosen) if chosen else None
            languages = active_languages(session)
        transcript = self.analyzer.transcribe(path, language=language, manager_channel=channel, script=script,
                                              languages=languages or None)
        with self.db.sessions() as session:
            if not queue.write(session, c, status=CallStatus.scoring, transcript=transcript.to_dict(words=True)):
                return
            session.commit()
            version = active_version(session, language=transcript.language)
            script = script_of(version)
        report = self.analyzer.score(transcript, script=script).to_dict()
        report["source"] = f"call {c.call_id}"
        with self.db.sessions() as session:
            values = result_values(session, c.call_id, report, script)
            call = session.get(Call, c.call_id)
            if call is not None and call.duration is not None:
                values.pop("duration")
            if queue.finish(session, c, report=report, **values):
                session.commit()
                log.info("call %s: done, score %s", c.call_id, values["score"])
            else:
                session.rollback()
                log.warning("call %s: lease lost before the result was written; another worker has it", c.call_id)

    def _download(self, c: Claim, url: str) -> str | None:
        """Fetch a webhook's recording into the store; the call gets it (or is a duplicate). Only from
        the addresses :mod:`api.core.netguard` allows, redirects included."""
        transport = GuardedTransport(allowed=self.settings.webhook_allowed_networks)
        with httpx.Client(transport=transport, timeout=self.settings.download_timeout_seconds, follow_redirects=True,
                          max_redirects=MAX_REDIRECTS) as client:
            return self._download_with(client, c, url)

    def _download_with(self, client: httpx.Client, c: Claim, url: str) -> str | None:
        last: Exception | None = None
        for attempt in range(self.settings.download_retries + 1):
            if attempt:
                self.sleep(min(30.0, 0.5 * 2**attempt))
            try:
                with client.stream("GET", url) as r:
                    if r.status_code in (404, 410, 401, 403):
                        raise ServiceError(
                            f"the PBX answered {r.status_code} for the recording URL; check that it is right and still valid",
                            code="download_refused",
                        )
                    r.raise_for_status()
                    declared = int(r.headers.get("content-length") or 0)
                    if declared > self.store.max_bytes:
                        raise PayloadTooLarge(
                            f"the PBX says the recording is {declared / 1048576:.1f} MB, over the limit of "
                            f"{self.store.max_bytes / 1048576:g} MB (CALLQA_MAX_UPLOAD_MB)",
                            code="recording_too_large",
                        )
                    with self.store.receive(r.iter_bytes(1 << 20)) as stored:  # held until the call refers to it
                        return self._take_recording(c, stored, url)
            except httpx.TooManyRedirects:
                raise ServiceError(f"the recording URL redirected more than {MAX_REDIRECTS} times; give the URL "
                                   "the recording is at", code="download_refused") from None
            except (httpx.TransportError, httpx.HTTPStatusError) as e:
                last = e
        raise ServiceError(
            f"could not download the recording after {self.settings.download_retries + 1} tries: {last}",
            code="download_failed",
        )

    def _take_recording(self, c: Claim, stored: Stored, url: str) -> str | None:
        with self.db.sessions() as session:
            owner = session.scalar(select(Call.id).where(Call.recording_sha256 == stored.sha256))
            if owner is not None and owner != c.call_id:
                raise ServiceError(f"this recording is already call {owner}", code="duplicate_recording")
            if session.get(Recording, stored.sha256) is None:
                session.add(Recording(sha256=stored.sha256, size=stored.size, original_name=url.rsplit("/", 1)[-1][:300]))
                session.flush()
            if not queue.write(session, c, recording_sha256=stored.sha256):
                session.rollback()
                return None
            session.commit()
        return stored.sha256
