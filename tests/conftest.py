from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import Clock

DATA = Path(__file__).parent / "data"

# The mark a test gets from a fixture it uses, directly or through other fixtures, so that
# `-m "not model"` and the like (`make test-fast`) leave out what needs more than Python without
# anyone remembering to mark a test. The PostgreSQL half of the database fixtures is marked by its
# parameter instead (tests/api/conftest.py).
NEEDS = {
    "analyzer": "model",  # the real Whisper model, loaded once
    "browser": "browser",  # Chromium (tests/web/conftest.py)
    "render_dialogue": "festival",  # audio rendered with festival and sox
    "callqa_serve": "slow",  # `callqa serve` in processes of its own
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & NEEDS.keys():
            item.add_marker(NEEDS[fixture])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def clip_labels() -> dict:
    return json.loads((DATA / "clip_ru.labels.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def analyzer():
    """One analyzer with the real embedded model, shared by the tests that transcribe."""
    from analyzer import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def render_dialogue() -> Callable[..., Path]:
    """The sample-call renderer (:func:`sample_calls.render.render_dialogue`): festival voices and sox."""
    if shutil.which("text2wave") is None or shutil.which("sox") is None:
        pytest.fail("the renderer needs Debian's festival, festvox-ru and sox: run make sysdeps", pytrace=False)
    from sample_calls.render import render_dialogue

    return render_dialogue


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves (:class:`tests.helpers.Clock`), from the real time of its first reading."""
    return Clock()


@pytest.fixture(scope="session")
def report_schema() -> dict:
    return json.loads((Path(__file__).parent.parent / "analyzer" / "report.schema.json").read_text())


@dataclass
class Served:
    """A running `callqa serve`: its process, base address and log file. A test that kills it on
    purpose sets ``killed``: there is no clean exit to check then."""

    proc: subprocess.Popen
    base: str
    log: Path
    killed: bool = False


@pytest.fixture
def callqa_serve(tmp_path: Path) -> Callable[..., AbstractContextManager[Served]]:
    """Start `callqa serve ARGS` on a free loopback port with a fresh data folder under tmp_path
    (SQLite unless ``env`` names CALLQA_DATABASE_URL), wait until it answers /healthz, and on leaving stop it with SIGTERM and check that it
    exited cleanly."""

    @contextmanager
    def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[Served]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        environ = {**{k: v for k, v in os.environ.items() if k != "CALLQA_DATABASE_URL"},
                   "CALLQA_DATA_DIR": str(tmp_path / "data"), "CALLQA_ADMIN_PASSWORD": "cobalt-harbor-lantern", **(env or {})}
        log = tmp_path / "serve.log"
        proc = subprocess.Popen([sys.executable, "-m", "api", "serve", "--port", str(port), *args], env=environ,
                                cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
                                stdout=log.open("w"), stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            served = Served(proc, base, log)
            yield served
        finally:
            with contextlib.suppress(ProcessLookupError):  # a test that killed the group left none of it
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        assert served.killed or proc.returncode == 0, log.read_text()[-3000:]

    return serve
