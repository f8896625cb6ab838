"""What several test modules share: the test users' password, the PostgreSQL they use, a clock a test
moves instead of waiting, small real recordings, calls with stored transcripts. Fixtures live in
the ``conftest.py`` files; a test module imports from here, never from another test module."""

from __future__ import annotations

import io
import math
import os
import re
import struct
import time
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.models import Call, CallStatus

T = TypeVar("T")

API = "/api/v1"
PASSWORD = "violet-kettle-morning-42"
"""Every API test user's password (the password policy refuses one with the username in it)."""
PG_URL = os.environ.get("CALLQA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/callqa_test")
"""The PostgreSQL the ``postgres`` tests use (``make services`` starts it); others derive their own from it."""


def ensure_pg_database(url: str) -> None:
    """Create the database of ``url`` on its server if it is not there yet."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            if not c.scalar(text("select 1 from pg_database where datname = :n"), {"n": u.database}):
                c.execute(text(f'create database "{u.database}"'))
    finally:
        admin.dispose()


class NoExecutor:
    """The API's executor when a test drives the worker itself: submitting is recorded, nothing runs."""

    def __init__(self) -> None:
        self.submitted: list[int] = []

    def submit(self, call_id: int) -> None:
        self.submitted.append(call_id)


class Clock:
    """What time it is for the code under test, moved by the test: a lock, a lease or a window
    runs out when the test says so, not after a sleep. It stands still from its first reading (the
    real time then, unless ``start`` is given), so what the test wrote before with the real clock
    (a call's arrival) is never in its future."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start

    def __call__(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move on ``seconds``; returns the new time."""
        self._now = self() + timedelta(seconds=seconds)
        return self._now


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *, log: Any = None) -> T:
    """Poll ``predicate`` until it returns something true (returned) or ``timeout`` seconds pass
    (an AssertionError naming ``what``, with the end of the ``log`` file if given). For real
    processes only: code that reads a clock is given a :class:`Clock` instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"; log:\n{log.read_text()[-3000:]}" if log is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(0.1)


def tone(hz: float, seconds: float = 0.3, rate: int = 8000) -> bytes:
    """A small real WAV; a different pitch is a different recording."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
                               for i in range(int(seconds * rate))))
    return buf.getvalue()


def stored_files(settings) -> set[str]:
    """The recordings in the store (files named by their sha256)."""
    root = settings.recordings_dir
    return {p.name for p in root.rglob("*") if p.is_file() and re.fullmatch(r"[0-9a-f]{64}", p.name)} if root.exists() else set()


# Turns of stored transcripts (what a worker writes after transcribing), so no model runs.
M, C = "manager", "client"
HELLO = {"speaker": M, "text": "Добрый день! Меня зовут Ольга, компания Вектор. Вам удобно говорить?"}
PITCH = [{"speaker": C, "text": "Да, слушаю."}, {"speaker": M, "text": "Мы возим грузы по всей России, быстро и недорого."}]
PRICE = {"speaker": C, "text": "Это слишком дорого для нас."}
HANDLED = {"speaker": M, "text": "Понимаю. А с чем вы сравниваете?"}
GIVE_UP = {"speaker": M, "text": "Ну ладно, тогда до свидания."}
SUPPLIER = [{"speaker": C, "text": "И вообще у нас уже есть поставщик."}, {"speaker": M, "text": "Понимаю. А что вам в нём нравится?"}]

# score 54.5: needs discovery, next step and farewell missed; a price objection, handled
HANDLED_PRICE = [HELLO, *PITCH, PRICE, HANDLED]
# 54.5: the price objection given up on (with a farewell)
UNHANDLED_PRICE = [HELLO, *PITCH, PRICE, GIVE_UP]
# 58.3: price and "we have a supplier", both handled
TWO_OBJECTIONS = [*HANDLED_PRICE, *SUPPLIER]
# 16.7: the recogniser was unsure of the first turn, so its stages are uncertain
DOUBTFUL = [{**HELLO, "confidence": 0.2}, *PITCH, PRICE, HANDLED]
ENGLISH = [{"speaker": M, "text": "Good morning! This is Anna from Vector Logistics. Do you have a minute?"},
           {"speaker": C, "text": "Sure."}, {"speaker": M, "text": "We deliver freight across the country, fast and cheap."},
           {"speaker": C, "text": "That's too expensive for us."}, {"speaker": M, "text": "I understand. What are you comparing it with?"}]


def transcribed_call(client, db, people, turns: list[dict[str, Any]], *, hz: float, language: str = "ru",
                     **fields: str) -> int:
    """Upload a real recording, store a transcript for it as a worker does, mark it done; score it with score()."""
    files = [("files", (f"{hz:g}.wav", tone(hz), "audio/wav"))]
    r = client.post(f"{API}/calls", files=files, data=fields, headers=people.h("admin"))
    assert r.status_code == 201, r.text
    call_id = r.json()["items"][0]["call_id"]
    with db.sessions() as s:
        call = s.get(Call, call_id)
        call.status, call.transcript = CallStatus.done, {"language": language, "turns": turns}
        s.commit()
    return call_id


def score(client, people, ids: list[int]) -> None:
    """Score the calls with POST /calls/rescore, the real scorer over their stored transcripts."""
    r = client.post(f"{API}/calls/rescore", json={"call_ids": ids}, headers=people.h("admin"))
    assert r.status_code == 200 and r.json()["rescored"] == len(ids), r.text
